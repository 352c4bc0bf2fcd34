"""The verdicts: a candidate against its baselines, with ties, ceilings and resampling rounds."""

from __future__ import annotations

import math

from tlreg.advisor.verdicts import DECISIVE, beaten_by, informative, loss_share, negative_transfer, vote

NAMES = ["logme", "hscore_shrinkage"]


def test_a_split_vote_is_a_tie_not_a_loss() -> None:
    # the demo digits' case: one estimator each way
    assert (
        vote({"logme": -0.08, "hscore_shrinkage": 8.4}, {"logme": -0.07, "hscore_shrinkage": 7.9}, NAMES)
        == "tie"
    )
    assert (
        vote({"logme": 1.0, "hscore_shrinkage": 3.0}, {"logme": 0.0, "hscore_shrinkage": 2.0}, NAMES) == "win"
    )
    assert (
        vote({"logme": 0.0, "hscore_shrinkage": 2.0}, {"logme": 1.0, "hscore_shrinkage": 3.0}, NAMES)
        == "loss"
    )
    assert vote({"logme": 1.0}, {"logme": 1.0}, ["logme"]) == "tie"  # equal values decide nothing


def test_weights_decide_a_split_vote() -> None:
    cand, base = {"logme": 1.0, "knn": 0.4}, {"logme": 0.0, "knn": 0.5}
    assert vote(cand, base, ["logme", "knn"], weights={"logme": 2.0}) == "win"
    assert vote(cand, base, ["logme", "knn"], weights={"knn": 2.0}) == "loss"


def test_a_score_at_its_ceiling_for_both_decides_nothing() -> None:
    # 10 classes: the shrinkage H-score cannot exceed C - 1 = 9; at 8.95 and 8.99 both sides are "perfect"
    at_ceiling = {"logme": 0.5, "hscore_shrinkage": 8.95}, {"logme": 0.2, "hscore_shrinkage": 8.99}
    assert not informative("hscore_shrinkage", 8.95, 8.99, 10)
    assert informative("hscore_shrinkage", 8.95, 7.0, 10)  # one side below the ceiling: it tells them apart
    assert informative("logme", 8.95, 8.99, 10)  # LogME has no ceiling
    assert vote(*at_ceiling, NAMES, n_classes=10) == "win"  # LogME alone decides
    # without knowing the classes the ceiling is unknown, and the vote splits
    assert vote(*at_ceiling, NAMES) == "tie"
    # nothing informative left: no verdict at all
    assert vote({"hscore_shrinkage": 8.95}, {"hscore_shrinkage": 8.99}, NAMES, n_classes=10) is None


def test_unscored_estimators_are_left_out_and_nothing_in_common_is_no_verdict() -> None:
    assert (
        vote({"logme": math.nan, "hscore_shrinkage": 1.0}, {"logme": 0.0, "hscore_shrinkage": 2.0}, NAMES)
        == "loss"
    )
    assert vote({"logme": math.nan}, {"logme": 0.0}, ["logme"]) is None
    assert vote({"knn": 1.0}, {"logme": 0.0}, ["logme", "knn"]) is None


def test_frozen_features_are_beaten_only_by_a_decisive_loss() -> None:
    scores = {
        "m": {"logme": 0.5, "hscore_shrinkage": 2.0},
        "random": {"logme": 0.6, "hscore_shrinkage": 2.5},  # beats m on both
        "raw": {"logme": 0.4, "hscore_shrinkage": 1.0},  # loses to m
    }
    assert beaten_by("m", scores, ["random", "raw"], NAMES) == ["random"]
    lost = {"m": scores["m"], "random": scores["random"]}
    won = {"m": {"logme": 0.7, "hscore_shrinkage": 3.0}, "random": scores["random"]}
    rounds_decisive = [lost] * 9 + [won]  # the random init wins 90 % of the rounds
    rounds_marginal = [lost] * 8 + [won] * 2  # 80 %: not decisive
    assert loss_share(rounds_decisive, "m", "random", NAMES) == DECISIVE
    assert beaten_by("m", scores, ["random"], NAMES, rounds=rounds_decisive) == ["random"]
    assert beaten_by("m", scores, ["random"], NAMES, rounds=rounds_marginal) == []
    assert beaten_by("m", scores, ["absent"], NAMES) == []


def test_negative_transfer_needs_every_informative_estimator_and_decisive_rounds() -> None:
    both = {"m": {"logme": 0.5, "hscore_shrinkage": 2.0}, "random": {"logme": 0.6, "hscore_shrinkage": 2.5}}
    split = {"m": {"logme": 0.5, "hscore_shrinkage": 3.0}, "random": {"logme": 0.6, "hscore_shrinkage": 2.5}}
    assert negative_transfer("m", "random", both, NAMES) is True
    assert negative_transfer("m", "random", split, NAMES) is False  # a split vote is a tie
    assert negative_transfer("m", None, both, NAMES) is None  # no random-init baseline: no verdict
    assert negative_transfer("m", "random", both, NAMES, rounds=[both] * 9 + [split]) is True
    assert negative_transfer("m", "random", both, NAMES, rounds=[both] * 5 + [split] * 5) is False
    # the ceiling case: both H-scores at C - 1 leave LogME alone, which says the candidate wins
    capped = {
        "m": {"logme": 0.7, "hscore_shrinkage": 8.9},
        "random": {"logme": 0.6, "hscore_shrinkage": 8.99},
    }
    assert negative_transfer("m", "random", capped, NAMES, n_classes=10) is False
    # regression: LogME alone, no ceiling involved
    assert (
        negative_transfer("m", "random", {"m": {"logme": 0.1}, "random": {"logme": 0.3}}, ["logme"]) is True
    )
