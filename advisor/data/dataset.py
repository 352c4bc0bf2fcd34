"""The :class:`Dataset` record every later step (embedding, estimators, runs) consumes.

One small dataclass rather than a class per layout: once a layout is read, images and texts
only differ in what ``items`` holds, so the embedding code needs a single shape to handle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
TEXT_SUFFIXES = frozenset({".txt"})
COLUMN_FLAGS = "--text-col/--image-col/--label-col"

FORMATS = ("image-folder", "flat-image-folder", "csv", "tsv", "jsonl", "parquet", "text-lines")
MODALITIES = ("image", "text")
TASKS = ("classification", "regression", "unlabelled")

LAYOUTS_HELP = (
    "Accepted layouts: a folder of class subfolders of images (cat/001.jpg), a folder of images, "
    "a CSV/TSV/JSONL/Parquet file with a text or image-path column and an optional label column "
    "(or a folder holding exactly one such file), or a .txt file with one text per line."
)


class DatasetWarning(UserWarning):
    """A recoverable problem with the data (undecodable images skipped, loose files ignored).

    A warning class of its own, as scikit-learn does with ``ConvergenceWarning``, so callers and
    tests can filter or escalate exactly these (``-W error::tlreg.advisor.data.DatasetWarning``).
    """


def is_image_name(name: str) -> bool:
    """True for a file name with one of :data:`IMAGE_SUFFIXES` (any case)."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


@dataclass
class Dataset:
    """A detected and validated dataset, or a sample of one.

    ``items`` are what a model consumes: absolute image paths (:class:`Path`) or ``str`` texts.
    ``ids`` are stable across machines (paths relative to the dataset's folder, ``row:<i>``,
    ``line:<n>`` or an ``id`` column), so samples, fingerprints and audit records do not depend on
    where the data lives. ``labels`` are int64 codes into ``classes`` for classification, float64
    targets for regression, ``None`` when unlabelled. ``skipped`` lists ``(id, reason)`` for items
    dropped as undecodable. ``columns`` records which table columns were used (empty for folders).

    ``strict`` is carried from :func:`~tlreg.advisor.data.load_dataset` to
    :func:`~tlreg.advisor.data.sample`, which is where images are decoded (see the package doc);
    ``validated`` is True once every item has been checked to decode.
    """

    path: Path
    format: str
    modality: str
    task: str
    items: list[Path] | list[str]
    ids: list[str]
    labels: np.ndarray | None = None
    classes: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    validated: bool = False

    def __post_init__(self) -> None:
        # Programming errors, not user input: the loaders build these, so fail loudly if they disagree.
        if self.format not in FORMATS or self.modality not in MODALITIES or self.task not in TASKS:
            raise ValueError(f"bad dataset kind: {self.format}/{self.modality}/{self.task}")
        if len(self.items) != len(self.ids):
            raise ValueError(f"{len(self.items)} items but {len(self.ids)} ids")
        if (self.labels is None) != (self.task == "unlabelled"):
            raise ValueError(f"task {self.task!r} with labels={self.labels is not None}")
        if self.labels is not None and len(self.labels) != len(self.items):
            raise ValueError(f"{len(self.items)} items but {len(self.labels)} labels")
        if (self.classes is None) != (self.task != "classification"):
            raise ValueError(f"task {self.task!r} with classes={self.classes!r}")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_classes(self) -> int:
        """Number of classes (0 unless the task is classification)."""
        return len(self.classes) if self.classes is not None else 0

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """A new Dataset with the items at ``indices``, in that order.

        ``classes`` is kept whole so codes keep their meaning, even if a class has no item left:
        comparing a sample with its parent (or another sample) needs one code space.
        """
        idx = [int(i) for i in indices]
        return replace(
            self,
            items=[self.items[i] for i in idx],
            ids=[self.ids[i] for i in idx],
            labels=None if self.labels is None else self.labels[idx],
            classes=None if self.classes is None else list(self.classes),
            skipped=list(self.skipped),
            columns=dict(self.columns),
        )

    def class_counts(self) -> dict[str, int]:
        """Items per class name, in code order (empty unless classification)."""
        if self.classes is None or self.labels is None:
            return {}
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, counts, strict=True)}

    def summary(self) -> str:
        """One line for the CLI: what was found, e.g. ``120 images, 10 classes (image-folder)``."""
        what = f"{len(self)} {'images' if self.modality == 'image' else 'texts'}"
        if self.task == "classification":
            what += f", {self.num_classes} classes"
        elif self.task == "regression":
            what += ", regression targets"
        else:
            what += ", unlabelled"
        if self.skipped:
            what += f", {len(self.skipped)} skipped"
        return f"{what} ({self.format})"
