"""Tables (CSV, TSV, JSONL, Parquet): read with pandas, find the input and label columns.

Detection is by column name first, then by content, and every choice can be overridden
(``text_col``, ``image_col``, ``label_col``), because a wrong guess here silently ranks models on
the wrong signal. An image-path column wins over a text column: a table of images with captions is
an image dataset unless the user says ``--text-col``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_float_dtype, is_numeric_dtype, is_string_dtype
from tlreg.advisor.errors import DatasetError

from .dataset import COLUMN_FLAGS, Dataset, is_image_name

LABEL_NAMES = ("label", "labels", "class", "target", "y", "category")
TEXT_NAMES = ("text", "sentence", "review", "content", "body", "document", "comment", "message", "title")
# Names that mean "image" whatever the values look like; the others also need image suffixes.
STRONG_IMAGE_NAMES = ("image", "image_path", "img")
IMAGE_NAMES = (*STRONG_IMAGE_NAMES, "path", "file", "filename")
ID_NAMES = ("id",)
READ_HINTS = {
    "csv": "UTF-8, one header row, the same number of fields on every line",
    "tsv": "UTF-8, one header row, tab-separated, the same number of fields on every line",
    "jsonl": "one JSON object per line, UTF-8",
    "parquet": "a Parquet file as pandas or pyarrow write it",
}

# Numeric labels with more distinct values than this (and over REGRESSION_FRACTION of the rows
# distinct) are read as regression targets: 50 classes of integers is plausible, 500 is not.
REGRESSION_MIN_DISTINCT = 50
REGRESSION_FRACTION = 0.2


def read_table(path: Path, fmt: str) -> pd.DataFrame:
    """Read the whole table; any parse failure becomes one :class:`DatasetError` line.

    A cell is missing when it is empty or holds only whitespace, in every format: a CSV reader sees
    an empty cell as missing while JSONL and Parquet keep ``""``, and the same data must not be
    refused in one format and embedded as an empty text (or a class named ``""``) in another. A
    blank string carries nothing to embed or to learn from, as blank lines of a ``.txt`` file are
    skipped. Words such as ``NA``, ``null`` or ``None`` are not missing: they are legitimate texts
    and class names.
    """
    try:
        if fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else ","
            frame = pd.read_csv(path, sep=sep, keep_default_na=False, na_values=[""])
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True)
        else:
            frame = pd.read_parquet(path, engine="pyarrow")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise DatasetError(
            f"{path}: cannot read it as {fmt.upper()} ({type(exc).__name__}: {detail}).",
            hint=f"Check that it is valid: {READ_HINTS[fmt]}.",
        ) from exc
    if frame.empty:
        raise DatasetError(f"{path}: the table has no rows.", hint="Give a table with one row per sample.")
    frame.columns = [str(c) for c in frame.columns]
    return _blank_as_missing(frame)


def _blank_as_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """Empty and whitespace-only strings become missing values (see :func:`read_table`)."""
    for column in frame.columns:
        values = frame[column]
        if is_string_dtype(values) or values.dtype == object:
            blank = values.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
            if blank.any():
                frame[column] = values.mask(blank)
    return frame


def _by_name(frame: pd.DataFrame, names: tuple[str, ...], exclude: set[str]) -> str | None:
    lowered = {c.lower(): c for c in reversed(frame.columns) if c not in exclude}
    return next((lowered[n] for n in names if n in lowered), None)


def _is_text(series: pd.Series) -> bool:
    return is_string_dtype(series) and series.notna().any()


def _looks_like_images(series: pd.Series) -> bool:
    values = series.dropna()
    return _is_text(series) and bool(values.map(is_image_name).all())


def _check_override(path: Path, frame: pd.DataFrame, name: str | None, flag: str) -> None:
    if name is not None and name not in frame.columns:
        raise DatasetError(
            f"{path}: {flag} {name!r} is not a column; found: {', '.join(frame.columns)}.",
            hint="Column names are case-sensitive.",
        )


def detect_columns(
    path: Path,
    frame: pd.DataFrame,
    *,
    text_col: str | None,
    image_col: str | None,
    label_col: str | None,
) -> dict[str, str]:
    """Which column is the input (``text`` or ``image``) and which is the ``label`` (if any)."""
    for name, flag in ((text_col, "--text-col"), (image_col, "--image-col"), (label_col, "--label-col")):
        _check_override(path, frame, name, flag)
    if text_col is not None and image_col is not None:
        raise DatasetError(f"{path}: give --text-col or --image-col, not both.")
    inputs = {c for c in (text_col, image_col) if c is not None}
    label = label_col or _by_name(frame, LABEL_NAMES, inputs)
    used = {label} if label else set()
    if image_col or text_col:
        columns = {"image": image_col} if image_col else {"text": text_col}
    elif found := _find_image_column(frame, used):
        columns = {"image": found}
    elif found := _find_text_column(frame, used):
        columns = {"text": found}
    else:
        raise DatasetError(
            f"{path}: no text or image-path column found among: {', '.join(frame.columns)}.",
            hint=f"Name the columns with {COLUMN_FLAGS}.",
        )
    if label:
        if label in columns.values():
            raise DatasetError(f"{path}: column {label!r} cannot be both the input and the label.")
        columns["label"] = label
    return columns


def _find_image_column(frame: pd.DataFrame, exclude: set[str]) -> str | None:
    strong = _by_name(frame, STRONG_IMAGE_NAMES, exclude)
    if strong is not None and _is_text(frame[strong]):
        return strong
    candidates = [c for c in frame.columns if c not in exclude and _looks_like_images(frame[c])]
    named = _by_name(frame[candidates], IMAGE_NAMES, exclude) if candidates else None
    return named or (candidates[0] if candidates else None)


def _find_text_column(frame: pd.DataFrame, exclude: set[str]) -> str | None:
    named = _by_name(frame, TEXT_NAMES, exclude | set(ID_NAMES))
    if named is not None and _is_text(frame[named]):
        return named
    skip = exclude | {c for c in frame.columns if c.lower() in ID_NAMES}
    texts = [c for c in frame.columns if c not in skip and _is_text(frame[c])]
    if not texts:
        return None
    return max(texts, key=lambda c: frame[c].dropna().astype(str).str.len().mean())


def _missing(path: Path, frame: pd.DataFrame, column: str, what: str) -> None:
    n_missing = int(frame[column].isna().sum())
    if n_missing:
        first = int(np.flatnonzero(frame[column].isna().to_numpy())[0])
        raise DatasetError(
            f"{path}: {n_missing} of {len(frame)} rows have no {what} in column {column!r} "
            f"(empty, blank or missing; first: data row {first}, counted from 0).",
            hint="Drop or fill those rows.",
        )


NON_FINITE_WORDS = frozenset({"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    """'2, 7' or '2, 7, 9, 11, 12 and 3 more': data rows counted from 0, as the other messages count."""
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _non_finite(path: Path, frame: pd.DataFrame, column: str) -> None:
    """Refuse labels that are numbers except for NaN or infinite values.

    A numeric column read from JSONL or Parquet may hold ``inf``; a CSV column of numbers with the
    words ``nan``/``NaN`` in some rows is read as strings (only empty cells count as missing), and
    would silently become as many one-item classes as it has distinct values. Either way no
    estimator can use those rows, so the rows are named instead.
    """
    values = frame[column]
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if bad.any():
            raise DatasetError(
                f"{path}: targets in column {column!r} are infinite in rows {_rows(bad)} (counted from 0).",
                hint="Drop those rows or replace the values with finite numbers.",
            )
        return
    words = values.astype(str).str.strip().str.lower()
    named = words.isin(NON_FINITE_WORDS).to_numpy()
    numeric = pd.to_numeric(values, errors="coerce").notna().to_numpy()
    if named.any() and (numeric | named).all():
        found = ", ".join(sorted({str(v).strip() for v in values[named]}))
        raise DatasetError(
            f"{path}: column {column!r} holds numbers, and the words {found} in rows {_rows(named)} "
            "(counted from 0).",
            hint="Drop or fill those rows (an empty cell counts as missing), or name another --label-col.",
        )


def encode_labels(values: pd.Series) -> tuple[str, np.ndarray, list[str] | None]:
    """``(task, labels, classes)``: regression for many-valued numbers, classification otherwise.

    Class codes follow the sorted values (numeric order for numbers, so ``2`` sorts before ``10``).
    """
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        n_distinct = len(np.unique(numbers))
        non_integer = is_float_dtype(values) and not np.all(np.equal(np.mod(numbers, 1), 0))
        many = n_distinct > REGRESSION_MIN_DISTINCT and n_distinct > REGRESSION_FRACTION * len(numbers)
        if non_integer or many:
            return "regression", numbers, None
        uniques, codes = np.unique(numbers.astype(np.int64), return_inverse=True)
        return "classification", codes.astype(np.int64), [str(u) for u in uniques]
    codes, uniques = pd.factorize(values.astype(str), sort=True)
    return "classification", codes.astype(np.int64), [str(u) for u in uniques]


def _table_ids(frame: pd.DataFrame, exclude: set[str]) -> list[str]:
    """An ``id`` column's values when they are unique and complete, else ``row:<index>``."""
    name = _by_name(frame, ID_NAMES, exclude)
    if name is not None:
        col = frame[name]
        if col.notna().all() and col.astype(str).is_unique:
            return col.astype(str).tolist()
    return [f"row:{i}" for i in range(len(frame))]


