"""The raw-input baseline, and the negative-transfer guard that compares each model with its baselines.

A pretrained model is only worth starting from if its features beat what needs no pretraining at
all. Two baselines are scored by the same estimators as the candidates: the candidate's own
architecture randomly initialised (embedded like any model, see ``features_for(..., pretrained=False)``)
and the raw inputs themselves — images downscaled to 16×16 RGB pixels (768 numbers, standardised),
texts as TF-IDF reduced to at most 256 dimensions by a truncated SVD (estimators need dense
features), centred and scaled as a whole: standardising each SVD component would whiten them
(their covariance becomes the identity), erase the spectrum, and make the shrinkage H-score 0.
How each candidate compares with them is decided in :mod:`.verdicts`.
"""

from __future__ import annotations

import math
import time

import numpy as np
from PIL import Image
from tlreg.registry.images import open_image

from .cache import FeatureCache, cache_key
from .data import Dataset
from .embed.request import Features

RAW_LABELS = {"image": "raw pixels (16x16)", "text": "raw text (tf-idf)"}
PIXELS = 16
TFIDF_DIMS = 256
RAW_VERSION = 2  # bump when raw_features changes, so cached raw baselines are recomputed


def pixels(sample: Dataset) -> np.ndarray:
    """Each image downscaled to 16×16 RGB, in [0, 1]: ``[N, 768]``."""
    rows = [
        np.asarray(open_image(p).resize((PIXELS, PIXELS), Image.BILINEAR), dtype=np.float32).ravel() / 255.0
        for p in sample.items
    ]
    return np.stack(rows)


def raw_features(sample: Dataset, *, seed: int = 0) -> np.ndarray:
    """Features that need no model: downscaled pixels for images, TF-IDF + SVD for texts."""
    if sample.modality == "image":
        x = pixels(sample)
        std = x.std(axis=0)  # per pixel: pixels are comparable units, and borders may be constant
        return ((x - x.mean(axis=0)) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=1).fit_transform([str(t) for t in sample.items])
    dims = min(TFIDF_DIMS, tfidf.shape[1] - 1, len(sample) - 1)
    x = (
        TruncatedSVD(n_components=dims, random_state=seed).fit_transform(tfidf)
        if dims >= 2
        else tfidf.toarray()
    ).astype(np.float64)
    x -= x.mean(axis=0)
    scale = math.sqrt(float((x**2).mean()))  # one factor for all columns keeps their spectrum
    return (x / (scale if scale > 1e-8 else 1.0)).astype(np.float32)


def raw_baseline(sample: Dataset, fingerprint: str, *, cache: FeatureCache, seed: int = 0) -> Features:
    """The raw-input features as a baseline row, through the feature cache like any model's."""
    label = RAW_LABELS[sample.modality]
    start = time.perf_counter()
    key = cache_key(
        ref=f"raw:{sample.modality}", version=RAW_VERSION, fingerprint=fingerprint, n=len(sample), seed=seed
    )
    hit = cache.load(key)
    if hit is not None:
        return Features.cached(hit, label=label, revision=None, start=start)
    x = raw_features(sample, seed=seed)
    meta = {"ref": f"raw:{sample.modality}", "label": label, "fingerprint": fingerprint, "n": len(sample)}
    writer = cache.writer(key, n=len(x), dim=x.shape[1], classes=None, meta=meta)
    writer.write(x, None)
    return Features.computed(writer.commit(), label=label, revision=None, start=start, samples_per_s=None)
