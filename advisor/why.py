"""The "Why" of an answer: the sentences that explain the pick, the whole decision included.

A reader acts on this text, so it says what the scores cannot settle as plainly as what they can:
candidates tied for first (and the key of the tie rule that chose among them: the larger margin
over the estimators, the cheaper model, or the name; :func:`.rank.combine_and_order`), a pick that
is not separable from the runner-up under resampling, and a pick whose frozen features lose to a
baseline or that is flagged for negative transfer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .rank import MARGIN_TOLERANCE, Scores, deciding_key, level_with_pick, pooled
from .result import human_count

#: The tie rule, as the answer states it.
TIE_RULE = (
    "the larger margin (the estimators' mean z-score), then the cheaper model (fewer parameters), "
    "then the name"
)


@dataclass
class PickFacts:
    """What the Why needs beyond the scores: resampling and the pick's verdicts."""

    params: Mapping[str, float | None] = field(default_factory=dict)
    margins: Mapping[str, float] = field(default_factory=dict)  # the tie rule's first key
    tied: Sequence[str] = ()  # the refs sharing the best combined score, the pick first
    beats_runner_up: float | None = None  # share of resampling rounds the pick ranked above the runner-up
    rounds: int = 0
    separable: bool | None = None
    negative_transfer: bool = False
    frozen_features_beaten_by: Sequence[str] = ()


def _listing(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _lead(
    ranked: Sequence[str], scores: Scores, combined: Mapping[str, float], estimators: Sequence[str]
) -> str:
    values = pooled({r: scores[r] for r in ranked}, estimators)
    best = ranked[0]
    used = [e for e in estimators if math.isfinite(values[best][e])]
    if len(ranked) == 1:
        return f"{best} is the only candidate that could be scored ({', '.join(used)})."
    leads = [
        e for e in used if all(values[best][e] >= values[r][e] for r in ranked if math.isfinite(values[r][e]))
    ]
    lead_text = (
        f"it scores highest on {len(leads)} of {len(used)} estimators ({', '.join(leads)})"
        if leads
        else f"it has the best combined rank over {', '.join(used)} without leading any single one"
    )
    second = ranked[1]
    return (
        f"{best} ranks first: {lead_text}; combined {combined[best]:.2f} vs {combined[second]:.2f} "
        f"for {second}."
    )


#: How the answer names the key of the tie rule that decided (:func:`.rank.deciding_key`).
TIE_KEYS = {"margin": "the larger margin", "parameters": "the cheaper model", "name": "the name"}


def _tie(
    tied: Sequence[str],
    combined: Mapping[str, float],
    params: Mapping[str, float | None],
    margins: Mapping[str, float],
) -> str:
    """Which candidates share first place, and which key of the tie rule chose among them."""
    best, others = tied[0], tied[1:]
    head = f"{_listing(list(tied))} tie for first (combined {combined[best]:.2f}); {best} is picked by "
    key = deciding_key(tied, margins, params)
    if key == "margin":
        rest = ", ".join(f"{margins[r]:.2f}" for r in others)
        return head + (
            f"the larger margin: the estimators put it further ahead (mean z-score {margins[best]:.2f} "
            f"vs {rest})."
        )
    level = level_with_pick(tied, margins)
    behind = [r for r in tied if r not in level]
    behind_text = (
        f"; {_listing(behind)} fall{'s' if len(behind) == 1 else ''} behind on margin "
        f"({', '.join(f'{margins[r]:.2f}' for r in behind)} vs {margins[best]:.2f})"
        if behind
        else ""
    )
    if key == "parameters":
        rest = ", ".join(human_count(int(params[r] or 0)) for r in level[1:])
        within = f"margins within {MARGIN_TOLERANCE}" if margins else "no margins given"
        return head + (
            f"the cheaper model: {human_count(int(params[best] or 0))} parameters vs {rest} "
            f"({within}{behind_text})."
        )
    return head + f"name: the scores, margins and sizes do not tell them apart{behind_text}."


def explain(
    ranked: Sequence[str],
    scores: Scores,
    combined: Mapping[str, float],
    estimators: Sequence[str],
    facts: PickFacts | None = None,
) -> str:
    """Why ``ranked[0]`` is the pick, and what about it is uncertain or flagged (ETran / NCTI by their
    pool values)."""
    if not ranked:
        return "No candidate could be evaluated."
    facts = facts or PickFacts()
    best = ranked[0]
    tied = [r for r in facts.tied if r in ranked]
    parts = [
        _tie(tied, combined, facts.params, facts.margins)
        if len(tied) > 1
        else _lead(ranked, scores, combined, estimators)
    ]
    if len(tied) <= 1 and facts.separable is False and facts.beats_runner_up is not None and len(ranked) > 1:
        parts.append(
            f"It is not separable from {ranked[1]}: it ranks above it in only {facts.beats_runner_up:.0%} of "
            f"{facts.rounds} resamples, so either is a sound start."
        )
    if facts.negative_transfer:
        parts.append(
            f"Caution: fine-tuning {best} is not expected to beat training its architecture from scratch "
            "(negative transfer)."
        )
    elif facts.frozen_features_beaten_by:
        parts.append(
            f"Its frozen features lose to {_listing(list(facts.frozen_features_beaten_by))}: fine-tune the "
            "whole network rather than train a linear head on them."
        )
    return " ".join(parts)
