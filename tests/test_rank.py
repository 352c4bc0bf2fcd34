"""advisor/rank.py: rank and z-score aggregation, weights, NaN, pool normalisation, the defaults."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tlreg.advisor import estimators as est
from tlreg.advisor import rank
from tlreg.advisor.rank import combine, normalise, order, pooled, signal, to_compute
from tlreg.advisor.why import explain

NAN = math.nan


def test_rank_aggregation_hand_checked():
    # a > b > c on e1; c > b > a on e2; b best on e3: rank-normalised 1, .5, 0 per estimator.
    scores = {
        "a": {"e1": 3.0, "e2": 0.0, "e3": 5.0},
        "b": {"e1": 2.0, "e2": 1.0, "e3": 9.0},
        "c": {"e1": 1.0, "e2": 2.0, "e3": 1.0},
    }
    got = combine(scores, ["e1", "e2", "e3"], {}, method="rank")
    assert got["a"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert got["b"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert got["c"] == pytest.approx((0.0 + 1.0 + 0.0) / 3)
    assert order(got) == ["b", "a", "c"]


def test_one_estimator_is_its_own_order_under_both_methods():
    scores = {m: {"e": v} for m, v in zip("abcd", [0.3, -2.0, 7.0, 1.0], strict=True)}
    for method in rank.AGGREGATIONS:
        assert order(combine(scores, ["e"], {}, method=method)) == ["c", "d", "a", "b"]


def test_weights_change_the_winner():
    scores = {"a": {"e1": 1.0, "e2": 0.0}, "b": {"e1": 0.0, "e2": 1.0}}
    assert order(combine(scores, ["e1", "e2"], {"e1": 3.0, "e2": 1.0}))[0] == "a"
    assert order(combine(scores, ["e1", "e2"], {"e1": 1.0, "e2": 3.0}))[0] == "b"
    # a zero weight drops the estimator: the other one decides
    assert combine(scores, ["e1", "e2"], {"e1": 0.0})["b"] == pytest.approx(1.0)


def test_zscore_keeps_margins_that_ranks_drop():
    # e1: a far ahead of evenly spaced b, c, d; e2: b just ahead of a. Ranks tie a and b; z-scores favour a.
    e1, e2 = [10.0, 0.0, -0.1, -0.2], [0.2, 0.3, 0.1, 0.0]
    scores = {m: {"e1": x, "e2": y} for m, x, y in zip("abcd", e1, e2, strict=True)}
    by_rank = combine(scores, ["e1", "e2"], {}, method="rank")
    by_z = combine(scores, ["e1", "e2"], {}, method="zscore")
    assert by_rank["a"] == pytest.approx(by_rank["b"]) == pytest.approx(5 / 6)
    z1 = (np.array(e1) - np.mean(e1)) / np.std(e1)
    z2 = (np.array(e2) - np.mean(e2)) / np.std(e2)
    assert [by_z[m] for m in "abcd"] == pytest.approx(((z1 + z2) / 2).tolist())
    assert order(by_z)[0] == "a"


def test_nan_means_not_scored():
    scores = {"a": {"e1": 1.0, "e2": NAN}, "b": {"e1": 0.0, "e2": 5.0}, "c": {"e1": NAN}}
    got = combine(scores, ["e1", "e2"], {}, method="rank")
    assert got["a"] == pytest.approx(1.0)  # only e1 scored a: it is best there
    assert got["b"] == pytest.approx((0.0 + 1.0) / 2)
    assert math.isnan(got["c"])  # nobody scored c
    assert order(got) == ["a", "b", "c"]  # NaN last


def test_normalise_edge_cases():
    assert normalise(np.array([NAN, NAN])).tolist() == [pytest.approx(NAN, nan_ok=True)] * 2
    assert normalise(np.array([4.0, NAN]), "rank")[0] == 1.0  # a pool of one is the best of it
    assert normalise(np.array([2.0, 2.0]), "zscore").tolist() == [0.0, 0.0]
    # ties share their mean rank
    assert normalise(np.array([1.0, 2.0, 2.0]), "rank").tolist() == [0.0, 0.75, 0.75]
    with pytest.raises(ValueError, match="unknown aggregation"):
        normalise(np.array([1.0]), "median")


def test_order_breaks_ties_by_tiebreak_then_name():
    combined = {"b": 0.5, "a": 0.5, "c": 0.9, "d": NAN}
    assert order(combined) == ["c", "a", "b", "d"]
    assert order(combined, {"a": 10.0, "b": 1.0}) == ["c", "b", "a", "d"]


def _pool_scores(name: str, seed: int = 0) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    parts = rank.components_of(name)
    return {f"m{i}": {p: float(rng.normal() * 10 ** (2 - k)) for k, p in enumerate(parts)} for i in range(5)}


@pytest.mark.parametrize("name", ["etran", "ncti"])
def test_pool_normalisation_is_used_for_etran_and_ncti(name: str):
    parts = rank.components_of(name)
    assert parts == tuple(f"{name}_{c}" for c in est.get(name).components)
    scores = _pool_scores(name)
    short = {m: {p.removeprefix(f"{name}_"): v for p, v in s.items()} for m, s in scores.items()}
    assert signal(scores, name) == pytest.approx(est.pool_normalize(name, short))
    # Hand-checked: the first component's scale rules the per-model sum (m1, m0, m2), while
    # min-max normalised components give m0 1 + 0 + 0, m1 .99 + 1 + 1, m2 0 + .6 + .5: m1, m2, m0.
    big, small, mid = parts
    hand = {
        "m0": {big: 100.0, small: 0.0, mid: 0.0},
        "m1": {big: 99.0, small: 0.01, mid: 1.0},
        "m2": {big: 0.0, small: 0.006, mid: 0.5},
    }
    assert signal(hand, name) == pytest.approx({"m0": 1.0, "m1": 2.99, "m2": 1.1})
    assert order(combine(hand, [name], {})) == ["m1", "m2", "m0"]
    # with the per-model sums present as well, the components still decide
    with_sum = {m: {**s, name: sum(s.values())} for m, s in hand.items()}
    assert order({m: s[name] for m, s in with_sum.items()}) == ["m1", "m0", "m2"]
    assert order(combine(with_sum, [name], {})) == ["m1", "m2", "m0"]


def test_pool_normalisation_leaves_out_models_missing_a_component():
    scores = _pool_scores("etran", seed=3)
    scores["m4"]["etran_lda"] = NAN  # e.g. features wider than the sample
    values = signal(scores, "etran")
    assert math.isnan(values["m4"])
    rest = {m: {p.removeprefix("etran_"): v for p, v in s.items()} for m, s in scores.items() if m != "m4"}
    assert {m: values[m] for m in rest} == pytest.approx(est.pool_normalize("etran", rest))


def test_without_components_the_per_model_score_is_used():
    scores = {"a": {"etran": 2.0}, "b": {"etran": 1.0}}
    assert signal(scores, "etran") == {"a": 2.0, "b": 1.0}


def test_to_compute_expands_pool_normalised_estimators():
    assert to_compute(["logme", "etran", "knn", "ncti", "logme"]) == [
        "logme",
        "etran_energy",
        "etran_lda",
        "etran_svd",
        "knn",
        "ncti_seli",
        "ncti_ncc",
        "ncti_vc",
    ]
    assert to_compute(["history"]) == ["history"]  # not an estimator: a signal passed through


def test_signals_that_are_not_estimators_are_combined_as_given():
    scores = {"a": {"logme": 1.0, "history": 0.0}, "b": {"logme": 0.0, "history": 1.0}}
    got = combine(scores, ["logme", "history"], {"history": 2.0})
    assert order(got) == ["b", "a"]


def test_explain_uses_the_pool_values():
    scores = _pool_scores("ncti", seed=1)
    combined = combine(scores, ["ncti"], {})
    ranked = order(combined)
    text = explain(ranked, scores, combined, ["ncti"])
    assert text.startswith(f"{ranked[0]} ranks first: it scores highest on 1 of 1 estimators (ncti)")
    assert pooled(scores, ["ncti"])[ranked[0]]["ncti"] == max(signal(scores, "ncti").values())


def test_default_weights_apply_when_none_given(monkeypatch: pytest.MonkeyPatch):
    scores = {"a": {"e1": 1.0, "e2": 0.0}, "b": {"e1": 0.0, "e2": 1.0}}
    monkeypatch.setattr(rank, "DEFAULT_WEIGHTS", {"e1": 5.0})
    assert order(combine(scores, ["e1", "e2"]))[0] == "a"
    monkeypatch.setattr(rank, "DEFAULT_WEIGHTS", {"e2": 5.0})
    assert order(combine(scores, ["e1", "e2"]))[0] == "b"


@pytest.mark.parametrize("task", sorted(rank.DEFAULT_ESTIMATORS))
def test_defaults_are_registered_and_support_their_task(task: str):
    names = rank.DEFAULT_ESTIMATORS[task]
    assert names
    for name in to_compute(names):
        assert task in est.get(name).tasks, f"{name} does not support {task}"
    for name in rank.DEFAULT_WEIGHTS:
        assert any(name in rank.DEFAULT_ESTIMATORS[t] for t in rank.DEFAULT_ESTIMATORS), name
        assert rank.DEFAULT_WEIGHTS[name] > 0
    assert rank.DEFAULT_AGGREGATION in rank.AGGREGATIONS


def test_defaults_rank_real_features():
    """The default classification set runs end to end on features with class structure."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    good = rng.normal(size=(120, 16)) + 3.0 * np.eye(4, 16)[labels]
    bad = rng.normal(size=(120, 16))
    probs = np.full((120, 5), 0.2)
    names = rank.DEFAULT_ESTIMATORS["classification"]
    scores = {}
    for model, feats in (("good", good), ("bad", bad)):
        scores[model] = {
            n: est.score(n, feats, labels, source_probs=probs)
            for n in to_compute(names)
            if not est.get(n).needs_source_probs or probs is not None
        }
    assert order(combine(scores, names))[0] == "good"


def test_average_ranks_is_scipys_rankdata() -> None:
    """tlreg ranks without importing scipy.stats (0.8 s of a cached recommend): same ranks, ties too."""
    from scipy.stats import rankdata
    from tlreg.advisor.rank import average_ranks

    rng = np.random.default_rng(0)
    cases = [
        [3.0, 1.0, 2.0],
        [1.0, 1.0, 1.0],
        [2.0, 1.0, 2.0, 0.5, 2.0],
        [5.0],
        [],
        [-0.0, 0.0, 1e-300, -1e300],
        *(rng.integers(0, 4, size=n).astype(float) for n in (2, 7, 30)),
        *(rng.normal(size=n) for n in (3, 50)),
    ]
    for values in cases:
        assert average_ranks(values).tolist() == rankdata(values, method="average").tolist(), values
