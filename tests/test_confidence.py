"""Confidence by resampling: stratified subsamples, P(best), rank intervals, separability."""

from __future__ import annotations

import numpy as np
import pytest
from tlreg.advisor.confidence import SEPARABLE, bootstrap, resample_indices


def separable(n_per_class: int, classes: int, scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    means = rng.normal(size=(classes, 8)) * scale
    return means[labels] + rng.normal(size=(len(labels), 8)), labels


def test_resamples_are_stratified_without_replacement_and_seeded() -> None:
    labels = np.array([0] * 10 + [1] * 3 + [2] * 2)
    idx = resample_indices(15, labels, "classification", fraction=0.8, rng=np.random.default_rng(0))
    assert len(idx) == len(set(idx.tolist()))
    counts = np.bincount(labels[idx])
    assert counts.tolist() == [8, 2, 2]
    again = resample_indices(15, labels, "classification", fraction=0.8, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(idx, again)
    plain = resample_indices(10, None, "unlabelled", fraction=0.5, rng=np.random.default_rng(0))
    assert len(plain) == 5 and len(set(plain.tolist())) == 5


def test_a_clearly_better_model_is_best_in_every_round() -> None:
    good, labels = separable(15, 3, scale=4.0, seed=0)
    noise = np.random.default_rng(1).normal(size=good.shape)
    conf = bootstrap(
        {"good": (good, None), "noise": (noise, None)},
        labels,
        "classification",
        ["logme", "knn"],
        ["good", "noise"],
        rounds=20,
        seed=0,
    )
    assert conf.p_best == {"good": 1.0, "noise": 0.0}
    assert conf.rank_interval == {"good": (1, 1), "noise": (2, 2)}
    assert conf.beats_runner_up == 1.0 and conf.separable


def test_two_equal_models_are_not_separable() -> None:
    feats, labels = separable(15, 3, scale=1.0, seed=2)
    conf = bootstrap(
        {"a": (feats, None), "b": (feats.copy(), None)},
        labels,
        "classification",
        ["logme"],
        ["a", "b"],
        rounds=10,
        seed=0,
    )
    assert conf.beats_runner_up == 0.0 and conf.separable is False
    assert sum(conf.p_best.values()) == pytest.approx(1.0)
    assert SEPARABLE == 0.9


def test_close_models_get_wide_intervals_and_the_result_is_seeded() -> None:
    a, labels = separable(12, 3, scale=1.0, seed=3)
    b = a + np.random.default_rng(4).normal(scale=0.8, size=a.shape)
    args = ({"a": (a, None), "b": (b, None)}, labels, "classification", ["logme", "knn"], ["a", "b"])
    first = bootstrap(*args, rounds=30, seed=7)
    assert first == bootstrap(*args, rounds=30, seed=7)
    assert 0.0 <= first.p_best["a"] <= 1.0 and first.rank_interval["a"][0] <= first.rank_interval["a"][1]


def test_fixed_signals_count_in_every_round() -> None:
    feats, labels = separable(10, 2, scale=1.0, seed=5)
    conf = bootstrap(
        {"a": (feats, None), "b": (feats.copy(), None)},
        labels,
        "classification",
        ["logme"],
        ["b", "a"],
        rounds=10,
        seed=0,
        fixed={"a": {"history": 0.0}, "b": {"history": 1.0}},
    )
    assert conf.p_best["b"] == 1.0 and conf.beats_runner_up == 1.0


def test_no_rounds_means_no_confidence() -> None:
    feats, labels = separable(5, 2, scale=1.0, seed=0)
    conf = bootstrap({"a": (feats, None)}, labels, "classification", ["logme"], ["a"], rounds=0)
    assert conf.p_best == {} and conf.separable is None


def test_large_samples_are_resampled_in_rounds_of_bounded_size() -> None:
    from tlreg.advisor import confidence

    labels = np.repeat(np.arange(4), 3000)
    n = len(labels)
    idx = resample_indices(
        n,
        labels,
        "classification",
        fraction=min(0.8, confidence.MAX_ROUND_ITEMS / n),
        rng=np.random.default_rng(0),
    )
    assert len(idx) <= confidence.MAX_ROUND_ITEMS + 4 and set(np.bincount(labels[idx])) == {1250}


def test_ties_share_p_best_and_rank_instead_of_going_to_the_tie_break() -> None:
    """A tie-break rule (fewer parameters) used to win every tied round: P(best) 1.0 for one twin."""
    feats, labels = separable(12, 3, scale=1.0, seed=6)
    noise = np.random.default_rng(9).normal(size=feats.shape)
    conf = bootstrap(
        {"a": (feats, None), "b": (feats.copy(), None), "c": (noise, None)},
        labels,
        "classification",
        ["logme", "hscore_shrinkage"],
        ["a", "b", "c"],
        rounds=10,
        seed=0,
        baselines={"raw": (noise * 2.0, None)},
    )
    assert conf.p_best == {"a": 0.5, "b": 0.5, "c": 0.0}
    assert conf.rank_interval["a"] == conf.rank_interval["b"] == (1, 1) and conf.rank_interval["c"] == (3, 3)
    assert len(conf.round_scores) == 10 and set(conf.round_scores[0]) == {"a", "b", "c", "raw"}


def test_competition_ranks_and_the_shared_first_place() -> None:
    from tlreg.advisor.confidence import competition_ranks, tied_with_best

    combined = {"a": 0.5, "b": 0.5, "c": 0.2, "d": float("nan")}
    assert competition_ranks(combined) == {"a": 1, "b": 1, "c": 3, "d": 4}
    assert tied_with_best(combined) == ["a", "b"] and tied_with_best({"x": float("nan")}) == []


def test_an_estimators_prepare_step_runs_once_per_model_not_once_per_round() -> None:
    """N-LEEP refitted its Gaussian mixture on each of the 50 rounds (about 10 s per candidate on the
    demo's 120 x 1280 features); an estimator's ``prepare`` step now runs once per model."""
    from tlreg.advisor.estimators import register, unregister

    calls = {"prepare": 0, "rows": 0}

    def prepare(features, labels, *, source_probs=None):
        calls["prepare"] += 1
        column = np.asarray(features)[:, 0]

        def on_rows(rows):
            calls["rows"] += 1
            return float(column[rows].mean())

        return on_rows

    @register("test_prepared_mean", paper="p", cost="c", prepare=prepare)
    def prepared_mean(features, labels, *, source_probs=None):
        """First column's mean.

        Shape:
            - score: scalar.
        """
        return prepare(features, labels)(np.arange(len(features)))

    try:
        a, labels = separable(10, 2, scale=1.0, seed=8)
        conf = bootstrap(
            {"a": (a, None), "b": (a + 1.0, None)},
            labels,
            "classification",
            ["test_prepared_mean"],
            ["b", "a"],
            rounds=7,
            seed=0,
        )
    finally:
        unregister("test_prepared_mean")
    assert calls == {"prepare": 2, "rows": 14}
    assert conf.p_best == {"a": 0.0, "b": 1.0}


def test_nleep_rounds_reuse_the_whole_sample_fit() -> None:
    from tlreg.advisor.estimators import prepared

    feats, labels = separable(15, 3, scale=1.5, seed=10)
    conf = bootstrap({"a": (feats, None)}, labels, "classification", ["nleep"], ["a"], rounds=5, seed=3)
    rng = np.random.default_rng(3)
    scorer = prepared("nleep", feats, labels)
    for scores in conf.round_scores:
        rows = resample_indices(len(labels), labels, "classification", fraction=0.8, rng=rng)
        assert scores["a"]["nleep"] == scorer(rows)


def test_from_rounds_concludes_from_stored_rounds_as_the_bootstrap_does() -> None:
    """Rounds scored elsewhere (a benchmark's stored rounds) give P(best), rank intervals and the
    runner-up test by the same rules: shared first places, ties not counted as ahead."""
    from tlreg.advisor.confidence import from_rounds

    def one(a: float, b: float, c: float) -> dict[str, dict[str, float]]:
        return {"a": {"logme": a}, "b": {"logme": b}, "c": {"logme": c}, "raw": {"logme": 9.0}}

    rounds = [one(3, 2, 1), one(3, 2, 1), one(2, 3, 1), one(3, 3, 1)]
    conf = from_rounds(rounds, ["a", "b", "c"], ["logme"], ["a", "b", "c"])
    assert conf.rounds == 4 and conf.p_best == {"a": 2.5 / 4, "b": 1.5 / 4, "c": 0.0}
    assert conf.beats_runner_up == 0.5 and conf.separable is False  # the tied round is not "ahead"
    assert conf.rank_interval == {"a": (1, 2), "b": (1, 2), "c": (3, 3)}  # "raw" is kept, not ranked
    assert len(conf.round_scores) == 4 and "raw" in conf.round_scores[0]
    assert from_rounds([], ["a"], ["logme"], ["a"]).p_best == {}


def test_the_bootstrap_concludes_through_from_rounds() -> None:
    from tlreg.advisor.confidence import from_rounds

    feats, labels = separable(12, 3, scale=1.0, seed=6)
    noise = np.random.default_rng(9).normal(size=feats.shape)
    names, ranked = ["logme", "hscore_shrinkage"], ["a", "c"]
    conf = bootstrap(
        {"a": (feats, None), "c": (noise, None)}, labels, "classification", names, ranked, rounds=6, seed=1
    )
    again = from_rounds(conf.round_scores, ["a", "c"], names, ranked)
    assert (again.p_best, again.rank_interval, again.beats_runner_up) == (
        conf.p_best,
        conf.rank_interval,
        conf.beats_runner_up,
    )
