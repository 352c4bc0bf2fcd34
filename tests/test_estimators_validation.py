"""The shared input checks: what is converted, what is remapped, and what is refused with which message."""

from __future__ import annotations

import numpy as np
import pytest
from _estimator_data import make_classification
from tlreg.advisor.errors import EstimatorError
from tlreg.advisor.estimators import score
from tlreg.advisor.estimators.validation import (
    check_features,
    check_labels,
    check_source_probs,
    check_targets,
    check_width,
)


def test_features_become_float64_without_copying_float64() -> None:
    features = np.arange(12, dtype=np.float64).reshape(4, 3)
    assert check_features(features, estimator="t") is features
    converted = check_features(features.astype(np.float32), estimator="t")
    assert converted.dtype == np.float64
    assert check_features([[1, 2], [3, 5]], estimator="t").dtype == np.float64


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "features are missing"),
        (np.array([["a", "b"], ["c", "d"]]), "numeric"),
        (np.ones((3, 2, 2)), "2-D"),
        (np.ones((1, 4)), "at least 2 samples"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), "NaN or infinite values in 1 of 2 rows"),
        (np.ones((5, 3)), "every feature is constant"),
    ],
)
def test_bad_features_are_refused_with_a_reason(bad: object, message: str) -> None:
    with pytest.raises(EstimatorError, match=message):
        check_features(bad, estimator="t")


def test_some_constant_columns_are_fine() -> None:
    features = np.column_stack([np.zeros(5), np.arange(5.0)])
    assert check_features(features, estimator="t").shape == (5, 2)


def test_labels_are_remapped_with_unique() -> None:
    labels, n_classes = check_labels(np.array(["b", "a", "c", "a"]), 4, estimator="t")
    assert labels.tolist() == [1, 0, 2, 0] and n_classes == 3
    labels, n_classes = check_labels(np.array([[100], [3], [7], [3]]), 4, estimator="t")
    assert labels.tolist() == [2, 0, 1, 0] and n_classes == 3
    assert check_labels([True, False, True], 3, estimator="t")[1] == 2


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0.5, 1.5, 0.5, 2.0], "non-integer floats"),
        ([0.0, np.nan, 1.0, 1.0], "NaN"),
        ([1, 1, 1, 1], "single class"),
        ([0, 1, 2, 3], "4 samples for 4 classes"),
        ([0, 1, 1], "3 labels for 4"),
    ],
)
def test_bad_labels_are_refused_with_a_reason(labels: list, message: str) -> None:
    n = 4
    with pytest.raises(EstimatorError, match=message):
        check_labels(np.array(labels), n, estimator="t")


def test_classes_too_small_for_a_variance_are_named() -> None:
    with pytest.raises(EstimatorError, match="classes 'solo' have fewer than 2 samples"):
        check_labels(np.array(["a", "a", "solo", "b", "b"]), 5, estimator="t", min_class_size=2)
    features, labels = make_classification(41, n=30, d=4, c=3)
    labels = labels.copy()
    labels[0] = 9
    with pytest.raises(EstimatorError, match="gbc needs 2 per class"):
        score("gbc", features, labels)
    assert np.isfinite(score("hscore", features, labels))


def test_targets_and_source_probs() -> None:
    assert check_targets([1.0, 2.0, 3.0], 3, estimator="t").shape == (3, 1)
    with pytest.raises(EstimatorError, match="NaN"):
        check_targets([1.0, np.inf, 3.0], 3, estimator="t")
    with pytest.raises(EstimatorError, match="shape"):
        check_targets(np.ones((2, 2)), 3, estimator="t")
    probs = check_source_probs([[0.2, 0.8], [0.5, 0.5]], 2, estimator="t")
    assert probs.dtype == np.float64
    with pytest.raises(EstimatorError, match=r"off by 0\.1"):
        check_source_probs([[0.2, 0.9], [0.5, 0.5]], 2, estimator="t")


def test_width_limit_names_the_fix() -> None:
    check_width(10, 20, 10, estimator="t")
    with pytest.raises(EstimatorError, match=r"11 feature dimensions but only 10 .*PCA"):
        check_width(11, 20, 10, estimator="t")


def test_messages_are_one_line() -> None:
    with pytest.raises(EstimatorError) as caught:
        score("sfda", *make_classification(42, n=20, d=30, c=2))
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("sfda: ")
