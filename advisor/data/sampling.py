"""Stratified, seeded sampling, and the decodability check of the sampled images.

Why the check lives here: ``load_dataset`` only lists files, so a 100k-image folder loads in about
a second; decoding every image up front would cost minutes for items the sample then drops.
Only the items the sample keeps are decoded, once each, and an undecodable one is replaced by the
next item of the same class in the seeded order, so the sample keeps its size and balance and
stays deterministic for a seed. ``sample(ds)`` with no caps therefore checks every image.

The check is a real decode (``Image.load()``), not ``Image.verify()``: ``verify`` passes truncated
JPEGs, which are the commonest damage in practice. JPEGs are decoded at reduced scale
(``Image.draft``), which still reads the whole stream; the cost is about one small decode per
sampled image (~1-3 ms for a 640x480 JPEG on one core), small next to the forward passes that follow.

Order of the result: sorted by class code, then by id in natural order (``row:2`` before
``row:10``) for classification, or by id otherwise, so
the sample, its fingerprint and the cached features do not depend on the rng's draw order.
"""

from __future__ import annotations

import re
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from tlreg.advisor.errors import DatasetError

from .dataset import Dataset, DatasetWarning

# Every exception Pillow raises for a damaged or unsupported file (UnidentifiedImageError is an OSError).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
THUMB = (64, 64)


def decode_error(path: Path) -> str | None:
    """``None`` if the image at ``path`` decodes, else a one-line reason."""
    return _decode(path)[0]


def _decode(path: Path) -> tuple[str | None, int | None]:
    """(why the image does not decode or ``None``, its pixel count if over Pillow's bomb limit).

    Pillow's ``DecompressionBombWarning`` (an image over ``PIL.Image.MAX_IMAGE_PIXELS``, decoded
    anyway; twice the limit is an error, and a skip here) does not name the image, so it is
    silenced and the size is returned for one :class:`DatasetWarning` that does.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                pixels = image.width * image.height
                image.draft(None, THUMB)
                image.load()
    except DECODE_ERRORS as exc:
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}", None
    limit = Image.MAX_IMAGE_PIXELS
    return None, pixels if limit and pixels > limit else None


def sample(
    ds: Dataset,
    *,
    per_class: int | None = None,
    max_samples: int | None = None,
    seed: int = 0,
) -> Dataset:
    """A deterministic, stratified sample of ``ds`` whose images are all known to decode.

    ``per_class`` caps the items of each class; ``max_samples`` caps the total while keeping class
    proportions, and every class keeps at least 2 items where it has them (1 if the cap is too
    tight for 2), so estimators see each class at least twice when possible. Regression and
    unlabelled data get a uniform sample capped by ``max_samples`` (``per_class`` does not apply).

    Each class is drawn with its own ``numpy.random.default_rng`` seeded from ``(seed, class
    name)``, over the class's ids sorted first, so the sample depends neither on the file listing
    order nor, for one class, on the other classes. Undecodable images are skipped with one
    :class:`DatasetWarning` (or raise :class:`DatasetError` when the dataset was loaded with
    ``strict=True``).
    """
    for name, value in (("--per-class", per_class), ("--max-samples", max_samples)):
        if value is not None and value < 1:
            raise DatasetError(f"{name} must be at least 1 (got {value}).")
    if seed < 0:
        raise DatasetError(f"--seed must be 0 or more (got {seed}).")
    order = sorted(range(len(ds)), key=lambda i: id_key(ds.ids[i]))
    checker = _Checker(ds)
    labels, classes = ds.labels, ds.classes
    if labels is not None and classes is not None:  # classification (Dataset checks the pairing)
        ordered = np.asarray(order, dtype=np.int64)
        ordered_labels = labels[ordered]
        groups = [ordered[ordered_labels == code].tolist() for code in range(len(classes))]
        caps = np.array([min(len(g), per_class or len(g)) for g in groups], dtype=np.int64)
        quotas = _quotas(caps, max_samples, ds)
        picked: list[int] = []
        for name, group, quota in zip(classes, groups, quotas, strict=True):
            kept = checker.take(_permuted(group, seed, name), int(quota))
            if quota and not kept:
                raise DatasetError(
                    f"{ds.path}: class {name!r} has no decodable image ({checker.describe_first()}).",
                    hint="Replace the damaged files, or remove the class folder.",
                )
            picked.extend(kept)
        picked.sort(key=lambda i: (int(labels[i]), id_key(ds.ids[i])))
    else:
        quota = min(len(order), max_samples or len(order))
        picked = sorted(checker.take(_permuted(order, seed, ""), quota), key=lambda i: id_key(ds.ids[i]))
        if not picked:
            raise DatasetError(
                f"{ds.path}: no decodable image ({checker.describe_first()}).",
                hint="Replace the damaged files.",
            )
    checker.warn()
    result = ds.subset(picked)
    result.skipped = [*ds.skipped, *checker.bad]
    result.validated = True
    return result


def require_scorable(ds: Dataset, *, per_class: int | None = None) -> None:
    """Refuse a classification sample in which no class has two items.

    Every transferability estimator compares items within a class (class means, covariances,
    neighbours), so a sample of one item per class can score no model: stopping here, before any
    forward pass, says why instead of ranking models on nothing.
    """
    if ds.task != "classification" or ds.labels is None or ds.classes is None:
        return
    counts = np.bincount(ds.labels, minlength=len(ds.classes))
    if counts.max(initial=0) >= 2:
        return
    hint = (
        "Use --per-class 2 or more."
        if per_class is not None and per_class < 2
        else "Add items so that classes have at least 2 each."
    )
    raise DatasetError(
        f"{ds.path}: every class has 1 sample; at least 2 per class are needed to score a model.", hint=hint
    )


def id_key(item_id: str) -> tuple[tuple[str | int, ...], str]:
    """Natural sort key, so ``row:2`` comes before ``row:10``; the raw id breaks ties (``a01``, ``a1``)."""
    parts = tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", item_id))
    return parts, item_id


def _permuted(indices: list[int], seed: int, name: str) -> list[int]:
    """``indices`` in a seeded random order of their own: the rng is keyed by (seed, class name)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    return [indices[j] for j in rng.permutation(len(indices))]


