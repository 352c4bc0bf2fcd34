"""Folder layouts (``class/xxx.jpg`` and flat folders of images) and ``.txt`` files of texts.

Listing is cheap on purpose: names and suffixes only, no file is opened. Whether an image really
decodes is checked later, for the sampled items only (:mod:`tlreg.advisor.data.sampling`), so a
100k-image folder is listed in about a second.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from tlreg.advisor.errors import DatasetError

from .dataset import IMAGE_SUFFIXES, LAYOUTS_HELP, Dataset, DatasetWarning, is_image_name

SPLIT_NAMES = frozenset({"train", "training", "val", "valid", "validation", "test", "testing", "dev"})


def _hidden(name: str) -> bool:
    return name.startswith(".")


def list_images(folder: str) -> list[str]:
    """Every image under ``folder`` (recursively), skipping hidden files and folders, sorted.

    Plain strings, not :class:`Path`: building 100k ``Path`` objects twice would cost more than
    the directory walk itself.
    """
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not _hidden(d)]
        found.extend(os.path.join(root, f) for f in files if not _hidden(f) and is_image_name(f))
    found.sort()
    return found


def _relative_id(path: str, base: str) -> str:
    return path[len(base) + 1 :].replace(os.sep, "/")


def visible_entries(folder: Path) -> list[Path]:
    """The folder's direct entries that are not hidden, sorted by name."""
    try:
        return sorted(p for p in folder.iterdir() if not _hidden(p.name))
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list the folder ({exc.strerror or exc}).") from exc


def load_image_folder(root: Path, entries: list[Path]) -> Dataset:
    """Class subfolders of images (classification), else a flat folder of images (unlabelled).

    Class names are the subfolder names, sorted, as torchvision's ``ImageFolder`` does; images may
    sit deeper inside a class folder. Subfolders without images are ignored; loose images beside
    class folders are ignored with a :class:`DatasetWarning`, since they have no class.
    """
    base = str(root.resolve())  # once, not per file: listing stays cheap for 100k images
    loose = [os.path.join(base, p.name) for p in entries if p.is_file() and is_image_name(p.name)]
    per_class = {p.name: list_images(os.path.join(base, p.name)) for p in entries if p.is_dir()}
    per_class = {name: files for name, files in per_class.items() if files}
    if not per_class:
        if not loose:
            suffixes = " ".join(sorted(IMAGE_SUFFIXES))
            raise DatasetError(
                f"{root}: no images found (looked for {suffixes}) and no CSV/TSV/JSONL/Parquet file.",
                hint=LAYOUTS_HELP,
            )
        return Dataset(
            path=root,
            format="flat-image-folder",
            modality="image",
            task="unlabelled",
            items=[Path(p) for p in loose],
            ids=[_relative_id(p, base) for p in loose],
        )
    _reject_split_folders(root, base, per_class)
    if loose:
        first = _relative_id(loose[0], base)
        warnings.warn(
            f"{root}: ignored {len(loose)} image(s) outside the class folders (first: {first}).",
            DatasetWarning,
            stacklevel=3,
        )
    classes = sorted(per_class)
    if len(classes) < 2:
        raise DatasetError(
            f"{root}: only one class folder with images ({classes[0]!r}); classification needs at least "
            "2 classes.",
            hint="Add a folder per class, or give a flat folder of images for label-free ranking.",
        )
    items: list[str] = []
    codes: list[int] = []
    for code, name in enumerate(classes):
        items.extend(per_class[name])
        codes.extend([code] * len(per_class[name]))
    return Dataset(
        path=root,
        format="image-folder",
        modality="image",
        task="classification",
        items=[Path(p) for p in items],
        ids=[_relative_id(p, base) for p in items],
        labels=np.asarray(codes, dtype=np.int64),
        classes=classes,
    )


def _reject_split_folders(root: Path, base: str, per_class: dict[str, list[str]]) -> None:
    """``train/cat/x.jpg`` would otherwise be read as the classes ``train`` and ``val``."""
    if not set(per_class) <= SPLIT_NAMES:
        return
    nested = all(_relative_id(p, base).count("/") >= 2 for files in per_class.values() for p in files)
    if nested:
        first = sorted(per_class)[0]
        raise DatasetError(
            f"{root}: holds split folders ({', '.join(sorted(per_class))}), not class folders.",
            hint=f"Give one split as PATH, e.g. {root / first}.",
        )


def load_text_lines(path: Path) -> Dataset:
    """One text per line, unlabelled; blank lines are skipped and ids are ``line:<n>`` (1-based)."""
    texts: list[str] = []
    ids: list[str] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                text = line.strip()
                if text:
                    texts.append(text)
                    ids.append(f"line:{number}")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: not UTF-8 text (byte {exc.start}).", hint="Save the file as UTF-8."
        ) from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc.strerror or exc}).") from exc
    if not texts:
        raise DatasetError(f"{path}: no text in the file.", hint="Put one text per line.")
    return Dataset(path=path, format="text-lines", modality="text", task="unlabelled", items=texts, ids=ids)
