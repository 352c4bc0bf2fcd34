"""The baselines: raw-input features, and each candidate compared with its baselines in ``recommend``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tlreg.advisor import recommend
from tlreg.advisor.baselines import raw_features
from tlreg.advisor.data import load_dataset, sample
from tlreg.advisor.estimators import score
from tlreg.advisor.verdicts import beaten_by, verdict_names
from tlreg.registry import Registry


def test_raw_features_for_images_and_text(image_folder: Path, tmp_path: Path) -> None:
    images = sample(load_dataset(image_folder))
    x = raw_features(images)
    assert x.shape == (len(images), 16 * 16 * 3) and np.allclose(x.mean(0), 0, atol=1e-5)
    pd.DataFrame(
        {"text": [f"word{i % 5} other{i % 3} thing" for i in range(12)], "label": ["a", "b"] * 6}
    ).to_csv(tmp_path / "t.csv", index=False)
    texts = sample(load_dataset(tmp_path / "t.csv"))
    t = raw_features(texts)
    assert t.shape[0] == 12 and 2 <= t.shape[1] <= 256 and np.isfinite(t).all()


def test_raw_text_features_keep_their_spectrum(tmp_path: Path) -> None:
    """Standardising each SVD component whitened them: the covariance became the identity, Ledoit-Wolf
    then shrank fully and the shrinkage H-score of the raw-text baseline was 0 on any data."""
    rng = np.random.default_rng(0)
    topics = {"a": ["goal", "match", "team", "score"], "b": ["stock", "market", "price", "trade"]}
    rows = [
        {"text": " ".join(rng.choice(topics[c], 3)) + f" filler{rng.integers(40)}", "label": c}
        for c in ("a", "b") * 30
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    texts = sample(load_dataset(tmp_path / "t.csv"))
    t = raw_features(texts).astype(np.float64)
    variances = t.var(axis=0)
    assert np.allclose(t.mean(0), 0, atol=1e-5) and variances.mean() == pytest.approx(1.0, rel=1e-4)
    assert variances.max() > 2 * variances.min()  # the leading components still carry more variance
    assert score("hscore_shrinkage", t, texts.labels) > 0.1


def test_recommend_flags_candidates_consistently(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    """Without resampling the verdicts are the whole-sample comparisons of :mod:`tlreg.advisor.verdicts`."""
    result = recommend(image_folder, registry=registry, workers=0, bootstrap=0)
    scores = {r.ref: r.scores for r in [*result.ranking, *result.baselines]}
    assert "raw pixels (16x16)" in scores
    n_classes = len(result.data["classes"])
    names = verdict_names("classification", result.estimators)
    for row in result.ranking:
        own = [f"{row.ref} (random init)", "raw pixels (16x16)"]
        assert row.frozen_features_beaten_by == beaten_by(row.ref, scores, own, names, n_classes=n_classes)
        # frozen scores do not predict fine-tuning: no negative-transfer claim from them
        assert row.negative_transfer is False and row.negative_transfer_vs == []
        assert not any("negative transfer" in w for w in result.warnings)
    doc = result.to_dict()
    assert all(isinstance(r["negative_transfer"], bool) for r in doc["ranking"])
    assert all(isinstance(r["frozen_features_beaten_by"], list) for r in doc["ranking"])
