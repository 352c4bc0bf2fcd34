"""Reading and writing the benchmarks' JSON documents: one place, and every write atomic.

A benchmark's documents (committed results, evaluations, the caches of a build's jobs) are read by
other scripts and by a resumed build, so a write is a temporary file then a rename: a reader (or a
build interrupted mid-write) never sees half a file. No torch here: the ``--report`` paths import it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(
    path: Path, data: Any, *, indent: int | None = 1, sort_keys: bool = False, compact: bool = False
) -> None:
    """Write ``data`` to ``path`` atomically (its folder made if missing), ending in a newline.
    ``compact``: no spaces or newlines at all (large per-image documents)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        json.dumps(data, separators=(",", ":"), sort_keys=sort_keys)
        if compact
        else json.dumps(data, indent=indent, sort_keys=sort_keys)
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
