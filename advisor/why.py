"""The "Why" of an answer: the sentences that explain the pick, the whole decision included.

A reader acts on this text, so it says what the scores cannot settle as plainly as what they can:
candidates tied for first (and the rule that chose among them: the cheaper model, i.e. fewer
parameters, then the name), a pick that is not separable from the runner-up under resampling, and a
pick whose frozen features lose to a baseline or that is flagged for negative transfer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .rank import Scores, pooled
from .result import human_count
from .trials import Trial, too_close

#: The tie rule, as the answer states it.
TIE_RULE = "the cheaper model (fewer parameters, then the name)"


@dataclass
class PickFacts:
    """What the Why needs beyond the scores: resampling and the pick's verdicts."""

    params: Mapping[str, float | None] = field(default_factory=dict)
    tied: Sequence[str] = ()  # the refs sharing the best combined score, the pick first
    beats_runner_up: float | None = None  # share of resampling rounds the pick ranked above the runner-up
    rounds: int = 0
    separable: bool | None = None
    negative_transfer: bool = False
    frozen_features_beaten_by: Sequence[str] = ()
    #: short fine-tunes of the top candidates (``--trials``): when there are any, they decided the pick
    trials: Mapping[str, Trial] = field(default_factory=dict)
    order: Sequence[str] = ()  # the final ranking, the trials' order first
    tried: Sequence[str] = ()  # the candidates a trial was asked of (the top K), failed ones included


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


def _tie(tied: Sequence[str], combined: Mapping[str, float], params: Mapping[str, float | None]) -> str:
    best, others = tied[0], tied[1:]
    sizes = [params.get(r) for r in tied]
    head = (
        f"{_listing(list(tied))} tie for first (combined {combined[best]:.2f}); "
        f"{best} is picked by the tie rule, "
    )
    if all(s is not None for s in sizes) and len({s for s in sizes}) > 1:
        rest = ", ".join(human_count(int(params[r] or 0)) for r in others)
        return head + f"{TIE_RULE}: {human_count(int(params[best] or 0))} parameters vs {rest}."
    return head + f"{TIE_RULE}; the scores do not tell them apart."


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _by_trials(ranked: Sequence[str], facts: PickFacts) -> str:
    """The pick as the trials made it: its accuracy against the runner-up's, and where the estimators
    had put it."""
    trials, order = facts.trials, list(facts.order)
    best = order[0]
    t = trials[best]
    failed = [r for r in facts.tried if r not in trials]
    lead = (
        f"{best} is picked by short fine-tunes of the estimators' top {len(facts.tried) or len(trials)}"
        + (f" ({_listing(failed)} could not be fine-tuned)" if failed else "")
        + ": "
        f"{t.epochs} epoch{'s' if t.epochs > 1 else ''} on {t.train} items"
        + (f", each on {t.repeats} splits" if t.repeats > 1 else "")
        + f", {t.val_acc:.3f} {'mean ' if t.repeats > 1 else ''}validation accuracy ({t.correct}/{t.val})"
    )
    second = order[1] if len(order) > 1 and order[1] in trials else None
    if second is not None:
        u = trials[second]
        lead += f" against {u.val_acc:.3f} for {second}"
        if too_close(t, u):
            lead += (
                f"; the trials do not tell them apart (within one standard error), and the estimators "
                f"rank {best} higher too"
                if ranked.index(best) < ranked.index(second)
                else "; the trials do not tell them apart (within one standard error)"
            )
    place = ranked.index(best) + 1
    lead += "." if place == 1 else f". The estimators ranked it {_ordinal(place)} (their first: {ranked[0]})."
    if place == 1:
        lead += " It is also the estimators' first."
    return lead


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
    if facts.trials and facts.order and facts.order[0] in facts.trials:
        best = facts.order[0]
        parts = [_by_trials(ranked, facts)]
    else:
        best = ranked[0]
        parts = []
    tied = [r for r in facts.tied if r in ranked]
    if not parts and len(tied) > 1:
        parts.append(_tie(tied, combined, facts.params))
    elif not parts:
        parts.append(_lead(ranked, scores, combined, estimators))
    if (
        not facts.trials
        and len(tied) <= 1
        and facts.separable is False
        and facts.beats_runner_up is not None
        and len(ranked) > 1
    ):
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
