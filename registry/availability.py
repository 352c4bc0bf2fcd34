"""Whether a registered model can be loaded now, without trying to load it.

Offline (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``, or a Hub that cannot be reached), a Hub model
loads only if its weights are in the local cache; a local file may have been moved away; a
bundled package uninstalled. ``recommend`` asks here first, so that it considers only the models
it can load and says in one line how many it left out and why, instead of one failure per model.

The answer is worked out each time (file system checks only, never a download), never stored on
the entry: it changes as soon as the network comes back or a cache fills, and a stored flag would
then be wrong. A third-party source can answer for its own models with a method
``unavailable(entry) -> str | None``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlparse

from . import config, hub
from .refs import SHA_RE, split_ref

if TYPE_CHECKING:  # any object with these fields will do: the CLI's fast reader asks with plain rows
    from .models import ModelBase

Entry = TypeVar("Entry", bound="ModelBase")

#: sources (and their ref schemes) whose weights come from the Hub: offline, the local cache is all.
HUB_SCHEMES = ("timm", "hf")
NOT_CACHED = "not in the local Hugging Face cache"


def _not_cached() -> str:
    return f"{NOT_CACHED} and {hub.offline_reason()}"


GONE = "its file or folder is gone"


@dataclass(frozen=True)
class Unavailable:
    ref: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"ref": self.ref, "reason": self.reason}


def _cached_ref(repo: str) -> str | None:
    """The commit ``main`` points to in the local cache."""
    path = config.hf_cache_dir() / f"models--{repo.replace('/', '--')}" / "refs" / "main"
    return path.read_text().strip() if path.is_file() else None


def _snapshot(repo: str, revision: str | None) -> Path | None:
    revision = revision if revision and SHA_RE.match(revision) else _cached_ref(repo)
    if not revision:
        return None
    folder = config.hf_cache_dir() / f"models--{repo.replace('/', '--')}" / "snapshots" / revision
    return folder if folder.is_dir() else None


def _timm(entry: ModelBase) -> str | None:
    extra = entry.extra or {}
    if repo := extra.get("hf_hub_id"):
        folder = _snapshot(repo, entry.revision)
        names = ("model.safetensors", "pytorch_model.bin")
        return None if folder and any((folder / n).is_file() for n in names) else _not_cached()
    if url := extra.get("url"):
        import torch

        checkpoint = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
        return None if checkpoint.is_file() else f"not in torch's download cache and {hub.offline_reason()}"
    return None


def _hf(entry: ModelBase) -> str | None:
    from .model_folders import weight_files

    folder = _snapshot(entry.ref.removeprefix("hf:").split("@")[0], entry.revision)
    return None if folder and weight_files(folder) else _not_cached()


def _local(entry: ModelBase) -> str | None:
    # a stored ref's path is already absolute: read as written, without loading every source to parse it
    return None if Path(split_ref(entry.ref).name).exists() else GONE


def _bundled(entry: ModelBase) -> str | None:
    from .sources.bundles import BUNDLES, missing

    bundle = BUNDLES.get(entry.ref.removeprefix("pkg:"))
    package = missing(bundle) if bundle else None
    return f"the package {package} is not installed" if package else None


_BUILT_IN: dict[str, Callable[[ModelBase], str | None]] = {
    "timm": _timm,
    "hf": _hf,
    "local": _local,
    "bundled": _bundled,
}


def unavailable(entry: ModelBase) -> str | None:
    """Why ``entry`` cannot be loaded now, or None when it can (as far as files can tell). A
    linear-mode fine-tune is a head on its parent's features: it loads only if its parent does."""
    if entry.source in HUB_SCHEMES and hub.online():
        reason = None  # downloadable now
    elif entry.source in _BUILT_IN:  # files only: loading the built-in sources would import timm
        reason = _BUILT_IN[entry.source](entry)
    else:
        from .sources import sources

        hook = getattr(sources().get(entry.source), "unavailable", None)
        reason = hook(entry) if hook is not None else None
    if reason is None and ((entry.extra or {}).get("finetune") or {}).get("parent"):
        from .lineage import parent_entry  # the ORM: only for a linear-mode head's parent snapshot

        base = parent_entry(entry)
        if base is not None and (why := unavailable(base)):
            return f"its parent {base.ref}: {why}"
    return reason


def split(records: Sequence[Entry]) -> tuple[list[Entry], list[Unavailable]]:
    """(the records that can be loaded now, the others with the reason)."""
    keep, left_out = [], []
    for record in records:
        reason = unavailable(record)
        if reason is None:
            keep.append(record)
        else:
            left_out.append(Unavailable(record.ref, reason))
    return keep, left_out


def summary(left_out: Sequence[Unavailable], total: int) -> str:
    """One line: how many of ``total`` were left out, grouped by reason."""
    counts = Counter(u.reason for u in left_out)
    why = "; ".join(f"{n} {reason}" for reason, n in counts.most_common(3))
    if len(counts) > 3:
        why += f"; {sum(n for _, n in counts.most_common()[3:])} for other reasons"
    return f"{len(left_out)} of {total} candidate models cannot be loaded now and were left out: {why}"
