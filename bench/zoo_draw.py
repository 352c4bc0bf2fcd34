"""Drawing the benchmark's 32x32 images: shapes, textures, digits, letters, discs, bars, photo crops.

Shapes are drawn at 3x and downsampled (anti-aliasing); colour pairs keep a minimum contrast;
every image gets mild Gaussian pixel noise. All randomness comes from the ``rng`` passed in.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 32
SUPER = 3  # draw at 3x, then downsample: anti-aliased edges


# --- drawing helpers ----------------------------------------------------------------------------


def colours(
    rng: np.random.Generator, *, contrast: float = 90.0, light_on_dark: bool = False
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A (background, foreground) pair whose luminances differ by at least ``contrast``
    (with ``light_on_dark``, the foreground is the lighter one)."""
    weights = np.array([0.299, 0.587, 0.114])
    while True:
        bg, fg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        gap = float(weights @ fg) - float(weights @ bg)
        if (gap if light_on_dark else abs(gap)) >= contrast:
            return tuple(int(v) for v in bg), tuple(int(v) for v in fg)


def finish(img: Image.Image, rng: np.random.Generator, noise: float = 6.0) -> np.ndarray:
    """Downsample a 3x drawing to 32x32 and add Gaussian pixel noise."""
    if img.size != (SIZE, SIZE):
        img = img.resize((SIZE, SIZE), Image.Resampling.BOX)
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, noise, (SIZE, SIZE, 3))
    return arr.clip(0, 255).astype(np.uint8)


def polygon(cx: float, cy: float, radii: list[float], rotation: float) -> list[tuple[float, float]]:
    """Vertices at equal angles with the given radii (a regular polygon, a star, ...)."""
    n = len(radii)
    return [
        (cx + r * math.cos(rotation + 2 * math.pi * i / n), cy + r * math.sin(rotation + 2 * math.pi * i / n))
        for i, r in enumerate(radii)
    ]


def rotated(
    points: list[tuple[float, float]], cx: float, cy: float, angle: float
) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def _shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, rot: float, fg, bg) -> None:
    """Draw one shape class of ``shapes`` (filled) or ``outlines`` (hollow or elongated)."""
    width = max(2, int(r * 0.28))
    ngon = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}
    if kind in ngon:
        draw.polygon(polygon(cx, cy, [r] * ngon[kind], rot), fill=fg)
    elif kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fg, width=width + 2)
    elif kind == "star":
        draw.polygon(polygon(cx, cy, [r, r * 0.42] * 5, rot), fill=fg)
    elif kind == "plus":
        a = r * 0.33
        arm = [(-a, -r), (a, -r), (a, -a), (r, -a), (r, a), (a, a), (a, r), (-a, r), (-a, a), (-r, a)]
        draw.polygon(rotated([*arm, (-r, -a), (-a, -a)], cx, cy, rot), fill=fg)
    elif kind == "half-disc":
        start = math.degrees(rot)
        draw.pieslice([cx - r, cy - r, cx + r, cy + r], start, start + 180, fill=fg)
    elif kind == "crescent":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
        ox, oy = cx + 0.5 * r * math.cos(rot), cy + 0.5 * r * math.sin(rot)
        draw.ellipse([ox - r * 0.85, oy - r * 0.85, ox + r * 0.85, oy + r * 0.85], fill=bg)
    elif kind.startswith("hollow-"):
        radii = {"hollow-triangle": [r] * 3, "hollow-square": [r] * 4, "hollow-star": [r, r * 0.45] * 5}
        pts = polygon(cx, cy, radii[kind], rot)
        draw.line([*pts, pts[0]], fill=fg, width=width, joint="curve")
    elif kind == "ellipse":
        pts = [(r * math.cos(t), 0.45 * r * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 40)]
        draw.polygon(rotated(pts, cx, cy, rot), fill=fg)
    elif kind == "bar":
        draw.polygon(
            rotated([(-r, -0.3 * r), (r, -0.3 * r), (r, 0.3 * r), (-r, 0.3 * r)], cx, cy, rot), fill=fg
        )
    elif kind == "arrow":
        a = 0.22 * r
        pts = [
            (-r, -a),
            (0.1 * r, -a),
            (0.1 * r, -0.6 * r),
            (r, 0),
            (0.1 * r, 0.6 * r),
            (0.1 * r, a),
            (-r, a),
        ]
        draw.polygon(rotated(pts, cx, cy, rot), fill=fg)
    elif kind in ("tee", "ell"):
        a = 0.25 * r
        if kind == "tee":
            pts = [
                (-r, -r),
                (r, -r),
                (r, -r + 2 * a),
                (a, -r + 2 * a),
                (a, r),
                (-a, r),
                (-a, -r + 2 * a),
                (-r, -r + 2 * a),
            ]
        else:
            pts = [(-r, -r), (-r + 2 * a, -r), (-r + 2 * a, r - 2 * a), (r, r - 2 * a), (r, r), (-r, r)]
        draw.polygon(rotated(pts, cx, cy, rot), fill=fg)
    else:
        raise ValueError(f"unknown shape {kind!r}")


