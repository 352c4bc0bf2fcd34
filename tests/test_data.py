"""tlreg.advisor.data: layout detection, validation messages, sampling, fingerprints, demo data."""

from __future__ import annotations

import importlib.resources
import importlib.util
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from tlreg.advisor.data import Dataset, DatasetWarning, fingerprint, load_dataset, sample
from tlreg.advisor.data.sampling import _quotas, id_key
from tlreg.advisor.errors import DatasetError

# ---------------------------------------------------------------- helpers and fixtures


def write_png(path: Path, seed: int) -> Path:
    """A tiny random RGB PNG, different for each seed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_jpeg(path: Path, seed: int, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """``cat`` (4), ``dog`` (3), ``fox`` (2) images; plus hidden files the loader must ignore."""
    root = tmp_path / "pets"
    seed = 0
    for name, count in (("cat", 4), ("dog", 3), ("fox", 2)):
        for k in range(count):
            seed += 1
            write_png(root / name / f"{name}{k}.png", seed)
    write_png(root / ".cache" / "x.png", 99)
    write_png(root / "cat" / ".hidden.png", 98)
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


TOPIC_ROWS = [
    ("The striker scored twice in the second half of the match", "sport"),
    ("She won the tennis final in straight sets yesterday", "sport"),
    ("The team trains every morning before the league game", "sport"),
    ("Simmer the sauce gently and season it with salt", "cooking"),
    ("Knead the dough until smooth, then let it rise", "cooking"),
    ("Roast the vegetables with olive oil and garlic", "cooking"),
]


def text_frame() -> pd.DataFrame:
    return pd.DataFrame({"text": [t for t, _ in TOPIC_ROWS], "label": [lab for _, lab in TOPIC_ROWS]})


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    return path


def text_dataset(counts: dict[str, int]) -> Dataset:
    """An in-memory text classification Dataset, for sampling tests that need no files."""
    texts, ids, codes = [], [], []
    for code, (name, count) in enumerate(counts.items()):
        for k in range(count):
            texts.append(f"{name} text {k}")
            ids.append(f"{name}-{k}")
            codes.append(code)
    return Dataset(
        path=Path("mem.csv"),
        format="csv",
        modality="text",
        task="classification",
        items=texts,
        ids=ids,
        labels=np.asarray(codes, dtype=np.int64),
        classes=list(counts),
    )


def demo_root() -> Path:
    return Path(str(importlib.resources.files("tlreg.data") / "demo"))


# ---------------------------------------------------------------- detection


def test_image_folder_is_classification(image_folder: Path) -> None:
    ds = load_dataset(image_folder)
    assert (ds.format, ds.modality, ds.task) == ("image-folder", "image", "classification")
    assert ds.classes == ["cat", "dog", "fox"]
    assert len(ds) == 9 and ds.columns == {} and ds.skipped == []
    assert ds.labels is not None and ds.labels.dtype == np.int64
    assert ds.class_counts() == {"cat": 4, "dog": 3, "fox": 2}
    assert "cat/cat0.png" in ds.ids and not any(".hidden" in i or ".cache" in i for i in ds.ids)
    assert all(isinstance(p, Path) and p.is_absolute() and p.is_file() for p in ds.items)
    assert ds.path == image_folder


def test_image_folder_nested_and_uppercase_suffix(tmp_path: Path) -> None:
    write_png(tmp_path / "a" / "deep" / "x.PNG", 1)
    write_png(tmp_path / "b" / "y.png", 2)
    ds = load_dataset(tmp_path)
    assert ds.ids == ["a/deep/x.PNG", "b/y.png"]
    assert ds.labels.tolist() == [0, 1]


def test_flat_folder_is_unlabelled(tmp_path: Path) -> None:
    for k in range(3):
        write_png(tmp_path / f"img{k}.jpeg", k)
    ds = load_dataset(tmp_path)
    assert (ds.format, ds.modality, ds.task) == ("flat-image-folder", "image", "unlabelled")
    assert ds.labels is None and ds.classes is None and len(ds) == 3


def test_loose_images_beside_class_folders_warn(image_folder: Path) -> None:
    write_png(image_folder / "stray.png", 5)
    with pytest.warns(DatasetWarning, match="stray.png"):
        ds = load_dataset(image_folder)
    assert "stray.png" not in ds.ids


@pytest.mark.parametrize(
    ("suffix", "fmt"), [(".csv", "csv"), (".tsv", "tsv"), (".jsonl", "jsonl"), (".parquet", "parquet")]
)
def test_text_tables(tmp_path: Path, suffix: str, fmt: str) -> None:
    path = write_table(text_frame(), tmp_path / f"topics{suffix}")
    ds = load_dataset(path)
    assert (ds.format, ds.modality, ds.task) == (fmt, "text", "classification")
    assert ds.columns == {"text": "text", "label": "label"}
    assert ds.classes == ["cooking", "sport"]
    assert ds.items[0] == TOPIC_ROWS[0][0] and ds.ids[0] == "row:0"


def test_folder_holding_one_table(tmp_path: Path) -> None:
    write_table(text_frame(), tmp_path / "data.jsonl")
    (tmp_path / "README.md").write_text("about")
    assert load_dataset(tmp_path).format == "jsonl"


def test_text_column_by_length_and_label_by_name_any_case(tmp_path: Path) -> None:
    frame = text_frame().rename(columns={"text": "utterance", "label": "Category"})
    frame.insert(0, "lang", "en")
    ds = load_dataset(write_table(frame, tmp_path / "t.csv"))
    assert ds.columns == {"text": "utterance", "label": "Category"}


def test_overrides_win_and_id_column_is_used(tmp_path: Path) -> None:
    frame = text_frame().rename(columns={"label": "topic"})
    frame["label"] = ["x", "y"] * 3
    frame["summary"] = "short"
    frame["ID"] = [f"doc{k}" for k in range(6)]
    ds = load_dataset(write_table(frame, tmp_path / "t.csv"), text_col="summary", label_col="topic")
    assert ds.columns == {"text": "summary", "label": "topic"}
    assert ds.ids == [f"doc{k}" for k in range(6)] and ds.items[0] == "short"


def test_image_path_table(tmp_path: Path) -> None:
    for k in range(4):
        write_png(tmp_path / "imgs" / f"{k}.png", k)
    frame = pd.DataFrame({"filename": [f"imgs/{k}.png" for k in range(4)], "y": [0, 1, 0, 1]})
    ds = load_dataset(write_table(frame, tmp_path / "meta" / ".." / "index.csv"))
    assert (ds.modality, ds.task, ds.columns) == (
        "image",
        "classification",
        {"image": "filename", "label": "y"},
    )
    assert ds.items[0] == (tmp_path / "imgs" / "0.png").resolve() and ds.classes == ["0", "1"]


def test_image_column_found_by_suffix(tmp_path: Path) -> None:
    paths = [str(write_png(tmp_path / f"p{k}.png", k)) for k in range(2)]
    frame = pd.DataFrame({"caption": ["a long caption about a picture"] * 2, "pic": paths})
    ds = load_dataset(write_table(frame, tmp_path / "x.parquet"))
    assert ds.columns == {"image": "pic"} and ds.task == "unlabelled"


def test_regression_and_numeric_classes(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"text": [f"sample {k}" for k in range(6)], "target": [0.5, 1.25, 2.0, 3.0, 4.5, 5.0]}
    )
    ds = load_dataset(write_table(frame, tmp_path / "r.csv"))
    assert ds.task == "regression" and ds.labels.dtype == np.float64 and ds.classes is None
    many = pd.DataFrame({"text": [f"s{k}" for k in range(200)], "label": range(200)})
    assert load_dataset(write_table(many, tmp_path / "m.csv")).task == "regression"
    few = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [10, 2, 10, 2]})
    ds = load_dataset(write_table(few, tmp_path / "f.csv"))
    assert ds.task == "classification" and ds.classes == ["2", "10"] and ds.labels.tolist() == [1, 0, 1, 0]


def test_unlabelled_table_and_text_lines(tmp_path: Path) -> None:
    ds = load_dataset(write_table(text_frame()[["text"]], tmp_path / "u.csv"))
    assert ds.task == "unlabelled" and ds.columns == {"text": "text"}
    lines = tmp_path / "texts.txt"
    lines.write_text("first text\n\nsecond text\n", encoding="utf-8")
    ds = load_dataset(lines)
    assert (ds.format, ds.task, ds.items, ds.ids) == (
        "text-lines",
        "unlabelled",
        ["first text", "second text"],
        ["line:1", "line:3"],
    )


def test_na_words_are_text_not_missing(tmp_path: Path) -> None:
    path = tmp_path / "na.csv"
    path.write_text("text,label\nNA,None\nnull,a\n", encoding="utf-8")
    ds = load_dataset(path)
    assert ds.items == ["NA", "null"] and ds.classes == ["None", "a"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("column", ["text", "label"])
def test_empty_and_blank_cells_are_missing_in_every_format(tmp_path: Path, suffix: str, column: str) -> None:
    """An empty cell was refused in a CSV but embedded as "" from JSONL or Parquet; blank ones everywhere."""
    frame = text_frame()
    frame.loc[2, column] = ""
    frame.loc[4, column] = " \t "
    path = write_table(frame, tmp_path / f"holes{suffix}")
    what = "text" if column == "text" else "label"
    with pytest.raises(DatasetError, match=rf"2 of 6 rows have no {what} in column '{column}'.*data row 2"):
        load_dataset(path)
    frame.loc[[2, 4], column] = ["  padded  ", " x"] if column == "text" else ["sport", " sport "]
    kept = load_dataset(write_table(frame, tmp_path / f"kept{suffix}"))  # only blank cells are missing
    assert len(kept) == 6 and (kept.items[2] == "  padded  " or " sport " in kept.classes)


# ---------------------------------------------------------------- bad input: one line naming the culprit


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, dict, list[str]]]:
    """name -> (path, load_dataset kwargs, fragments the message must contain)."""
    empty = tmp / "empty"
    empty.mkdir()
    no_images = tmp / "no_images"
    (no_images / "sub").mkdir(parents=True)
    (no_images / "README.md").write_text("hi")
    single = tmp / "single"
    write_png(single / "only" / "a.png", 1)
    splits = tmp / "splits"
    for split in ("train", "val"):
        write_png(splits / split / "cat" / "a.png", 1)
    numbers = write_table(pd.DataFrame({"a": [1, 2], "b": [3, 4]}), tmp / "numbers.csv")
    topics = write_table(text_frame(), tmp / "topics.csv")
    missing = text_frame()
    missing.loc[[1, 4], "label"] = None
    missing_labels = write_table(missing, tmp / "holes.jsonl")
    absent = write_table(
        pd.DataFrame({"image": ["gone.png", "x.png"], "label": ["a", "b"]}), tmp / "absent.csv"
    )
    jpg = write_png(tmp / "photo.jpg", 1)
    binary = tmp / "weights.bin"
    binary.write_bytes(b"\x00\x01")
    ragged = tmp / "ragged.csv"
    ragged.write_text("text,label\nhello,a\nworld,b,c,d\n")
    corrupt = tmp / "corrupt.parquet"
    corrupt.write_bytes(b"not a parquet file")
    one_class = write_table(pd.DataFrame({"text": ["a", "b"], "label": ["x", "x"]}), tmp / "one.tsv")
    two = tmp / "two"
    write_table(text_frame(), two / "a.csv")
    write_table(text_frame(), two / "b.csv")
    return {
        "missing path": (tmp / "nope", {}, ["nope", "no such file"]),
        "empty folder": (empty, {}, ["empty", "folder is empty"]),
        "no images": (no_images, {}, ["no_images", "no images"]),
        "single class": (single, {}, ["only", "at least 2 classes"]),
        "split folders": (splits, {}, ["split folders", "train"]),
        "no usable columns": (numbers, {}, ["numbers.csv", "a, b", "--text-col/--image-col/--label-col"]),
        "unknown override": (
            topics,
            {"label_col": "topic"},
            ["topics.csv", "--label-col", "'topic'", "text, label"],
        ),
        "missing labels": (missing_labels, {}, ["holes.jsonl", "2 of 6 rows", "'label'", "Drop or fill"]),
        "absent image paths": (absent, {}, ["absent.csv", "2 of 2", "gone.png"]),
        "image as path": (jpg, {}, ["photo.jpg", "single image", "Accepted layouts"]),
        "binary as path": (binary, {}, ["weights.bin", "not a dataset", "Accepted layouts"]),
        "ragged csv": (ragged, {}, ["ragged.csv", "cannot read it as CSV"]),
        "corrupt parquet": (corrupt, {}, ["corrupt.parquet", "cannot read it as PARQUET"]),
        "one class in table": (one_class, {}, ["one.tsv", "'label'", "at least 2 classes"]),
        "several tables": (two, {}, ["a.csv, b.csv"]),
        "column flag on folder": (single, {"text_col": "x"}, ["--text-col", "tables only"]),
    }


BAD_CASES = (
    "missing path",
    "empty folder",
    "no images",
    "single class",
    "split folders",
    "no usable columns",
    "unknown override",
    "missing labels",
    "absent image paths",
    "image as path",
    "binary as path",
    "ragged csv",
    "corrupt parquet",
    "one class in table",
    "several tables",
    "column flag on folder",
)


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_raises_one_clear_line(tmp_path: Path, case: str) -> None:
    cases = _bad_inputs(tmp_path)
    assert set(cases) == set(BAD_CASES)
    path, kwargs, fragments = cases[case]
    with pytest.raises(DatasetError) as info:
        load_dataset(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert isinstance(info.value, ValueError) and info.value.exit_code == 2


# ---------------------------------------------------------------- undecodable images


@pytest.fixture
def damaged_folder(tmp_path: Path) -> Path:
    """3 classes of 3 images; ``cat/c1.png`` is not an image, ``dog/d0.jpg`` is a truncated JPEG."""
    root = tmp_path / "damaged"
    for c, name in enumerate(("cat", "dog", "fox")):
        for k in range(3):
            write_png(root / name / f"{name[0]}{k}.png", 10 * c + k)
    (root / "cat" / "c1.png").write_bytes(b"definitely not a png")
    data = write_jpeg(root / "dog" / "d0.jpg", 7).read_bytes()
    (root / "dog" / "d0.jpg").write_bytes(data[: len(data) // 2])
    return root


def test_undecodable_images_skipped_with_one_warning(damaged_folder: Path) -> None:
    ds = load_dataset(damaged_folder)  # listing only: nothing is decoded yet
    assert len(ds) == 10 and ds.skipped == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sub = sample(ds)
    ours = [w for w in caught if issubclass(w.category, DatasetWarning)]
    assert len(ours) == 1 and "skipped 2 undecodable" in str(ours[0].message)
    assert "cat/c1.png" in str(ours[0].message)
    assert sorted(i for i, _ in sub.skipped) == ["cat/c1.png", "dog/d0.jpg"]
    assert len(sub) == 8 and sub.validated and sub.class_counts() == {"cat": 2, "dog": 3, "fox": 3}


def test_undecodable_sampled_item_is_replaced_from_its_class(damaged_folder: Path) -> None:
    ds = load_dataset(damaged_folder)
    for seed in range(6):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DatasetWarning)
            sub = sample(ds, per_class=2, seed=seed)
        assert sub.class_counts() == {"cat": 2, "dog": 2, "fox": 2}
        assert "cat/c1.png" not in sub.ids and "dog/d0.jpg" not in sub.ids


def test_strict_fails_on_first_undecodable(damaged_folder: Path) -> None:
    ds = load_dataset(damaged_folder, strict=True)
    with pytest.raises(DatasetError, match=r"c1\.png: cannot be decoded"):
        sample(ds)


def test_class_left_empty_is_an_error(damaged_folder: Path) -> None:
    for k in (0, 2):
        (damaged_folder / "fox" / f"f{k}.png").write_bytes(b"junk")
    (damaged_folder / "fox" / "f1.png").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="class 'fox' has no decodable image"):
        sample(load_dataset(damaged_folder))


# ---------------------------------------------------------------- 16-bit and float images


@pytest.fixture
def wide_folder(tmp_path: Path) -> Path:
    """Images Pillow opens in modes ``I;16``, ``I`` and ``F``, written the way cameras and numpy do."""
    root = tmp_path / "wide"
    (root / "sixteen").mkdir(parents=True)
    (root / "float").mkdir()
    steps = np.repeat(np.arange(14, dtype=np.uint16) * 5000, 4).reshape(1, 56).repeat(8, axis=0)
    Image.fromarray(steps).save(root / "sixteen" / "levels.png")  # 14 levels over the 16-bit range
    Image.fromarray(np.arange(4096, dtype=np.uint16).reshape(64, 64)).save(root / "sixteen" / "twelve.png")
    Image.fromarray((np.arange(64, dtype=np.int32) * 1000).reshape(8, 8)).save(root / "sixteen" / "int.tif")
    unit = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(unit).save(root / "float" / "unit.tif")
    Image.fromarray(unit * 4000.0 - 1000.0).save(root / "float" / "physical.tif")
    return root


def test_16_bit_and_float_images_are_scaled_to_8_bits_not_clipped(wide_folder: Path) -> None:
    """Pillow's convert("RGB") clipped these at 255: 14 levels became 0/255 and [0, 1] floats black."""
    from tlreg.advisor.baselines import PIXELS, raw_features
    from tlreg.registry.images import open_image

    sub = sample(load_dataset(wide_folder))
    paths = {Path(p).name: Path(p) for p in sub.items}
    modes = {name: Image.open(path).mode for name, path in paths.items()}
    assert modes == {"levels.png": "I;16", "twelve.png": "I;16", "int.tif": "I", "unit.tif": "F",
                     "physical.tif": "F"}  # fmt: skip
    pixels = {name: np.asarray(open_image(path)) for name, path in paths.items()}
    for name, rgb in pixels.items():
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and (rgb[..., 0] == rgb[..., 2]).all(), name
        assert rgb.min() == 0 and rgb.max() == 255, name  # the image's range, minimum to maximum
    assert len(np.unique(pixels["levels.png"])) == 14
    twelve = pixels["twelve.png"][..., 0].ravel()
    assert len(np.unique(twelve)) == 256 and (np.diff(twelve.astype(int)) >= 0).all()
    for name, distinct in (("int.tif", 64), ("unit.tif", 64), ("physical.tif", 64)):
        assert len(np.unique(pixels[name])) == distinct, name
    assert np.array_equal(pixels["unit.tif"], pixels["physical.tif"])  # same picture, any range
    x = raw_features(sub)  # the raw-pixel baseline reads the same pixels
    assert x.shape == (5, PIXELS * PIXELS * 3) and np.isfinite(x).all()