def _quotas(caps: np.ndarray, max_samples: int | None, ds: Dataset) -> np.ndarray:
    """Items per class: ``caps`` scaled down to ``max_samples`` in proportion, with floors.

    Floors are 2 per class (or what the class has), lowered to 1 when the cap cannot afford 2;
    the rest is shared in proportion to ``caps`` by largest remainder, never above a class's cap.
    """
    total = int(caps.sum())
    if max_samples is None or total <= max_samples:
        return caps
    floors = np.minimum(caps, 2)
    if floors.sum() > max_samples:
        floors = np.minimum(caps, 1)
    if floors.sum() > max_samples:
        raise DatasetError(
            f"{ds.path}: --max-samples {max_samples} is fewer than the {len(caps)} classes.",
            hint=f"Use --max-samples {len(caps)} or more, so every class keeps an item.",
        )
    target = caps * (max_samples / total)
    quotas = np.clip(np.floor(target).astype(np.int64), floors, caps)
    while quotas.sum() > max_samples:
        over = np.where(quotas > floors, quotas - target, -np.inf)
        quotas[int(np.argmax(over))] -= 1
    while quotas.sum() < max_samples:
        under = np.where(quotas < caps, target - quotas, -np.inf)
        quotas[int(np.argmax(under))] += 1
    return quotas


class _Checker:
    """Takes items in order until a quota is met, skipping (or, strict, failing on) undecodable images."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.active = ds.modality == "image" and not ds.validated
        self.bad: list[tuple[str, str]] = []
        self.large: list[tuple[str, int]] = []

    def take(self, candidates: list[int], quota: int) -> list[int]:
        kept: list[int] = []
        for i in candidates:
            if len(kept) >= quota:
                break
            reason, pixels = _decode(Path(self.ds.items[i])) if self.active else (None, None)
            if pixels is not None:
                self.large.append((str(self.ds.items[i]), pixels))
            if reason is None:
                kept.append(i)
                continue
            if self.ds.strict:
                raise DatasetError(
                    f"{self.ds.items[i]}: cannot be decoded as an image ({reason}).",
                    hint="Replace or remove the file, or drop --strict to skip undecodable images.",
                )
            self.bad.append((self.ds.ids[i], reason))
        return kept

    def describe_first(self) -> str:
        if not self.bad:
            return "no image to decode"
        return f"{len(self.bad)} undecodable, first: {self.bad[0][0]}: {self.bad[0][1]}"

    def warn(self) -> None:
        if self.large:
            path, pixels = self.large[0]
            more = f" ({len(self.large) - 1} more sampled images like it)" if len(self.large) > 1 else ""
            warnings.warn(
                f"{path}: {pixels:,} pixels, over Pillow's decompression-bomb limit of "
                f"{Image.MAX_IMAGE_PIXELS:,} (PIL.Image.MAX_IMAGE_PIXELS){more}; decoded anyway, which "
                "takes much memory. Downscale it if it is not meant to be this large.",
                DatasetWarning,
                stacklevel=3,
            )
        if self.bad:
            first_id, reason = self.bad[0]
            warnings.warn(
                f"{self.ds.path}: skipped {len(self.bad)} undecodable image(s) (first: {first_id}: "
                f"{reason}); replaced by other images of the same class where possible. "
                "Use --strict to fail instead.",
                DatasetWarning,
                stacklevel=3,
            )