def draw_shape(kind: str, rng: np.random.Generator) -> np.ndarray:
    bg, fg = colours(rng)
    big = SIZE * SUPER
    img = Image.new("RGB", (big, big), bg)
    r = float(rng.uniform(0.22, 0.4)) * big
    cx, cy = rng.uniform(r, big - r, 2)
    _shape(ImageDraw.Draw(img), kind, float(cx), float(cy), r, float(rng.uniform(0, 2 * math.pi)), fg, bg)
    return finish(img, rng)


# --- textures: functions of the pixel grid -------------------------------------------------------

_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)


def _grating(theta: float, freq: float, phase: float) -> np.ndarray:
    return np.sin(2 * math.pi * freq * (_XX * math.cos(theta) + _YY * math.sin(theta)) + phase)


def texture_field(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A pattern in [-1, 1] on the 32x32 grid."""
    f = float(rng.uniform(0.12, 0.22))
    phase, theta = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0, math.pi))
    jitter = math.radians(float(rng.uniform(-6, 6)))
    cx, cy = rng.uniform(4, SIZE - 4, 2)
    radius, angle = np.hypot(_XX - cx, _YY - cy), np.arctan2(_YY - cy, _XX - cx)
    if kind.startswith("grating-"):
        degrees = float(kind.split("-")[1])
        if degrees != int(degrees):  # the targets' gratings: new orientations, finer
            f = float(rng.uniform(0.2, 0.3))
        return _grating(math.radians(degrees) + jitter, f, phase)
    if kind == "checker":
        u = _XX * math.cos(theta) + _YY * math.sin(theta)
        v = -_XX * math.sin(theta) + _YY * math.cos(theta)
        return np.sign(np.sin(2 * math.pi * f * u + phase) * np.sin(2 * math.pi * f * v))
    if kind == "dots":
        g = _grating(theta, f, phase) + _grating(theta + math.pi / 2, f, phase)
        return np.where(g > 1.0, 1.0, -1.0)
    if kind == "hexdots":
        g = sum(_grating(theta + k * math.pi / 3, f, phase) for k in range(3))
        return np.where(g > 1.5, 1.0, -1.0)
    if kind == "rings":
        return np.sin(2 * math.pi * f * radius + phase)
    if kind == "noise":
        return rng.uniform(-1, 1, (SIZE, SIZE))
    if kind == "blobs":
        from scipy.ndimage import gaussian_filter

        smooth = gaussian_filter(rng.normal(size=(SIZE, SIZE)), 2.5)
        return np.where(smooth > 0, 1.0, -1.0)
    if kind == "plaid":
        return 0.5 * (_grating(theta, f, phase) + _grating(theta + math.pi / 3, f, 0.0))
    if kind == "zigzag":
        tri = 2 * np.abs((_XX * f * 2) % 2 - 1) - 1
        return np.sin(2 * math.pi * f * (_YY + 4.0 * tri) + phase)
    if kind == "spokes":
        return np.sin(int(rng.integers(5, 10)) * angle + phase)
    if kind == "spiral":
        return np.sin(3 * angle + 2 * math.pi * f * radius + phase)
    if kind == "bricks":
        h = int(rng.integers(5, 8))
        w = 2 * h
        row = ((_YY + int(rng.integers(0, h))) // h).astype(int)
        shift = (row % 2) * (w // 2)
        mortar = ((_YY + int(rng.integers(0, h))) % h < 1.5) | ((_XX + shift) % w < 1.5)
        return np.where(mortar, 1.0, -1.0)
    if kind == "barcode":
        widths = rng.integers(1, 5, 40)
        stripes = np.repeat(np.arange(40) % 2, widths)[:SIZE]
        return np.tile(stripes * 2.0 - 1.0, (SIZE, 1))
    raise ValueError(f"unknown texture {kind!r}")


def draw_texture(kind: str, rng: np.random.Generator) -> np.ndarray:
    bg, fg = colours(rng, contrast=70.0)
    s = (texture_field(kind, rng) + 1.0) / 2.0
    arr = np.array(bg)[None, None] * (1 - s[..., None]) + np.array(fg)[None, None] * s[..., None]
    return finish(Image.fromarray(arr.clip(0, 255).astype(np.uint8)), rng)


# --- real images ---------------------------------------------------------------------------------


def draw_digit(digit: np.ndarray, rng: np.random.Generator, *, coloured: bool) -> np.ndarray:
    """One 8x8 scikit-learn digit (values 0..16), scaled to 16-28 px and placed on the canvas."""
    bg, fg = colours(rng, light_on_dark=True) if coloured else ((0, 0, 0), (255, 255, 255))
    side = int(rng.integers(16, 29))
    glyph = Image.fromarray((digit * (255 / 16)).astype(np.uint8)).resize(
        (side, side), Image.Resampling.BILINEAR
    )
    alpha = np.zeros((SIZE, SIZE), np.float32)
    x, y = rng.integers(0, SIZE - side + 1, 2)
    alpha[y : y + side, x : x + side] = np.asarray(glyph, np.float32) / 255.0
    arr = np.array(bg)[None, None] * (1 - alpha[..., None]) + np.array(fg)[None, None] * alpha[..., None]
    return finish(Image.fromarray(arr.astype(np.uint8)), rng)


def draw_letter(letter: str, rng: np.random.Generator) -> np.ndarray:
    bg, fg = colours(rng)
    big = SIZE * SUPER
    size = int(rng.integers(48, 76))
    font = ImageFont.load_default(size=size)
    glyph = Image.new("L", (big, big), 0)
    ImageDraw.Draw(glyph).text((big / 2, big / 2), letter, fill=255, font=font, anchor="mm")
    glyph = glyph.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
    left, top, right, bottom = glyph.getbbox() or (0, 0, big, big)
    dx = int(rng.integers(-left, big - right + 1))
    dy = int(rng.integers(-top, big - bottom + 1))
    mask = Image.new("L", (big, big), 0)
    mask.paste(glyph, (dx, dy))
    img = Image.new("RGB", (big, big), bg)
    img.paste(Image.new("RGB", (big, big), fg), (0, 0), mask)
    return finish(img, rng)


def draw_count(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` non-overlapping discs of random sizes."""
    bg, fg = colours(rng)
    big = SIZE * SUPER
    img = Image.new("RGB", (big, big), bg)
    draw = ImageDraw.Draw(img)
    placed: list[tuple[float, float, float]] = []
    while len(placed) < n:
        r = float(rng.uniform(5, 11))
        x, y = rng.uniform(r + 1, big - r - 1, 2)
        if all(math.hypot(x - px, y - py) > r + pr + 3 for px, py, pr in placed):
            placed.append((float(x), float(y), r))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fg)
    return finish(img, rng)


