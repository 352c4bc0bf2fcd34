"""The checks every registered estimator must pass, parametrised over ``available()`` itself.

Like scikit-learn's ``parametrize_with_checks``: an estimator is tested by being registered, built-in
or from a plugin.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from _estimator_data import call_kwargs, make_classification
from tlreg.advisor.errors import EstimatorError
from tlreg.advisor.estimators import TASKS, EstimatorInfo, available, get, prepared, score

ESTIMATORS = available()
LABELLED = [info for info in ESTIMATORS if info.needs_labels]
WITH_FEATURES = [info for info in ESTIMATORS if info.uses_features]
WITH_PROBS = [info for info in ESTIMATORS if info.needs_source_probs]


def by_name(infos: list[EstimatorInfo]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("info", infos, ids=[info.name for info in infos])


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(21, n=60, d=6, c=3, separation=0.8)


def test_builtins_are_all_registered() -> None:
    names = {info.name for info in ESTIMATORS}
    assert {
        "logme",
        "knn",
        "leep",
        "nce",
        "nleep",
        "hscore",
        "hscore_shrinkage",
        "transrate",
        "gbc",
        "sfda",
        "etran",
        "etran_energy",
        "etran_lda",
        "etran_svd",
        "ncti",
        "ncti_seli",
        "ncti_ncc",
        "ncti_vc",
        "rankme",
    } <= names


@by_name(ESTIMATORS)
def test_metadata_is_complete(info: EstimatorInfo) -> None:
    assert info.paper and info.summary and info.cost
    assert info.higher_is_better is True
    assert info.tasks and info.tasks <= TASKS
    assert ("unlabelled" in info.tasks) <= (not info.needs_labels)
    doc = inspect.getdoc(info.fn) or ""
    assert "Shape:" in doc and "score:" in doc, "docstring needs a Shape section, as TLlib's"
    parameters = inspect.signature(info.fn).parameters
    assert parameters["source_probs"].kind is inspect.Parameter.KEYWORD_ONLY
    json.dumps(info.to_dict())
    for component in info.components:
        assert get(f"{info.name}_{component}").paper == info.paper
    assert (info.pool_normalizer is not None) == bool(info.components)


@by_name(ESTIMATORS)
def test_scores_a_finite_float_deterministically_without_touching_inputs(info: EstimatorInfo, data) -> None:
    features, labels = data
    kwargs = call_kwargs(info, features, 1)
    copies = (features.copy(), labels.copy(), {k: v.copy() for k, v in kwargs.items()})
    first = score(info.name, features, labels, **kwargs)
    assert isinstance(first, float) and np.isfinite(first)
    assert score(info.name, features, labels, **kwargs) == first
    assert np.array_equal(features, copies[0]) and np.array_equal(labels, copies[1])
    for key, value in kwargs.items():
        assert np.array_equal(value, copies[2][key])
    assert info.fn(features, labels, **kwargs) == first


@by_name(ESTIMATORS)
def test_float32_input_is_scored_in_float64(info: EstimatorInfo, data) -> None:
    features, labels = data
    single = features.astype(np.float32)
    kwargs = call_kwargs(info, features, 2)
    assert score(info.name, single, labels, **kwargs) == score(
        info.name, single.astype(np.float64), labels, **kwargs
    )


@by_name(LABELLED)
def test_labels_with_gaps_or_strings_are_remapped(info: EstimatorInfo, data) -> None:
    features, labels = data
    kwargs = call_kwargs(info, features, 3)
    expected = score(info.name, features, labels, **kwargs)
    gaps = np.array([3, 7, 100])[labels]
    strings = np.array(["cat", "dog", "eel"])[labels]
    floats = labels.astype(np.float64)
    for renamed in (gaps, strings, floats, list(strings)):
        assert score(info.name, features, renamed, **kwargs) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@by_name(LABELLED)
def test_one_class_is_refused(info: EstimatorInfo, data) -> None:
    features, labels = data
    with pytest.raises(EstimatorError, match="single class"):
        score(info.name, features, np.zeros_like(labels), **call_kwargs(info, features, 4))


@by_name(LABELLED)
def test_fewer_samples_than_classes_is_refused(info: EstimatorInfo) -> None:
    features, _ = make_classification(22, n=8, d=3, c=2)
    with pytest.raises(EstimatorError, match="more samples than classes"):
        score(info.name, features, np.arange(8), **call_kwargs(info, features, 5))


@by_name(LABELLED)
def test_label_count_and_shape_mismatch_are_refused(info: EstimatorInfo, data) -> None:
    features, labels = data
    kwargs = call_kwargs(info, features, 6)
    with pytest.raises(EstimatorError, match="labels for"):
        score(info.name, features, labels[:-1], **kwargs)
    with pytest.raises(EstimatorError, match="1-D"):
        score(info.name, features, np.stack([labels, labels], axis=1), **kwargs)
    with pytest.raises(EstimatorError, match="labels are missing"):
        score(info.name, features, None, **kwargs)


@by_name(WITH_FEATURES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_refused(info: EstimatorInfo, data, bad: float) -> None:
    features, labels = data
    broken = features.copy()
    broken[4, 2] = bad
    with pytest.raises(EstimatorError, match="NaN or infinite"):
        score(info.name, broken, labels, **call_kwargs(info, features, 7))


@by_name(WITH_FEATURES)
def test_constant_features_are_refused(info: EstimatorInfo, data) -> None:
    features, labels = data
    with pytest.raises(EstimatorError, match="constant"):
        score(info.name, np.full_like(features, 0.5), labels, **call_kwargs(info, features, 8))


@by_name(WITH_FEATURES)
def test_features_of_the_wrong_rank_are_refused(info: EstimatorInfo, data) -> None:
    features, labels = data
    with pytest.raises(EstimatorError, match="2-D"):
        score(info.name, features[:, 0], labels, **call_kwargs(info, features, 9))


@by_name(WITH_PROBS)
def test_bad_source_probs_are_refused(info: EstimatorInfo, data) -> None:
    features, labels = data
    probs = call_kwargs(info, features, 10)["source_probs"]
    with pytest.raises(EstimatorError, match="source_probs are missing"):
        score(info.name, features, labels)
    with pytest.raises(EstimatorError, match="shape"):
        score(info.name, features, labels, source_probs=probs[:-1])
    with pytest.raises(EstimatorError, match="shape"):
        score(info.name, features, labels, source_probs=probs[:, 0])
    with pytest.raises(EstimatorError, match="sum to 1"):
        score(info.name, features, labels, source_probs=probs * 1.1)
    with pytest.raises(EstimatorError, match="negative"):
        score(info.name, features, labels, source_probs=np.log(probs))
    broken = probs.copy()
    broken[0, 0] = np.nan
    with pytest.raises(EstimatorError, match="NaN"):
        score(info.name, features, labels, source_probs=broken)
    tolerated = probs * (1 + 5e-4)
    assert np.isfinite(score(info.name, features, labels, source_probs=tolerated))


@by_name(ESTIMATORS)
def test_every_supported_task_scores_and_the_others_are_refused(info: EstimatorInfo, data) -> None:
    features, labels = data
    kwargs = call_kwargs(info, features, 11)
    targets = {
        "classification": labels,
        "regression": features[:, :2] @ [1.0, -2.0] + 0.3,
        "unlabelled": None,
    }
    for task in sorted(TASKS):
        if task in info.tasks:
            assert np.isfinite(score(info.name, features, targets[task], task=task, **kwargs))
        else:
            with pytest.raises(EstimatorError, match="does not support task"):
                score(info.name, features, targets[task], task=task, **kwargs)


@by_name(ESTIMATORS)
def test_wide_features_score_or_explain_why_not(info: EstimatorInfo) -> None:
    """D > N: an estimator either copes or refuses with a message naming the fix."""
    features, labels = make_classification(23, n=24, d=60, c=3)
    try:
        value = score(info.name, features, labels, **call_kwargs(info, features, 12))
    except EstimatorError as error:
        assert "PCA" in str(error)
    else:
        assert np.isfinite(value)


@by_name(ESTIMATORS)
def test_prepared_scores_subsets_as_the_resampling_needs(info: EstimatorInfo, data) -> None:
    """``prepared`` on all rows is the estimator's score; without a ``prepare`` step, a subset's score is
    the score of the subset (what the resampling computed before ``prepare`` existed)."""
    features, labels = data
    kwargs = call_kwargs(info, features, 1)
    scorer = prepared(info.name, features, labels, **kwargs)
    assert scorer(np.arange(len(labels))) == pytest.approx(
        score(info.name, features, labels, **kwargs), rel=1e-9
    )
    rows = np.sort(np.random.default_rng(0).choice(len(labels), size=48, replace=False))
    value = scorer(rows)
    assert isinstance(value, float) and np.isfinite(value)
    if info.prepare is None:
        subset = {k: v[rows] for k, v in kwargs.items()}
        assert value == score(info.name, features[rows], labels[rows], **subset)
