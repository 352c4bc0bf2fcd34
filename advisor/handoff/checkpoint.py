"""Atomic writes for fine-tuning outputs: a file or folder is either the old one or the new one, whole.

Why bytes are written here and not by the libraries: on a full disk, safetensors' ``save_file``
raises ``SafetensorError`` and ``torch.save`` a ``RuntimeError`` ("unexpected pos ...") rather than
``OSError(ENOSPC)``. So tensors are serialised in memory (``safetensors.torch.save``, ``torch.save`` to
a buffer) and written by :func:`write_file`, which writes every byte (:func:`tlreg.advisor.files.write_all`),
fsyncs, and only then renames the temporary file over the target: the first failing write raises
``OSError``, the temporary file is removed, and the previous version is untouched. Files and folders
get the umask's permissions, so a team can read each other's outputs.

A folder (the best model: weights, config, tokenizer) is built in a temporary sibling and swapped in
by two renames (old -> ``.old-*``, new -> final); :func:`recover` undoes a crash between the two.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..errors import DiskFullError
from ..files import fsync_dir, new_dir, write_file

TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"


def write_json(path: str | Path, obj: Any) -> None:
    write_file(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def write_text(path: str | Path, text: str) -> None:
    write_file(path, text.encode())


def torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def disk_full(path: Path, exc: BaseException, kept: str, *, checkpoint: Path) -> DiskFullError:
    """The one-line error for a save that ran out of space, saying what was kept and how to go on:
    ``--resume`` only where ``checkpoint`` exists to resume from, else the same command again."""
    how = (
        "run the same command with --resume to continue"
        if checkpoint.is_file()
        else "run the same command again (no checkpoint was written yet: it starts afresh)"
    )
    return DiskFullError(
        f"No space left on the device while saving {path}: nothing was overwritten; {kept}.",
        hint=f"Free some space and {how}.",
    )


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``final``; when the block succeeds, it replaces ``final``.

    On any error the temporary folder is removed and ``final`` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_dir(final.parent, f"{TMP_PREFIX}{final.name}-")
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                with open(file, "rb") as fh:
                    os.fsync(fh.fileno())
        old = None
        if final.exists():
            old = final.parent / f"{OLD_PREFIX}{final.name}-{tmp.name.rsplit('-', 1)[-1]}"
            os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(final.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def recover(folder: Path) -> None:
    """Tidy ``folder`` after a process died mid-save: put back a folder whose swap was cut between
    its two renames, and drop temporary files and folders."""
    if not folder.is_dir():
        return
    for old in sorted(folder.glob(f"{OLD_PREFIX}*")):
        name = old.name.removeprefix(OLD_PREFIX).rsplit("-", 1)[0]
        if not (folder / name).exists():
            os.rename(old, folder / name)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in folder.glob(f"{TMP_PREFIX}*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def load_torch(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training checkpoint, loaded safely (``weights_only=True``: tensors and plain values only)."""
    return torch.load(path, map_location=map_location, weights_only=True)
