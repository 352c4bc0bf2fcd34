"""Images as every consumer of pixels sees them: opened once, 8-bit RGB.

Kept apart from :mod:`.feature_extractor` (torch) so that what needs only pixels — the raw-pixel
baseline of a cached ``recommend`` — loads no model library.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

ImageItem = str | Path | Image.Image


def open_image(item: ImageItem) -> Image.Image:
    """An RGB PIL image from a path or an image, as :func:`to_rgb` makes it.

    Every consumer of pixels (embedding, the raw-pixel baseline, fine-tuning) opens images here,
    so all of them see the same 8-bit pixels. Pillow's ``DecompressionBombWarning`` is not repeated
    here: the decode check of the sample (:func:`tlreg.advisor.data.sample`), which every image
    passes through first, reports an image over the limit once, by path; here it would be repeated
    by every DataLoader worker for every model.
    """
    if isinstance(item, Image.Image):
        return to_rgb(item)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(item) as img:
            return to_rgb(img)


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB; 16-bit, 32-bit integer and float images are first scaled to 8 bits.

    Pillow's ``convert("RGB")`` clips modes ``I;16``, ``I`` and ``F`` at 255: a 16-bit microscopy
    or medical image becomes black and white, and a float image in [0, 1] becomes black. Those
    modes are scaled instead by the image's own range, minimum to 0 and maximum to 255 (non-finite
    values to 0; a constant image, with no contrast to keep, to 0). Why the image's range and not
    its type's: a 16-bit file often holds 10-, 12- or 14-bit data and nothing reliable in it says
    which (a 12-bit camera writes 16 bits per sample), so dividing by 257 would crush a 12-bit image
    into 16 dark levels; float images have no conventional range at all ([0, 1], [0, 255], physical
    units, negative values). Per-image scaling is what viewers' auto-contrast and microscopy
    pipelines do, and gives the pretrained models the full-contrast input they were trained on.
    The cost: brightness differences between images are not kept, and one hot pixel compresses
    the rest of its image's range. 8-bit modes (``L``, ``P``, ``RGB``, ``RGBA``, ...) are only
    converted, exactly as before.
    """
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(values)
        lo, hi = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 0.0)
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        levels = np.rint((np.where(finite, values, lo) - lo) * scale)
        image = Image.fromarray(levels.astype(np.uint8))
    return image.convert("RGB")
