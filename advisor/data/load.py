"""``load_dataset``: turn the PATH given to ``tlreg recommend`` into a :class:`Dataset`.

Everything about *which* layout a path is lives here, so the CLI and the tests have one entry
point and every rejection carries the same list of accepted layouts.
"""

from __future__ import annotations

from pathlib import Path

from tlreg.advisor.errors import DatasetError

from .dataset import COLUMN_FLAGS, LAYOUTS_HELP, TABLE_SUFFIXES, TEXT_SUFFIXES, Dataset, is_image_name
from .folders import load_image_folder, load_text_lines, visible_entries


def load_dataset(
    path: str | Path,
    *,
    text_col: str | None = None,
    image_col: str | None = None,
    label_col: str | None = None,
    strict: bool = False,
) -> Dataset:
    """Detect the layout of ``path``, read and validate it, and return the whole Dataset.

    Images are listed, not opened: decodability is checked by :func:`~tlreg.advisor.data.sample`
    for the items it keeps (``strict=True`` makes the first undecodable one an error there instead
    of a skip). Column overrides apply to tables only. Raises :class:`DatasetError` with one line
    naming the file or column and the fix.
    """
    given = Path(path)
    target = given.expanduser()
    overrides = {"--text-col": text_col, "--image-col": image_col, "--label-col": label_col}
    if not target.exists():
        raise DatasetError(f"{given}: no such file or folder.", hint=LAYOUTS_HELP)
    if target.is_dir():
        entries = visible_entries(target)
        if not entries:
            raise DatasetError(f"{given}: the folder is empty.", hint=LAYOUTS_HELP)
        tables = [p for p in entries if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES]
        if len(tables) > 1:
            names = ", ".join(p.name for p in tables)
            raise DatasetError(
                f"{given}: holds several tables ({names}).", hint="Give the one to use as PATH."
            )
        if tables:
            return _table(tables[0], given, overrides, strict)
        _reject_overrides(given, overrides)
        dataset = load_image_folder(target, entries)
    else:
        suffix = target.suffix.lower()
        if suffix in TABLE_SUFFIXES:
            return _table(target, given, overrides, strict)
        if suffix in TEXT_SUFFIXES:
            _reject_overrides(given, overrides)
            dataset = load_text_lines(target)
        elif is_image_name(target.name):
            raise DatasetError(
                f"{given}: is a single image, not a dataset; give the folder that holds the images.",
                hint=LAYOUTS_HELP,
            )
        else:
            raise DatasetError(f"{given}: not a dataset file ({suffix or 'no suffix'}).", hint=LAYOUTS_HELP)
    dataset.path = given
    dataset.strict = strict
    return dataset


def _table(table: Path, given: Path, overrides: dict[str, str | None], strict: bool) -> Dataset:
    from .tables import load_table  # pandas: paid by tables only, not by image folders or text files

    dataset = load_table(
        table,
        TABLE_SUFFIXES[table.suffix.lower()],
        shown=given,
        text_col=overrides["--text-col"],
        image_col=overrides["--image-col"],
        label_col=overrides["--label-col"],
    )
    dataset.strict = strict
    return dataset


def _reject_overrides(given: Path, overrides: dict[str, str | None]) -> None:
    """Column flags on a folder or a .txt file are a mistake worth saying, not ignoring."""
    used = [flag for flag, value in overrides.items() if value is not None]
    if used:
        raise DatasetError(
            f"{given}: column options ({', '.join(used)}) apply to CSV/TSV/JSONL/Parquet tables only, "
            "and this is not one.",
            hint=f"Drop {COLUMN_FLAGS}, or give a table as PATH.",
        )
