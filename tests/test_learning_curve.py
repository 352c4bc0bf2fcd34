"""The learning curve: nested subsamples of the cached features, a saturating fit, an interval."""

from __future__ import annotations

import numpy as np
import pytest
from tlreg.advisor.learning_curve import LearningCurve, learning_curve, needed_items


def blobs(n_per_class: int, classes: int, *, scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    means = rng.normal(size=(classes, 16)) * scale
    return means[labels] + rng.normal(size=(len(labels), 16)), labels


def test_a_curve_rises_saturates_and_predicts_with_an_interval() -> None:
    x, y = blobs(40, 4, scale=0.5)
    curve = learning_curve(x, y, "classification", seed=1)
    assert curve.usable and curve.metric == "accuracy" and curve.n_labelled == 160
    ns = [p["n"] for p in curve.points]
    assert ns == sorted(ns) and len(ns) == 4
    assert curve.points[-1]["mean"] >= curve.points[0]["mean"]  # more labels do not hurt on average
    now, later = curve.predict(128), curve.predict(320)
    assert later["expected"] >= now["expected"] - 1e-9  # the fit is monotone in n
    assert later["low"] <= later["expected"] <= later["high"] <= 1.0
    doc = curve.to_dict()
    assert doc["predict"][0]["labels_x"] == 2.0 and doc["predict"][0]["n"] == 320.0


def test_the_same_seed_gives_the_same_curve() -> None:
    x, y = blobs(30, 3, scale=0.8)
    a, b = learning_curve(x, y, "classification", seed=3), learning_curve(x, y, "classification", seed=3)
    assert a.points == b.points and a.params == b.params


def test_too_few_items_per_class_say_how_many_are_needed() -> None:
    x, y = blobs(6, 3, scale=1.0)
    curve = learning_curve(x, y, "classification")
    assert not curve.usable and f"it needs {needed_items()} per class" in curve.note
    assert "the smallest class has 6" in curve.note
    with pytest.raises(ValueError, match="no learning curve"):
        curve.predict(100)
    assert curve.to_dict()["predict"] == []


def test_the_demo_size_has_a_curve() -> None:
    """120 items in 10 classes (the bundled digits): enough for a curve."""
    x, y = blobs(12, 10, scale=1.5)
    assert learning_curve(x, y, "classification").usable


def test_regression_is_a_curve_in_r2_and_unlabelled_has_none() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    target = x @ rng.normal(size=8) + 0.3 * rng.normal(size=200)
    curve = learning_curve(x, target, "regression")
    assert curve.usable and curve.metric == "r2" and curve.points[-1]["mean"] > 0.5
    none = learning_curve(x, None, "unlabelled")
    assert not none.usable and "unlabelled" in none.note


def test_an_empty_curve_is_not_usable() -> None:
    assert not LearningCurve(metric="accuracy").usable
