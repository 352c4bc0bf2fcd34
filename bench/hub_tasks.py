"""The tasks of the Hub-like benchmark (``bench/hub_quality.py``): sources that make descendants, targets.

A Hub user chooses among many fine-tuned descendants of a few backbones. The sources here are the
tasks those descendants were fine-tuned on (from the ImageNet EfficientNet-Lites); the targets are
what a user brings. Relatedness is by design and recorded in ``related_to`` (what a user searching
the Hub by name would match):

======================  =========================================================  ==============
source                  what                                                       helps targets
======================  =========================================================  ==============
``digits``              scikit-learn handwritten digits (1000 of 1797), white/black  digits, printed
``letters``             10 other letters of the font (J L M N P Q S T U W)          letters, printed
``shapes``              10 filled shapes                                            outlines
``textures``            10 textures (gratings at 4 angles, checker, dots, ...)      patterns, orientation
``photos``              which way up a crop of the two sample photos is (4 classes) photos
``shuffled``            the shapes images with random labels (harmful on purpose)   none
======================  =========================================================  ==============

Targets: the seven of the first benchmark (``zoo_tasks.TARGETS``) and ``printed``, the ten digits in
the TrueType font, which both the handwritten digits and the font's letters are related to. No
target shares a base image (a digit, a photo region's pixels) with a source: the ``photos`` source
crops only the part of each photo quadrant that the ``photos`` target trains on, never the part it
tests on.
"""

from __future__ import annotations

import numpy as np
import zoo_tasks as zt
from zoo_draw import draw_letter, photo_patch

#: Bump when a generator here changes: it keys the build's cache of task images.
VERSION = 1

SOURCE_LETTERS = tuple("JLMNPQSTUW")
assert not set(SOURCE_LETTERS) & set(zt.LETTERS), "source letters must differ from the target's"
ROTATIONS = ("0deg", "90deg", "180deg", "270deg")
DIGITS = tuple("0123456789")


def photo_train_boxes() -> list[tuple[np.ndarray, int, int, int, int]]:
    """The regions of the two sample photos that the ``photos`` target trains on (left 60 % of each
    quadrant), as (photo, top, left, bottom, right)."""
    from sklearn.datasets import load_sample_images

    boxes = []
    for photo in load_sample_images().images:
        h, w = photo.shape[0] // 2, photo.shape[1] // 2
        for qy, qx in ((0, 0), (0, 1), (1, 0), (1, 1)):
            top, left, bottom, right = qy * h, qx * w, (qy + 1) * h, (qx + 1) * w
            boxes.append((photo, top, left, bottom, left + int(0.6 * (right - left))))
    return boxes


def rotation_source(name: str, seed: int, n_train: int, n_test: int) -> zt.TaskData:
    """Which way up a crop is: a self-supervised pretext task on the photos' training regions."""
    boxes = photo_train_boxes()
    out = []
    for split, n in ((0, n_train), (1, n_test)):
        rng = np.random.default_rng([seed, split])
        y = zt.balanced(rng, n, len(ROTATIONS))
        images = []
        for k in y:
            photo, *box = boxes[int(rng.integers(len(boxes)))]
            images.append(np.ascontiguousarray(np.rot90(photo_patch(photo, tuple(box), rng), int(k))))
        out += [np.stack(images), y]
    return zt.TaskData(name, list(ROTATIONS), *out)


SOURCES = zt._specs(
    zt.SOURCES["digits"],
    zt.TaskSpec(
        "letters",
        f"10 letters of the font ({' '.join(SOURCE_LETTERS)}), none of the target's, rotated, in colour",
        zt._drawing(SOURCE_LETTERS, draw_letter),
    ),
    zt.SOURCES["shapes"],
    zt.SOURCES["textures"],
    zt.TaskSpec(
        "photos",
        "which way up (0/90/180/270 degrees) a crop of the sample photos' training regions is",
        rotation_source,
    ),
    zt.SOURCES["shuffled"],
)

TARGETS = zt._specs(
    *(zt.TARGETS[n] for n in ("digits", "letters", "outlines", "patterns", "orientation", "counting")),
    zt.TaskSpec(
        "photos",
        "which photo and quadrant a crop of scikit-learn's china.jpg or flower.jpg comes from (8 classes)",
        zt.photos_target,
        ("photos",),
    ),
    zt.TaskSpec(
        "printed",
        "the ten digits in the TrueType font, rotated, in colour",
        zt._drawing(DIGITS, draw_letter),
        ("digits", "letters"),
    ),
)
TARGETS["letters"] = zt.TaskSpec(
    "letters", zt.TARGETS["letters"].about, zt.TARGETS["letters"].build, ("letters",)
)
