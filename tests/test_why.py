"""The Why: the sentences that explain the pick, ties, separability and flags included."""

from __future__ import annotations

from tlreg.advisor.why import TIE_RULE, PickFacts, explain

SCORES = {
    "pkg:a": {"logme": 1.0, "knn": 0.5},
    "pkg:b": {"logme": 0.5, "knn": 1.0},
    "pkg:c": {"logme": 0.1, "knn": 0.2},
}
COMBINED = {"pkg:a": 0.75, "pkg:b": 0.75, "pkg:c": 0.0}


def test_a_tie_names_the_tied_and_the_rule_that_broke_it() -> None:
    facts = PickFacts(params={"pkg:a": 4.7e6, "pkg:b": 5.4e6, "pkg:c": 6.1e6}, tied=["pkg:a", "pkg:b"])
    text = explain(["pkg:a", "pkg:b", "pkg:c"], SCORES, COMBINED, ["logme", "knn"], facts)
    assert text.startswith("pkg:a and pkg:b tie for first (combined 0.75); pkg:a is picked by the tie rule")
    assert TIE_RULE in text and "4.7M parameters vs 5.4M" in text
    assert "ranks first" not in text  # the old text claimed a win: "combined 0.75 vs 0.75"


def test_a_tie_of_equal_sizes_says_the_scores_do_not_tell_them_apart() -> None:
    facts = PickFacts(params={"pkg:a": 10, "pkg:b": 10}, tied=["pkg:a", "pkg:b"])
    text = explain(["pkg:a", "pkg:b"], SCORES, COMBINED, ["logme", "knn"], facts)
    assert "the scores do not tell them apart" in text


def test_an_inseparable_pick_is_said() -> None:
    combined = {"pkg:a": 1.0, "pkg:b": 0.5, "pkg:c": 0.0}
    facts = PickFacts(beats_runner_up=0.62, rounds=50, separable=False)
    text = explain(["pkg:a", "pkg:b", "pkg:c"], SCORES, combined, ["logme"], facts)
    assert text.startswith("pkg:a ranks first: it scores highest on 1 of 1 estimators (logme)")
    assert "not separable from pkg:b: it ranks above it in only 62% of 50 resamples" in text
    assert "not separable" not in explain(["pkg:a", "pkg:b"], SCORES, combined, ["logme"])


def test_a_flagged_pick_is_said() -> None:
    combined = {"pkg:a": 1.0, "pkg:b": 0.5, "pkg:c": 0.0}
    negative = explain(["pkg:a", "pkg:b"], SCORES, combined, ["logme"], PickFacts(negative_transfer=True))
    assert (
        "Caution: fine-tuning pkg:a is not expected to beat training its architecture from scratch"
        in negative
    )
    frozen = PickFacts(frozen_features_beaten_by=["raw pixels (16x16)"])
    text = explain(["pkg:a", "pkg:b"], SCORES, combined, ["logme"], frozen)
    assert "Its frozen features lose to raw pixels (16x16): fine-tune the whole network" in text


def test_one_candidate_and_none() -> None:
    assert explain(["pkg:a"], SCORES, COMBINED, ["logme", "knn"]).startswith("pkg:a is the only candidate")
    assert explain([], SCORES, COMBINED, ["logme"]) == "No candidate could be evaluated."