def draw_bar(bin_index: int, n_bins: int, rng: np.random.Generator) -> np.ndarray:
    """A line segment at orientation ``bin_index * 180 / n_bins`` degrees (+- 4), with clutter."""
    bg, fg = colours(rng)
    big = SIZE * SUPER
    img = Image.new("RGB", (big, big), bg)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 5))):
        x, y = rng.uniform(0, big, 2)
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=fg)
    angle = math.radians(bin_index * 180 / n_bins + float(rng.uniform(-4, 4)))
    half = float(rng.uniform(0.28, 0.45)) * big
    cx, cy = rng.uniform(0.35 * big, 0.65 * big, 2)
    dx, dy = half * math.cos(angle), half * math.sin(angle)
    draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=fg, width=int(rng.integers(5, 9)))
    return finish(img, rng)


def photo_patch(photo: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A random square crop (40-72 px) inside ``box`` = (top, left, bottom, right), resized to 32x32."""
    top, left, bottom, right = box
    side = int(rng.integers(40, min(72, bottom - top, right - left) + 1))
    y = int(rng.integers(top, bottom - side + 1))
    x = int(rng.integers(left, right - side + 1))
    img = Image.fromarray(photo[y : y + side, x : x + side]).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return finish(img, rng, noise=3.0)
