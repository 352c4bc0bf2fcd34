"""Properties every labelled estimator must have, checked with hypothesis on controlled data.

Invariance to renaming the classes and to the order of the samples, a finite result, and a higher
score for more separable features (class means scaled by s: s=3 > s=1 > s=0.1).
"""

from __future__ import annotations

import numpy as np
import pytest
from _estimator_data import call_kwargs, make_classification, make_source_task
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tlreg.advisor.estimators import EstimatorInfo, available, score

LABELLED = [info for info in available() if info.needs_labels]
FAST = settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

#: Estimators that legitimately break the separability ordering, with the reason (scikit-learn's xfail tags).
NOT_MONOTONE: dict[str, str] = {
    "ncti_vc": "the nuclear norm of nearly uniform predictions (s=0.1) is small too: VC is only meaningful "
    "together with SELI and NCC, as the paper combines them",
}

seeds = st.integers(min_value=0, max_value=2**16)
shapes = st.sampled_from([(60, 5, 3), (72, 8, 4), (45, 4, 2)])


def by_name(infos: list[EstimatorInfo]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("info", infos, ids=[info.name for info in infos])


@by_name(LABELLED)
@FAST
@given(seed=seeds, shape=shapes, data=st.data())
def test_invariant_to_renaming_classes(
    info: EstimatorInfo, seed: int, shape: tuple[int, int, int], data: st.DataObject
) -> None:
    n, d, c = shape
    features, labels = make_classification(seed, n=n, d=d, c=c)
    kwargs = call_kwargs(info, features, seed)
    permutation = np.array(data.draw(st.permutations(list(range(c)))))
    names = np.array(
        data.draw(st.lists(st.text(min_size=1, max_size=4), min_size=c, max_size=c, unique=True))
    )
    expected = score(info.name, features, labels, **kwargs)
    assert np.isfinite(expected)
    assert score(info.name, features, permutation[labels], **kwargs) == pytest.approx(
        expected, rel=1e-7, abs=1e-10
    )
    assert score(info.name, features, names[labels], **kwargs) == pytest.approx(expected, rel=1e-7, abs=1e-10)


@by_name(LABELLED)
@FAST
@given(seed=seeds, shape=shapes, data=st.data())
def test_invariant_to_sample_order(
    info: EstimatorInfo, seed: int, shape: tuple[int, int, int], data: st.DataObject
) -> None:
    n, d, c = shape
    features, labels = make_classification(seed, n=n, d=d, c=c)
    kwargs = call_kwargs(info, features, seed)
    order = np.array(data.draw(st.permutations(list(range(n)))))
    expected = score(info.name, features, labels, **kwargs)
    shuffled = {key: value[order] for key, value in kwargs.items()}
    assert score(info.name, features[order], labels[order], **shuffled) == pytest.approx(
        expected, rel=1e-7, abs=1e-10
    )


@by_name(LABELLED)
@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds)
def test_more_separable_features_score_higher(info: EstimatorInfo, seed: int) -> None:
    if info.name in NOT_MONOTONE:
        pytest.skip(NOT_MONOTONE[info.name])
    values = []
    for separation in (0.1, 1.0, 3.0):
        if info.needs_source_probs:  # a source head aligned with the classes: probabilities from the features
            features, labels, probs = make_source_task(seed, n=160, d=6, c=4, separation=separation)
            values.append(score(info.name, features, labels, source_probs=probs))
        else:
            features, labels = make_classification(
                seed, n=160, d=6, c=4, separation=separation, mean_scale=1.0
            )
            values.append(score(info.name, features, labels))
    assert values[0] < values[1] < values[2], values


@pytest.mark.parametrize("name", sorted(NOT_MONOTONE))
def test_not_monotone_list_names_registered_estimators(name: str) -> None:
    assert name in {info.name for info in LABELLED}
