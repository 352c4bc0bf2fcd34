"""Writing files the way every tlreg output is written: new names that cannot collide, modes that
follow the umask, every byte down or an ``OSError``.

Why not :mod:`tempfile`: ``mkstemp`` and ``mkdtemp`` create ``0600`` files and ``0700`` folders
whatever the umask, and a temporary that is renamed into place keeps them, so a cache or an output
folder shared by a team became unreadable to everyone but its writer. Here a new file is created
``0666`` and a new folder ``0777``, less the umask, as ``open`` and ``mkdir`` do.

A file replaced whole (:func:`write_file`) is written beside it and renamed into place: a reader
sees the old file or the new one, never a part.

Why bytes go through :func:`write_all`: a bare ``os.write`` on a full disk may return a short
count without any error (measured on a 256 KiB tmpfs); a loop that insists turns that into
``OSError(ENOSPC)``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC or EDQUOT, however the library that hit it reported it (some wrap it)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text or "os error 28" in text


def new_dir(parent: Path, prefix: str) -> Path:
    """A new, empty folder ``parent/<prefix><random>`` with the umask's permissions."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue


def new_file(parent: Path, prefix: str) -> tuple[int, Path]:
    """A new, empty file ``parent/<prefix><random>`` open for writing (its descriptor), with the
    umask's permissions."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o666), path
        except FileExistsError:
            continue


def write_all(fd: int, data: bytes | memoryview, *, offset: int | None = None) -> None:
    """Write every byte of ``data`` (at ``offset``, or at the file position); ``OSError`` if not."""
    view = memoryview(data).cast("B")
    if offset is not None and not hasattr(os, "pwrite"):  # Windows
        os.lseek(fd, offset, os.SEEK_SET)
        offset = None
    while view:
        written = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        if written <= 0:  # a short write that makes no progress is a full disk in practice
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]
        if offset is not None:
            offset += written


def reserve(fd: int, size: int) -> None:
    """Allocate the file's first ``size`` bytes on disk now, so a full disk is an ``OSError`` here
    rather than a fault later (pages of a memory-mapped sparse file killed the process with SIGBUS).

    File systems that cannot preallocate (and platforms without ``posix_fallocate``) are left to
    report a full disk on the writes themselves.
    """
    if size <= 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the file system lets a folder be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_file(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_file(path.parent, f".tmp-{path.name}-")
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