def _image_paths(path: Path, frame: pd.DataFrame, column: str) -> list[Path]:
    """Absolute image paths; relative ones are relative to the table's folder. All must exist."""
    base = path.resolve().parent
    paths = [Path(os.path.normpath(base / Path(str(v)).expanduser())) for v in frame[column]]
    absent = [(i, p) for i, p in enumerate(paths) if not p.is_file()]
    if absent:
        row, first = absent[0]
        raise DatasetError(
            f"{path}: {len(absent)} of {len(paths)} image paths in column {column!r} do not exist "
            f"(first: data row {row}, {first}).",
            hint=f"Paths are read relative to {base}; fix them or give absolute paths.",
        )
    return paths


def load_table(
    path: Path,
    fmt: str,
    *,
    shown: Path,
    text_col: str | None = None,
    image_col: str | None = None,
    label_col: str | None = None,
) -> Dataset:
    """Read ``path`` and build the Dataset; ``shown`` is the path the user gave (kept in ``Dataset.path``)."""
    frame = read_table(path, fmt)
    columns = detect_columns(path, frame, text_col=text_col, image_col=image_col, label_col=label_col)
    source = columns.get("image") or columns["text"]
    _missing(path, frame, source, "image path" if "image" in columns else "text")
    labels: np.ndarray | None = None
    classes: list[str] | None = None
    task = "unlabelled"
    if "label" in columns:
        _missing(path, frame, columns["label"], "label")
        _non_finite(path, frame, columns["label"])
        task, labels, classes = encode_labels(frame[columns["label"]])
        if classes is not None and len(classes) < 2:
            raise DatasetError(
                f"{path}: column {columns['label']!r} holds a single class ({classes[0]!r}); "
                "classification needs at least 2 classes.",
                hint="Check the label column (--label-col), or drop it for label-free ranking.",
            )
    if "image" in columns:
        modality, items = "image", _image_paths(path, frame, source)
    else:
        modality, items = "text", frame[source].astype(str).tolist()
    return Dataset(
        path=shown,
        format=fmt,
        modality=modality,
        task=task,
        items=items,
        ids=_table_ids(frame, set(columns.values())),
        labels=labels,
        classes=classes,
        columns=columns,
    )
