"""The image tasks of the transfer-quality benchmark: pretraining sources and fine-tuning targets.

Every task is 32x32 RGB, drawn from real images (scikit-learn's handwritten digits and its two
sample photographs, a TrueType font) or generated procedurally, deterministically from a seed.
The sources pretrain the zoo; the targets are what the zoo is fine-tuned on. Relatedness is by
design: ``digits`` -> target ``digits`` (same strokes, new colours and writers), ``letters``
(glyphs); ``shapes`` -> ``outlines``; ``textures`` -> ``patterns``, ``orientation``; ImageNet ->
``photos``; and ``counting``, which no source prepares for. ``shuffled`` is the deliberately poor
source: ``shapes`` images with random labels, so pretraining learns nothing transferable.

Test images never share a base image (a digit, a photo region's pixels) with the training
images. The drawing itself is in ``zoo_draw``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from zoo_draw import (
    SIZE,
    draw_bar,
    draw_count,
    draw_digit,
    draw_letter,
    draw_shape,
    draw_texture,
    photo_patch,
)

#: Bump when a generator changes: it keys the build's cache of task images.
VERSION = 2


@dataclass
class TaskData:
    """Images ``[N, 32, 32, 3]`` uint8 and int labels, for training and (for targets) testing."""

    name: str
    classes: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


# --- the tasks -----------------------------------------------------------------------------------

SHAPES = (
    "triangle",
    "square",
    "pentagon",
    "hexagon",
    "circle",
    "ring",
    "star",
    "plus",
    "half-disc",
    "crescent",
)
OUTLINES = ("hollow-triangle", "hollow-square", "hollow-star", "ellipse", "bar", "arrow", "tee", "ell")
TEXTURES = (
    "grating-0",
    "grating-45",
    "grating-90",
    "grating-135",
    "checker",
    "dots",
    "rings",
    "noise",
    "blobs",
    "plaid",
)
PATTERNS = ("grating-22.5", "grating-67.5", "grating-112.5", "grating-157.5")
PATTERNS += ("zigzag", "spokes", "spiral", "bricks", "barcode", "hexdots")
LETTERS = tuple("ABCDEFGHKR")
DIGIT_SPLIT_SEED = 0  # fixed, so sources and targets never share a handwritten digit whatever --seed is


def balanced(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    labels = np.arange(n) % n_classes
    rng.shuffle(labels)
    return labels


def _drawn(
    name: str,
    classes: tuple[str, ...],
    draw: Callable[[int, np.random.Generator], np.ndarray],
    seed: int,
    n_train: int,
    n_test: int,
) -> TaskData:
    """A procedural task: independent draws for the train and test splits."""
    out = []
    for split, n in ((0, n_train), (1, n_test)):
        rng = np.random.default_rng([seed, split])
        y = balanced(rng, n, len(classes))
        out += [np.stack([draw(int(c), rng) for c in y]) if n else np.zeros((0, SIZE, SIZE, 3), np.uint8), y]
    return TaskData(name, list(classes), *out)


def _digit_bases() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(DIGIT_SPLIT_SEED).permutation(len(digits.target))
    return digits.images, digits.target, [order[:1000], order[1000:1500], order[1500:]]


def _digits(
    bases: np.ndarray, images: np.ndarray, labels: np.ndarray, seed: int, n: int, *, coloured: bool
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pick = np.resize(bases, n)  # each base digit used n / len(bases) times, at new places and sizes
    rng.shuffle(pick)
    x = np.stack([draw_digit(images[i], rng, coloured=coloured) for i in pick])
    return x, labels[pick].astype(np.int64)


def digits_source(name: str, seed: int, n_train: int, n_test: int) -> TaskData:
    images, labels, (source, _, _) = _digit_bases()
    cut = int(len(source) * 0.9)
    x, y = _digits(source[:cut], images, labels, seed, n_train, coloured=False)
    xt, yt = _digits(source[cut:], images, labels, seed + 1, n_test, coloured=False)
    return TaskData(name, [str(d) for d in range(10)], x, y, xt, yt)


def digits_target(name: str, seed: int, n_train: int, n_test: int) -> TaskData:
    images, labels, (_, train, test) = _digit_bases()
    x, y = _digits(train, images, labels, seed, n_train, coloured=True)
    xt, yt = _digits(test, images, labels, seed + 1, n_test, coloured=True)
    return TaskData(name, [str(d) for d in range(10)], x, y, xt, yt)


def photos_target(name: str, seed: int, n_train: int, n_test: int) -> TaskData:
    """Which photo and quadrant a crop comes from (8 classes); train crops from the left 60 % of each
    quadrant, test crops from the right 40 %, so no test pixel was seen in training."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    classes, boxes = [], []
    for name, photo in zip(("china", "flower"), photos, strict=True):
        h, w = photo.shape[0] // 2, photo.shape[1] // 2
        for qy, qx in ((0, 0), (0, 1), (1, 0), (1, 1)):
            classes.append(f"{name}-{'tb'[qy]}{'lr'[qx]}")
            boxes.append((photo, qy * h, qx * w, (qy + 1) * h, (qx + 1) * w))
    out = []
    for split, n in ((0, n_train), (1, n_test)):
        rng = np.random.default_rng([seed, split])
        y = balanced(rng, n, len(classes))
        images = []
        for c in y:
            photo, top, left, bottom, right = boxes[int(c)]
            cut = left + int(0.6 * (right - left))
            box = (top, left, bottom, cut) if split == 0 else (top, cut, bottom, right)
            images.append(photo_patch(photo, box, rng))
        out += [np.stack(images), y]
    return TaskData(name, classes, *out)


