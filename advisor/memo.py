"""Answers computed from cached features, cached in turn: a rerun skips the resampling and the curve.

Once every feature is in the feature cache, what is left of a ``recommend`` is arithmetic on those
arrays — the resampling rounds (P(best), rank intervals, the verdicts' rounds) and the learning
curve — and it is the bulk of a rerun (seconds of LogME, kNN and logistic regressions). The same
arrays, labels and settings always give the same numbers, so they are kept next to the features,
under ``<cache>/answers/<key[:2]>/<key>.json``.

The key hashes the *content* that the numbers depend on: every array (bytes, shape, dtype), the
labels, the settings (rounds, seed, estimators), the versions of the numeric libraries, and the
source code of the advisor modules that compute them — so a changed estimator, a changed sample or
an upgraded NumPy computes afresh, and nothing needs a version number bumped by hand. ``runs verify``
never reads them: it recomputes.

Entries are written to a temporary file and renamed into place (a reader sees a whole entry or
none), with the umask's permissions as the features; one that cannot be read or parsed is removed
and recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from .cache import FeatureCache
from .files import write_file

#: The packages whose numerics the cached answers depend on.
NUMERIC_PACKAGES = ("numpy", "scipy", "scikit-learn", "faiss-cpu", "tlreg")


@cache
def code_version() -> str:
    """A hash of the advisor's source (the modules that score, resample and fit curves) and of the
    numeric libraries' versions: any change to either gives new keys."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in sorted([*here.glob("*.py"), *(here / "estimators").glob("*.py")]):
        with contextlib.suppress(OSError):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in NUMERIC_PACKAGES:
        try:
            digest.update(f"{name}=={version(name)}".encode())
        except PackageNotFoundError:
            digest.update(f"{name} absent".encode())
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    """Hash ``value`` into ``digest``: arrays by content, mappings in key order, the rest as JSON."""
    if isinstance(value, np.ndarray):
        digest.update(f"array{value.shape}{value.dtype.str}".encode())
        digest.update(np.ascontiguousarray(value).data)
    elif isinstance(value, Mapping):
        digest.update(b"{")
        for k in sorted(value, key=str):
            digest.update(json.dumps(str(k)).encode() + b":")
            _feed(digest, value[k])
        digest.update(b"}")
    elif isinstance(value, list | tuple):
        digest.update(b"[")
        for v in value:
            _feed(digest, v)
            digest.update(b",")
        digest.update(b"]")
    else:
        digest.update(json.dumps(value, default=str).encode())


def memo_key(kind: str, **parts: Any) -> str:
    """The key of one cached answer: ``kind`` (what is computed), the code version and ``parts``."""
    digest = hashlib.blake2b(digest_size=32)
    _feed(digest, {"kind": kind, "code": code_version(), **parts})
    return digest.hexdigest()


class Memo:
    """Cached answers next to a feature cache (``store.root / "answers"``)."""

    def __init__(self, store: FeatureCache) -> None:
        self.store = store
        self.root = store.root / "answers"

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        """The cached value, or None when absent or unreadable (an unreadable entry is removed)."""
        path = self.path(key)
        try:
            value = json.loads(path.read_text())["value"]
            with contextlib.suppress(OSError):
                os.utime(path)  # last used now: prune --older-than keeps what reruns read
            return value
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            with contextlib.suppress(OSError):
                path.unlink()
            return None

    def put(self, key: str, value: Any, *, kind: str = "") -> None:
        """Keep ``value`` (JSON-ready) under ``key``, atomically; a refused write is the feature cache's
        one-line error (a full disk, no permission)."""
        path = self.path(key)
        blob = json.dumps({"kind": kind, "key": key, "value": value}).encode()
        try:
            write_file(path, blob)
        except OSError as exc:
            raise self.store.write_error(exc) from exc

    def get_or_compute(self, kind: str, parts: Mapping[str, Any], compute: Callable[[], Any]) -> Any:
        """The cached value of ``kind`` for these ``parts`` (what it is computed from), or
        ``compute()`` kept under their key."""
        key = memo_key(kind, **parts)
        found = self.get(key)
        if found is not None:
            return found
        value = json.loads(json.dumps(compute()))  # what a later read gives: the same types, always
        self.put(key, value, kind=kind)
        return value

    def count(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json")) if self.root.is_dir() else 0

    def prune(self, *, older_than_days: float) -> int:
        """Remove the answers no run has used for ``older_than_days``; how many."""
        removed, cutoff = 0, time.time() - older_than_days * 86400
        for path in self.root.glob("??/*.json") if self.root.is_dir() else ():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed

    def clear(self) -> int:
        """Remove every cached answer; how many there were."""
        n = self.count()
        shutil.rmtree(self.root, ignore_errors=True)
        return n
