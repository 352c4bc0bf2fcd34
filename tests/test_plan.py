"""The transfer plan's rules, in order: a beaten frozen feature, a saturated probe, the depth profile."""

from __future__ import annotations

from tlreg.advisor.depth import PRE_LOGITS, DepthProfile
from tlreg.advisor.learning_curve import LearningCurve
from tlreg.advisor.plan import make_plan

BLOCKS = ["b0", "b1", "b2", "b3", "b4", "b5", "b6", PRE_LOGITS]


def profile(peak: int) -> DepthProfile:
    return DepthProfile(BLOCKS, [{"logme": 1.0 if i == peak else 0.0} for i in range(len(BLOCKS))])


def curve(level: float) -> LearningCurve:
    return LearningCurve(metric="accuracy", params={"a": level, "b": 0.0, "c": 1.0}, n_labelled=100)


def test_frozen_features_beaten_mean_full() -> None:
    plan = make_plan(
        profile=profile(3), curve=curve(0.99), frozen_beaten_by=["raw pixels (16x16)"], n_labelled=500
    )
    assert plan.mode == "full" and "raw pixels (16x16)" in plan.why


def test_a_saturated_probe_means_a_linear_head() -> None:
    plan = make_plan(profile=profile(3), curve=curve(0.99), frozen_beaten_by=[], n_labelled=500)
    assert plan.mode == "linear" and plan.unfreeze is None and "0.99" in plan.why


def test_a_peak_before_the_last_block_unfreezes_the_blocks_after_it() -> None:
    plan = make_plan(profile=profile(4), curve=curve(0.8), frozen_beaten_by=[], n_labelled=500)
    assert (plan.mode, plan.unfreeze) == ("partial", 2)
    assert "peak at block 5 of 7" in plan.why and "the 2 blocks after it" in plan.why


def test_features_that_keep_improving_mean_full() -> None:
    for peak in (6, 7):  # the last block, or the penultimate features
        plan = make_plan(profile=profile(peak), curve=curve(0.8), frozen_beaten_by=[], n_labelled=500)
        assert plan.mode == "full" and "keep improving" in plan.why


def test_no_block_sequence_plans_linear_or_full_only_and_says_so() -> None:
    plan = make_plan(profile=None, curve=curve(0.8), frozen_beaten_by=[], n_labelled=500)
    assert plan.mode == "full" and "no block sequence" in plan.why
    assert make_plan(profile=None, curve=curve(0.99), frozen_beaten_by=[], n_labelled=500).mode == "linear"
    assert make_plan(profile=None, curve=None, frozen_beaten_by=None, n_labelled=500).mode == "full"
