"""Writing one feature cache entry: the arrays, batch by batch, then an atomic rename into place;
and the temporary folders' locks, which tell a live writer's folder from a killed one's.

See :mod:`tlreg.advisor.cache` for why the arrays are preallocated and written with ordinary writes
(a full disk is then an ``OSError``, not a SIGBUS) and why each temporary folder is locked.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tlreg.registry.errors import TlregError
from tlreg.registry.weights import sha256

from .files import fsync_dir, new_dir, reserve, write_all

if TYPE_CHECKING:
    import numpy as np

    from .errors import StorageError

try:
    import fcntl
except ImportError:  # Windows: no flock; temporary folders are then told apart by age alone
    fcntl = None  # type: ignore[assignment]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
LIVE, DEAD, UNKNOWN = "being written", "left by an interrupted run", "cannot tell (no file locks here)"


@dataclass
class CachedFeatures:
    """A cache entry read back: its arrays (memory-mapped) and its description."""

    key: str
    features: np.ndarray
    probs: np.ndarray | None
    meta: dict[str, Any]


class EntryStore(Protocol):
    """What a writer needs of its cache (:class:`~tlreg.advisor.cache.FeatureCache`)."""

    def path(self, key: str) -> Path: ...
    def load(self, key: str) -> CachedFeatures | None: ...
    def write_error(self, exc: OSError) -> StorageError: ...


def _lock(folder: Path, *, exclusive: bool) -> int | None:
    """A descriptor of ``folder`` holding a ``flock``: shared and waiting (a writer's, while a sweep
    looks), or exclusive and not waiting (a sweep's: BlockingIOError while its writer lives).
    None where there are no locks (another platform, or a file system without them)."""
    if fcntl is None:
        return None
    fd = os.open(folder, os.O_RDONLY | _CLOEXEC)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_SH)
    except BlockingIOError:
        os.close(fd)
        raise
    except OSError:
        os.close(fd)
        return None
    return fd


def new_locked_tmp(parent: Path, prefix: str) -> tuple[Path, int | None]:
    """A new temporary folder, locked as a live writer's: retried if a sweep took it for a dead
    writer's (and removed it) in the moment between its creation and its lock."""
    while True:
        tmp = new_dir(parent, prefix)
        try:
            lock = _lock(tmp, exclusive=False)
            if lock is None:
                return tmp, None
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.stat(tmp), os.fstat(lock)):
                    return tmp, lock
            os.close(lock)
        except FileNotFoundError:
            continue


def tmp_state(tmp: Path, *, stale_hours: float, remove: bool) -> str:
    """LIVE, DEAD (then removed, with ``remove``) or UNKNOWN: by its writer's lock, else by age."""
    try:
        lock = _lock(tmp, exclusive=True)
    except BlockingIOError:
        return LIVE
    except PermissionError:  # another user's: only its age can tell
        lock = None
    try:
        dead = lock is not None or time.time() - tmp.stat().st_mtime > stale_hours * 3600
        if dead and remove:
            shutil.rmtree(tmp, ignore_errors=True)
        return DEAD if dead else UNKNOWN
    finally:
        if lock is not None:
            os.close(lock)


class _ArrayFile:
    """One float32 ``.npy`` array, written rows at a time with ordinary writes into disk blocks
    reserved when the file is created (so a full disk is an ``OSError`` here, at the start)."""

    def __init__(self, path: Path, shape: tuple[int, int]) -> None:
        import numpy as np  # here: `tlreg cache list` reads this module and needs no numpy

        header = io.BytesIO()
        descr = np.lib.format.dtype_to_descr(np.dtype(np.float32))
        np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
        self.path, self.shape, self.start = path, shape, header.tell()
        self.size = self.start + shape[0] * shape[1] * 4
        self.fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o666)
        try:
            write_all(self.fd, header.getvalue(), offset=0)
            reserve(self.fd, self.size)
        except BaseException:
            self.close()
            raise

    def put(self, row: int, block: np.ndarray) -> None:
        import numpy as np

        block = np.ascontiguousarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != self.shape[1]:
            raise ValueError(f"{self.path.name}: rows of {block.shape[1:]} values, not ({self.shape[1]},)")
        write_all(self._fd(), memoryview(block), offset=self.start + row * self.shape[1] * 4)

    def finish(self) -> None:
        """Full length (rows never given stay zero), on disk, closed."""
        fd = self._fd()
        if os.fstat(fd).st_size < self.size:
            os.ftruncate(fd, self.size)
        os.fsync(fd)
        self.close()

    def _fd(self) -> int:
        if self.fd is None:
            raise ValueError(f"{self.path} is closed")
        return self.fd

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


class EntryWriter:
    """Fills one entry's arrays batch by batch, then renames the folder into place.

    On any failure (here or in the caller, who calls :meth:`abort`) the temporary folder goes; an
    ``OSError`` becomes a :class:`~tlreg.advisor.errors.StorageError` naming the cache.
    """

    def __init__(
        self,
        cache: EntryStore,
        key: str,
        tmp: Path,
        lock: int | None,
        *,
        n: int,
        dim: int,
        classes: int | None,
        meta: dict[str, Any],
    ) -> None:
        self.cache, self.key, self.tmp, self.meta, self.lock = cache, key, tmp, meta, lock
        self.n, self.filled = n, 0
        self.files: dict[str, _ArrayFile] = {}
        with self._aborting():
            self.files["features"] = _ArrayFile(tmp / "features.npy", (n, dim))
            if classes:
                self.files["probs"] = _ArrayFile(tmp / "probs.npy", (n, classes))

    @contextlib.contextmanager
    def _aborting(self) -> Iterator[None]:
        try:
            yield
        except TlregError:
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            raise self.cache.write_error(exc) from exc
        except BaseException:
            self.abort()
            raise

    def write(self, features: np.ndarray, probs: np.ndarray | None) -> None:
        with self._aborting():
            end = self.filled + len(features)
            if end > self.n:
                raise ValueError(f"cache entry {self.key}: {end} rows written into {self.n}")
            self.files["features"].put(self.filled, features)
            if "probs" in self.files and probs is not None:
                self.files["probs"].put(self.filled, probs)
            self.filled = end

    def commit(self) -> CachedFeatures:
        with self._aborting():
            if self.filled != self.n:
                raise RuntimeError(f"cache entry {self.key}: {self.filled} of {self.n} rows written")
            for file in self.files.values():
                file.finish()
            meta = {
                **self.meta,
                "key": self.key,
                "created": time.time(),
                "sha256": {name: sha256(file.path) for name, file in self.files.items()},
            }
            fd = os.open(self.tmp / "meta.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o666)
            try:
                write_all(fd, json.dumps(meta, indent=1, default=str).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            final = self.cache.path(self.key)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(self.tmp, final)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                # another process committed the same entry first: keep theirs (abort drops ours)
            fsync_dir(final.parent)
        self.abort()
        loaded = self.cache.load(self.key)
        if loaded is None:
            raise RuntimeError(f"cache entry {self.key} could not be read back")
        return loaded

    def abort(self) -> None:
        """Drop the temporary entry (if it is still there) and release its lock; safe to repeat."""
        for file in self.files.values():
            file.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.lock is not None:
            with contextlib.suppress(OSError):
                os.close(self.lock)
            self.lock = None