def test_16_bit_scaling_keeps_non_finite_and_flat_images_readable(tmp_path: Path) -> None:
    from tlreg.registry.images import open_image

    holes = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    holes[0, 0], holes[1, 1] = np.nan, np.inf
    Image.fromarray(holes).save(tmp_path / "holes.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value in cast" from the NaN
        rgb = np.asarray(open_image(tmp_path / "holes.tif"))[..., 0]
    assert rgb[0, 0] == 0 and rgb[1, 1] == 0 and rgb.max() == 255 and len(np.unique(rgb)) == 14
    Image.fromarray(np.full((4, 4), 700, dtype=np.uint16)).save(tmp_path / "flat.png")
    assert (np.asarray(open_image(tmp_path / "flat.png")) == 0).all()
    assert np.array_equal(np.asarray(open_image(Image.open(tmp_path / "holes.tif"))), np.stack([rgb] * 3, -1))


# ---------------------------------------------------------------- sampling


def test_per_class_caps_and_order() -> None:
    ds = text_dataset({"a": 10, "b": 3, "c": 12})
    sub = sample(ds, per_class=4, seed=3)
    assert sub.class_counts() == {"a": 4, "b": 3, "c": 4}
    keys = [(int(label), id_key(i)) for label, i in zip(sub.labels, sub.ids, strict=True)]
    assert keys == sorted(keys)


def test_max_samples_keeps_proportions_and_two_per_class() -> None:
    ds = text_dataset({"big": 80, "mid": 17, "tiny": 3})
    sub = sample(ds, max_samples=20)
    assert len(sub) == 20 and sub.class_counts() == {"big": 15, "mid": 3, "tiny": 2}
    assert sample(ds, max_samples=3).class_counts() == {"big": 1, "mid": 1, "tiny": 1}
    with pytest.raises(DatasetError, match="--max-samples 2 is fewer than the 3 classes"):
        sample(ds, max_samples=2)
    with pytest.raises(DatasetError, match="--per-class must be at least 1"):
        sample(ds, per_class=0)
    with pytest.raises(DatasetError, match="--seed must be 0 or more"):
        sample(ds, seed=-1)


def test_sample_is_deterministic_and_independent_of_listing_order() -> None:
    ds = text_dataset({"a": 30, "b": 30})
    first = sample(ds, per_class=5, seed=1)
    assert sample(ds, per_class=5, seed=1).ids == first.ids
    assert sample(ds, per_class=5, seed=2).ids != first.ids
    shuffled = ds.subset(np.random.default_rng(0).permutation(len(ds)))
    assert sample(shuffled, per_class=5, seed=1).ids == first.ids
    # A class's draw does not depend on the other classes.
    more = text_dataset({"a": 30, "b": 30, "c": 7})
    a_ids = [i for i in first.ids if i.startswith("a-")]
    assert [i for i in sample(more, per_class=5, seed=1).ids if i.startswith("a-")] == a_ids


def test_regression_and_unlabelled_are_uniform(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": [f"t{k}" for k in range(40)], "score": np.linspace(0, 1, 40)})
    ds = load_dataset(write_table(frame, tmp_path / "r.csv"), label_col="score")
    sub = sample(ds, per_class=3, max_samples=10, seed=0)
    assert len(sub) == 10 and sub.task == "regression" and sub.ids == sorted(sub.ids, key=id_key)
    assert sample(ds).ids == sorted(ds.ids, key=id_key)


@settings(max_examples=60, deadline=None)
@given(
    caps=st.lists(st.integers(1, 60), min_size=2, max_size=8),
    max_samples=st.integers(1, 300),
)
def test_quotas_properties(caps: list[int], max_samples: int) -> None:
    arr = np.asarray(caps, dtype=np.int64)
    ds = text_dataset({"a": 1, "b": 1})
    if max_samples < len(caps):
        with pytest.raises(DatasetError):
            _quotas(arr, max_samples, ds)
        return
    quotas = _quotas(arr, max_samples, ds)
    assert quotas.sum() == min(max_samples, arr.sum())
    assert np.all(quotas <= arr) and np.all(quotas >= 1)
    if max_samples >= 2 * len(caps):
        assert np.all(quotas >= np.minimum(arr, 2))


# ---------------------------------------------------------------- fingerprint


def test_fingerprint_survives_a_move_and_sees_changes(image_folder: Path, tmp_path: Path) -> None:
    base = fingerprint(sample(load_dataset(image_folder)))
    assert len(base) == 64 and int(base, 16) >= 0
    moved = shutil.copytree(image_folder, tmp_path / "elsewhere" / "renamed")
    assert fingerprint(sample(load_dataset(moved))) == base

    target = moved / "dog" / "dog1.png"
    data = bytearray(target.read_bytes())
    data[-5] ^= 0xFF  # inside the IEND CRC: the PNG still lists, the bytes differ
    target.write_bytes(bytes(data))
    assert fingerprint(load_dataset(moved)) != fingerprint(load_dataset(image_folder))

    ds = load_dataset(image_folder)
    relabelled = ds.subset(range(len(ds)))
    relabelled.labels = relabelled.labels.copy()
    relabelled.labels[0] = 1
    assert fingerprint(relabelled) != fingerprint(ds)
    assert fingerprint(sample(ds, per_class=1)) != fingerprint(sample(ds, per_class=2))


def test_text_fingerprint(tmp_path: Path) -> None:
    a = load_dataset(write_table(text_frame(), tmp_path / "a" / "t.csv"))
    b = load_dataset(write_table(text_frame(), tmp_path / "b" / "t.jsonl"))
    assert fingerprint(a) == fingerprint(b)
    edited = text_frame()
    edited.loc[0, "text"] += "!"
    assert fingerprint(load_dataset(write_table(edited, tmp_path / "c.csv"))) != fingerprint(a)


# ---------------------------------------------------------------- demo data


def test_demo_digits_and_topics_load() -> None:
    digits = load_dataset(demo_root() / "digits")
    assert len(digits) == 120 and digits.num_classes == 10
    assert set(digits.class_counts().values()) == {12}
    with Image.open(digits.items[0]) as image:
        assert image.size == (32, 32) and image.mode == "L"
    topics = load_dataset(demo_root() / "topics.csv")
    assert (topics.modality, topics.task, len(topics)) == ("text", "classification", 120)
    assert topics.classes == ["cooking", "sport", "technology", "weather"]
    assert len(set(topics.items)) == 120


def test_demo_generator_reproduces_the_shipped_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_demo", demo_root() / "make_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.make_topics(tmp_path) == 120 and module.make_digits(tmp_path) == 120
    assert (tmp_path / "topics.csv").read_text() == (demo_root() / "topics.csv").read_text()
    shipped = load_dataset(demo_root() / "digits")
    made = load_dataset(tmp_path / "digits")
    assert made.ids == shipped.ids
    for a, b in zip(made.items, shipped.items, strict=True):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def test_numeric_labels_with_nan_words_name_the_rows(tmp_path: Path) -> None:
    """Read as strings, 32 numbers and two 'nan' words became 34 one-item classes."""
    values = [f"{0.5 + i:.1f}" for i in range(32)]
    values[2], values[7] = "nan", "NaN"
    pd.DataFrame({"text": [f"t{i}" for i in range(32)], "y": values}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DatasetError, match=r"column 'y' holds numbers, and the words NaN, nan in rows 2, 7"):
        load_dataset(tmp_path / "t.csv")


def test_infinite_regression_targets_name_the_rows(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "target": float(i) + 0.5} for i in range(60)]
    rows[2]["target"], rows[7]["target"] = float("inf"), float("-inf")
    pd.DataFrame(rows).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DatasetError, match=r"targets in column 'target' are infinite in rows 2, 7"):
        load_dataset(tmp_path / "t.parquet")