def shuffled_source(name: str, seed: int, n_train: int, n_test: int) -> TaskData:
    """``shapes`` images with labels drawn at random: nothing to learn that transfers."""
    data = _drawn(name, SHAPES, lambda c, rng: draw_shape(SHAPES[c], rng), seed + 7, n_train, n_test)
    rng = np.random.default_rng([seed, 99])
    data.y_train, data.y_test = rng.integers(0, 10, len(data.y_train)), rng.integers(0, 10, len(data.y_test))
    data.classes = [f"random{i}" for i in range(10)]
    return data


def _drawing(classes: tuple[str, ...], draw: Callable[[str, np.random.Generator], np.ndarray]):
    def build(name: str, seed: int, n_train: int, n_test: int) -> TaskData:
        return _drawn(name, classes, lambda c, rng: draw(classes[c], rng), seed, n_train, n_test)

    return build


@dataclass(frozen=True)
class TaskSpec:
    """A task of the benchmark: what it is, and (targets) which sources it is related to."""

    name: str
    about: str
    build: Callable[[str, int, int, int], TaskData]
    related_to: tuple[str, ...] = ()

    def make(self, *, seed: int, n_train: int, n_test: int) -> TaskData:
        return self.build(self.name, seed, n_train, n_test)


BAR_BINS = 8
BARS = tuple(f"{i * 180 / BAR_BINS:g}deg" for i in range(BAR_BINS))
COUNTS = tuple(str(i) for i in range(1, 7))


def _specs(*specs: TaskSpec) -> dict[str, TaskSpec]:
    return {spec.name: spec for spec in specs}


SOURCES = _specs(
    TaskSpec("digits", "scikit-learn handwritten digits (1000 of the 1797), white on black", digits_source),
    TaskSpec(
        "shapes", "10 filled shapes at random sizes, places, rotations, colours", _drawing(SHAPES, draw_shape)
    ),
    TaskSpec(
        "textures",
        "10 textures: gratings at 4 orientations, checker, dots, rings, noise, blobs, plaid",
        _drawing(TEXTURES, draw_texture),
    ),
    TaskSpec("shuffled", "the shapes images with random labels: a deliberately poor source", shuffled_source),
)
TARGETS = _specs(
    TaskSpec(
        "digits", "the other 797 scikit-learn digits, light on dark in colour", digits_target, ("digits",)
    ),
    TaskSpec(
        "letters",
        "10 letters of a TrueType font (Pillow's Aileron), rotated, in colour",
        _drawing(LETTERS, draw_letter),
        ("digits",),
    ),
    TaskSpec(
        "outlines",
        "8 new shapes: hollow triangle, square and star, ellipse, bar, arrow, T, L",
        _drawing(OUTLINES, draw_shape),
        ("shapes",),
    ),
    TaskSpec(
        "patterns",
        "10 new textures: gratings at 4 new orientations, zigzag, spokes, spiral, bricks, barcode, hex dots",
        _drawing(PATTERNS, draw_texture),
        ("textures",),
    ),
    TaskSpec(
        "orientation",
        f"the orientation of a bar among clutter, {BAR_BINS} bins of {180 / BAR_BINS:g} degrees",
        _drawing(BARS, lambda c, rng: draw_bar(BARS.index(c), BAR_BINS, rng)),
        ("textures",),
    ),
    TaskSpec("counting", "how many discs, 1 to 6", _drawing(COUNTS, lambda c, rng: draw_count(int(c), rng))),
    TaskSpec(
        "photos",
        "which photo and quadrant a crop of scikit-learn's china.jpg or flower.jpg comes from (8 classes)",
        photos_target,
        ("imagenet",),
    ),
)
