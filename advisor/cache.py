"""The feature cache: a model's features for a data sample, computed once, verified on every read.

An entry is a folder ``<cache>/features/<key[:2]>/<key>/`` holding ``features.npy`` (float32
``[N, D]``), ``probs.npy`` (float32 ``[N, K]``, when the model has a source head) and
``meta.json`` (what the entry is, the arrays' shapes and their sha256). The key hashes everything
the features depend on: model ref, pinned revision, preprocessing, pretrained or random init,
the data fingerprint and the sampled ids. Entries are written into a temporary folder and renamed
into place, so a reader sees a whole entry or none, and two processes computing the same entry
both succeed (the second rename loses and its copy is dropped). A corrupt entry (a checksum
mismatch, a missing or unreadable file) is reported by :class:`CacheCorruptWarning`, removed and
recomputed by the caller.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tlreg.registry import config
from tlreg.registry.weights import sha256

FORMAT_VERSION = 1
_TMP_PREFIX = ".tmp-"


class CacheCorruptWarning(UserWarning):
    """A cache entry failed its checksum or could not be read; it is removed and recomputed."""


def cache_key(**parts: Any) -> str:
    """A stable hash of everything the cached features depend on."""
    blob = json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class CachedFeatures:
    key: str
    features: np.ndarray
    probs: np.ndarray | None
    meta: dict[str, Any]


@dataclass
class EntryInfo:
    key: str
    path: Path
    meta: dict[str, Any]
    size: int


class FeatureCache:
    """Feature cache under ``root`` (default: ``TLREG_CACHE``, else the user cache dir)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else config.cache_dir()
        self.features_dir = self.root / "features"

    def path(self, key: str) -> Path:
        return self.features_dir / key[:2] / key

    def load(self, key: str) -> CachedFeatures | None:
        """The entry, verified against its checksums; ``None`` when absent or corrupt (then removed)."""
        folder = self.path(key)
        if not folder.is_dir():
            return None
        try:
            meta = json.loads((folder / "meta.json").read_text())
            arrays = {}
            for name, expected in meta["sha256"].items():
                file = folder / f"{name}.npy"
                if sha256(file) != expected:
                    raise ValueError(f"{file.name} does not match its checksum")
                arrays[name] = np.load(file, mmap_mode="r")
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            warnings.warn(
                f"Feature cache entry {folder} is corrupt ({exc}); recomputing it.",
                CacheCorruptWarning,
                stacklevel=2,
            )
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return CachedFeatures(key, arrays["features"], arrays.get("probs"), meta)

    def writer(self, key: str, *, n: int, dim: int, classes: int | None, meta: dict[str, Any]) -> EntryWriter:
        """A writer that fills the arrays batch by batch (memory stays one batch) and commits atomically."""
        self.features_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self.features_dir))
        return EntryWriter(self, key, tmp, n=n, dim=dim, classes=classes, meta=meta)

    def entries(self) -> Iterator[EntryInfo]:
        if not self.features_dir.is_dir():
            return
        for meta_file in sorted(self.features_dir.glob("??/*/meta.json")):
            folder = meta_file.parent
            try:
                meta = json.loads(meta_file.read_text())
            except (OSError, json.JSONDecodeError):
                meta = {}
            size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            yield EntryInfo(folder.name, folder, meta, size)

    def remove(self, key: str) -> None:
        shutil.rmtree(self.path(key), ignore_errors=True)

    def prune(
        self,
        *,
        older_than_days: float | None = None,
        max_bytes: int | None = None,
        stale_tmp_hours: float = 6.0,
    ) -> list[EntryInfo]:
        """Remove entries older than a number of days, then the oldest until the cache fits in
        ``max_bytes``, and temporary folders left by killed runs. Returns what was removed."""
        removed: list[EntryInfo] = []
        now = time.time()
        entries = sorted(self.entries(), key=lambda e: e.meta.get("created", 0))
        if older_than_days is not None:
            for e in entries:
                if now - e.meta.get("created", 0) > older_than_days * 86400:
                    self.remove(e.key)
                    removed.append(e)
        if max_bytes is not None:
            left = [e for e in entries if e not in removed]
            total = sum(e.size for e in left)
            for e in left:
                if total <= max_bytes:
                    break
                self.remove(e.key)
                removed.append(e)
                total -= e.size
        if self.features_dir.is_dir():
            for tmp in self.features_dir.glob(f"{_TMP_PREFIX}*"):
                if now - tmp.stat().st_mtime > stale_tmp_hours * 3600:
                    shutil.rmtree(tmp, ignore_errors=True)
        return removed

    def clear(self) -> int:
        count = sum(1 for _ in self.entries())
        shutil.rmtree(self.features_dir, ignore_errors=True)
        return count


class EntryWriter:
    """Fills one entry's arrays through memory-mapped files, then renames the folder into place."""

    def __init__(
        self,
        cache: FeatureCache,
        key: str,
        tmp: Path,
        *,
        n: int,
        dim: int,
        classes: int | None,
        meta: dict[str, Any],
    ) -> None:
        self.cache, self.key, self.tmp, self.meta = cache, key, tmp, meta
        self.features = np.lib.format.open_memmap(
            tmp / "features.npy", mode="w+", dtype=np.float32, shape=(n, dim)
        )
        self.probs = (
            np.lib.format.open_memmap(tmp / "probs.npy", mode="w+", dtype=np.float32, shape=(n, classes))
            if classes
            else None
        )
        self.filled = 0

    def write(self, features: np.ndarray, probs: np.ndarray | None) -> None:
        end = self.filled + len(features)
        self.features[self.filled : end] = features
        if self.probs is not None and probs is not None:
            self.probs[self.filled : end] = probs
        self.filled = end

    def commit(self) -> CachedFeatures:
        if self.filled != len(self.features):
            raise RuntimeError(f"cache entry {self.key}: {self.filled} of {len(self.features)} rows written")
        names = ["features"] + (["probs"] if self.probs is not None else [])
        for name in names:
            getattr(self, name).flush()
        del self.features, self.probs
        meta = {
            **self.meta,
            "key": self.key,
            "created": time.time(),
            "sha256": {name: sha256(self.tmp / f"{name}.npy") for name in names},
        }
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        final = self.cache.path(self.key)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.tmp, final)
        except OSError:  # another process committed the same entry first: keep theirs
            shutil.rmtree(self.tmp, ignore_errors=True)
        loaded = self.cache.load(self.key)
        if loaded is None:
            raise RuntimeError(f"cache entry {self.key} could not be read back")
        return loaded

    def abort(self) -> None:
        self.features = self.probs = None  # type: ignore[assignment]
        shutil.rmtree(self.tmp, ignore_errors=True)
