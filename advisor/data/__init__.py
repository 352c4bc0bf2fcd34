"""Datasets for ``tlreg recommend PATH``: detect the layout, validate, sample, fingerprint.

Step 1 of the data flow (see DESIGN.md)::

    ds = load_dataset("./data")                        # list and validate; images are not opened
    sub = sample(ds, per_class=50, max_samples=2000)   # stratified, seeded; sampled images decoded
    fp = fingerprint(sub)                              # sha256 of ids, labels and bytes

Layouts: a folder of class subfolders of images (``image-folder``), a folder of images
(``flat-image-folder``), a CSV/TSV/JSONL/Parquet table with a text or image-path column and an
optional label column (or a folder holding exactly one table), and a ``.txt`` file with one text per
line (``text-lines``). Bad input raises :class:`~tlreg.advisor.errors.DatasetError` with one line
naming the file or column and the fix; recoverable problems warn with :class:`DatasetWarning`.
"""

from __future__ import annotations

from .dataset import IMAGE_SUFFIXES, Dataset, DatasetWarning
from .fingerprint import fingerprint
from .load import load_dataset
from .sampling import decode_error, require_scorable, sample

__all__ = [
    "IMAGE_SUFFIXES",
    "Dataset",
    "DatasetWarning",
    "decode_error",
    "fingerprint",
    "load_dataset",
    "require_scorable",
    "sample",
]
