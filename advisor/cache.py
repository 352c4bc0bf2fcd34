"""The feature cache: a model's features for a data sample, computed once, verified on every read.

An entry is a folder ``<cache>/features/<key[:2]>/<key>/`` holding ``features.npy`` (float32
``[N, D]``), ``probs.npy`` (float32 ``[N, K]``, when the model has a source head) and
``meta.json`` (what the entry is, the arrays' shapes and their sha256). The key hashes everything
the features depend on: model ref, pinned revision, preprocessing, pretrained or random init,
the data fingerprint and the sampled ids. Entries are written into a temporary folder and renamed
into place, so a reader sees a whole entry or none, and two processes computing the same entry
both succeed (the second rename loses and its copy is dropped). A corrupt entry (a checksum
mismatch, a missing or damaged file) is reported by :class:`CacheCorruptWarning`, removed and
recomputed by the caller; one this user may not read is reported as such
(:class:`~tlreg.advisor.errors.CacheAccessError`) and left alone.

**A full disk** is an error, never a crash: each array's disk blocks are reserved when its file is
created (``posix_fallocate``), and batches go in with ordinary writes, so ``ENOSPC`` is an
``OSError`` at the start, not a SIGBUS when a page of a memory-mapped sparse file cannot be
backed. Any failing write removes the temporary entry and raises a one-line
:class:`~tlreg.advisor.errors.StorageError` naming the cache and what to do.

**Writers killed mid-way** (SIGKILL, power loss) leave their ``.tmp-*`` folder. Each writer holds a
shared ``flock`` on its folder while it lives; the kernel drops it when the process dies, however
it dies. So the next writer (and ``prune``) removes every temporary folder it can lock
exclusively, and never one whose writer is alive. Where the file system has no locks, only folders
older than ``stale_tmp_hours`` are removed. ``tlreg cache list --all`` shows them all.

**Permissions** follow the umask (``tempfile`` would make them ``0700``), so a team's shared cache
works given a common group and ``umask 002``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlreg.registry import config
from tlreg.registry.weights import sha256

from .cache_writer import DEAD, CachedFeatures, EntryWriter, new_locked_tmp, tmp_state
from .errors import CacheAccessError, DiskFullError, StorageError
from .files import is_disk_full

try:
    import pwd
except ImportError:  # Windows
    pwd = None  # type: ignore[assignment]

FORMAT_VERSION = 1
_TMP_PREFIX = ".tmp-"
STALE_TMP_HOURS = 6.0


class CacheCorruptWarning(UserWarning):
    """A cache entry failed its checksum or could not be read; it is removed and recomputed."""


def cache_key(**parts: Any) -> str:
    """A stable hash of everything the cached features depend on."""
    blob = json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class EntryInfo:
    key: str
    path: Path
    meta: dict[str, Any]
    size: int


@dataclass
class TempInfo:
    """A temporary entry: one being written, or one a killed writer left (``state``)."""

    path: Path
    size: int
    modified: float
    state: str


class FeatureCache:
    """Feature cache under ``root`` (default: ``TLREG_CACHE``, else the user cache dir)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else config.cache_dir()
        self.features_dir = self.root / "features"

    def path(self, key: str) -> Path:
        return self.features_dir / key[:2] / key

    def load(self, key: str, *, repair: bool = True) -> CachedFeatures | None:
        """The entry, verified against its checksums; ``None`` when absent or corrupt (then removed,
        unless ``repair`` is False).

        Raises :class:`CacheAccessError` for an entry this user may not read: it is not corrupt,
        and removing it would not be ours to do.
        """
        folder = self.path(key)
        try:
            is_dir = stat.S_ISDIR(os.stat(folder).st_mode)
        except PermissionError as exc:  # a folder above it that this user may not search
            raise self._unreadable(folder, exc) from exc
        except OSError:
            return None
        if not is_dir:
            return None
        import numpy as np  # here: listing, pruning and clearing the cache need no numpy

        try:
            meta = json.loads((folder / "meta.json").read_text())
            arrays = {}
            for name, expected in meta["sha256"].items():
                file = folder / f"{name}.npy"
                if sha256(file) != expected:
                    raise ValueError(f"{file.name} does not match its checksum")
                arrays[name] = np.load(file, mmap_mode="r")
        except PermissionError as exc:
            raise self._unreadable(folder, exc) from exc
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            return self._corrupt(folder, exc, remove=repair)
        return CachedFeatures(key, arrays["features"], arrays.get("probs"), meta)

    def _corrupt(self, folder: Path, exc: Exception, *, remove: bool) -> None:
        warnings.warn(
            f"Feature cache entry {folder} is corrupt ({exc}); recomputing it.",
            CacheCorruptWarning,
            stacklevel=3,
        )
        if remove:
            shutil.rmtree(folder, ignore_errors=True)

    def _unreadable(self, folder: Path, exc: OSError) -> CacheAccessError:
        owner = "another user"
        for path in (folder, folder.parent):
            with contextlib.suppress(OSError, KeyError, AttributeError):  # no pwd on Windows
                owner = pwd.getpwuid(path.stat().st_uid).pw_name
                break
        return CacheAccessError(
            f"Feature cache entry {folder} cannot be read by {config.user()} ({exc.strerror}): "
            f"{owner} wrote it without read permission for others.",
            hint=f"Ask them to run: chmod -R a+rX {self.root} (a shared cache wants a common group and "
            "umask 002), or use a cache of your own: TLREG_CACHE=DIR.",
        )

    def write_error(self, exc: OSError) -> StorageError:
        """Tlreg's one-line error for a write into the cache that the system refused."""
        if is_disk_full(exc):
            return DiskFullError(
                f"{exc.strerror or 'No space left on device'} for the feature cache in {self.root}: "
                "nothing was cached and the partial entry was removed.",
                hint="Free space (tlreg cache prune --older-than DAYS or --max-size BYTES, or tlreg cache "
                "clear), or set TLREG_CACHE to a disk with room, and run again.",
            )
        if isinstance(exc, PermissionError):
            return CacheAccessError(
                f"Cannot write to the feature cache in {self.root} ({exc.strerror}: {exc.filename}).",
                hint="A cache shared by several users needs folders they can all write (a common group, "
                f"umask 002, chmod -R g+rwX {self.root}); or use a cache of your own: TLREG_CACHE=DIR.",
            )
        return StorageError(
            f"Cannot write the feature cache entry in {self.root} ({exc.strerror or exc}).",
            hint="Check that disk, or set TLREG_CACHE to another folder.",
        )

    def writer(self, key: str, *, n: int, dim: int, classes: int | None, meta: dict[str, Any]) -> EntryWriter:
        """A writer that fills the arrays batch by batch (memory stays one batch) and commits atomically.

        It first removes the temporary entries of writers that died (see the module doc).
        """
        try:
            self.features_dir.mkdir(parents=True, exist_ok=True)
            self.sweep()
            tmp, lock = new_locked_tmp(self.features_dir, _TMP_PREFIX)
        except OSError as exc:
            raise self.write_error(exc) from exc
        return EntryWriter(self, key, tmp, lock, n=n, dim=dim, classes=classes, meta=meta)

    def _tmp_dirs(self) -> list[Path]:
        if not self.features_dir.is_dir():
            return []
        return sorted(p for p in self.features_dir.glob(f"{_TMP_PREFIX}*") if p.is_dir())

    def sweep(self, *, stale_hours: float = STALE_TMP_HOURS) -> list[Path]:
        """Remove the temporary folders of writers that are no longer running; returns them."""
        removed = []
        for tmp in self._tmp_dirs():
            with contextlib.suppress(OSError):
                if tmp_state(tmp, stale_hours=stale_hours, remove=True) == DEAD:
                    removed.append(tmp)
        return removed

    def temporaries(self, *, stale_hours: float = STALE_TMP_HOURS) -> list[TempInfo]:
        """Every temporary entry, with whether its writer still runs (nothing is removed)."""
        found = []
        for tmp in self._tmp_dirs():
            with contextlib.suppress(OSError):
                state = tmp_state(tmp, stale_hours=stale_hours, remove=False)
                found.append(TempInfo(tmp, _size(tmp), tmp.stat().st_mtime, state))
        return found

    def entries(self) -> Iterator[EntryInfo]:
        if not self.features_dir.is_dir():
            return
        for folder in sorted(self.features_dir.glob("??/*")):
            try:
                meta = json.loads((folder / "meta.json").read_text())
            except (FileNotFoundError, NotADirectoryError):
                continue
            except PermissionError as exc:
                meta = {"label": f"(unreadable: {exc.strerror})"}
            except (OSError, json.JSONDecodeError):
                meta = {}
            yield EntryInfo(folder.name, folder, meta, _size(folder))

    def remove(self, key: str) -> None:
        shutil.rmtree(self.path(key), ignore_errors=True)

    def prune(
        self,
        *,
        older_than_days: float | None = None,
        max_bytes: int | None = None,
        stale_tmp_hours: float = STALE_TMP_HOURS,
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
        self.sweep(stale_hours=stale_tmp_hours)
        return removed

    def clear(self) -> int:
        count = sum(1 for _ in self.entries())
        shutil.rmtree(self.features_dir, ignore_errors=True)
        return count


def _size(folder: Path) -> int:
    total = 0
    with contextlib.suppress(OSError):
        for f in folder.iterdir():
            with contextlib.suppress(OSError):
                total += f.stat().st_size if f.is_file() else 0
    return total


class OverlayCache(FeatureCache):
    """Reads the entries of ``shared`` without ever changing it, and writes what it embeds under
    ``root``, a folder of its own: a reader that must not write (``tlreg ui``'s verify button) gets
    the shared cache's speed and throws its own entries away with ``root``."""

    def __init__(self, root: str | Path, *, shared: FeatureCache) -> None:
        super().__init__(root)
        self.shared = shared

    def load(self, key: str, *, repair: bool = True) -> CachedFeatures | None:
        return super().load(key, repair=repair) or self.shared.load(key, repair=False)
