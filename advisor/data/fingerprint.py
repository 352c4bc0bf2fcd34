"""``fingerprint``: one sha256 that names a sample's exact content, for the cache and the audit trail.

It covers, per item in the dataset's order, the id, the label (the class *name* for
classification, so renaming a class changes it; the exact float for regression) and the content
(image file bytes, or the text as UTF-8), each length-prefixed so that no two different samples
can hash the same byte stream. Absolute paths are left out: the same data moved elsewhere keeps its
fingerprint, and one changed byte, label or sampled item gives a new one.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from tlreg.advisor.errors import DatasetError

from .dataset import Dataset

VERSION = b"tlreg-dataset-fingerprint-v1"
CHUNK = 1 << 20


def _field(digest: hashlib._Hash, data: bytes) -> None:
    digest.update(struct.pack("<Q", len(data)))
    digest.update(data)


def _file(digest: hashlib._Hash, path: Path) -> None:
    """Length, then the bytes streamed in 1 MiB chunks: big images never sit in memory whole."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(0)
            digest.update(struct.pack("<Q", size))
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc


def _label(ds: Dataset, index: int) -> bytes:
    if ds.labels is None:
        return b""
    if ds.classes is not None:
        return ds.classes[int(ds.labels[index])].encode("utf-8")
    return float(ds.labels[index]).hex().encode("ascii")


def fingerprint(ds: Dataset) -> str:
    """Hex sha256 of the items' ids, labels and contents, in order (see the module doc)."""
    digest = hashlib.sha256()
    _field(digest, VERSION)
    _field(digest, f"{ds.modality}/{ds.task}/{len(ds)}".encode())
    for index, (item_id, item) in enumerate(zip(ds.ids, ds.items, strict=True)):
        _field(digest, item_id.encode("utf-8"))
        _field(digest, _label(ds, index))
        if ds.modality == "image":
            _file(digest, Path(item))
        else:
            _field(digest, str(item).encode("utf-8"))
    return digest.hexdigest()
