"""The transfer plan: how to fine-tune the pick — a linear head, the last N blocks, or everything.

The plan is built from evidence measured on the user's sample, each rule checked against linear
probes, partial fine-tunes (last 1, 2 and half of the blocks) and full fine-tunes of each target's
top 5 on the Hub-like benchmark (``bench/transfer_plan.py``, 40 (model, target) pairs):

1. **Frozen features that lose to a baseline** (``frozen_features_beaten_by``): the pretrained
   features do not fit the target, so a head on them cannot be enough: ``full``.
2. **A saturated linear probe**: when the learning curve predicts a frozen-feature probe at
   ``linear_enough`` or more with the labels at hand: ``linear``. The threshold is chosen on the
   benchmark leave-one-target-out among 0.95–0.995 and "never"; under its budgets "never" wins
   (:data:`LINEAR_ENOUGH` is None): even where the probe reached 0.99, the full fine-tune was
   0.2–1.0 points better, and always-full lost 0.07 points to the best mode in hindsight.
3. **The depth profile** (``use_profile``): when transferability peaks before the last block,
   unfreeze the blocks after the peak (``partial``). Measured, it cost 5.5 points on average
   against full, so it is off by default.
4. Otherwise ``full``: fine-tuning everything was the best mode (36 of 40 pairs), or within
   :data:`FULL_WITHIN_PP` points of it, on every pair of the benchmark.

So on today's evidence the plan is ``full`` with the reasons and the numbers that back it, and the
learning curve says what a linear head would reach and what more labels would bring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from .learning_curve import LearningCurve, learning_curve

if TYPE_CHECKING:  # the profile needs torch to measure; a plan only reads it (a cached run loads no torch)
    from .depth import DepthProfile

MODES = ("linear", "partial", "full")
#: A frozen-feature probe predicted at least this accurate with all the labels is "enough" (None:
#: never; the benchmark's leave-one-target-out choice, see the module doc).
LINEAR_ENOUGH: float | None = None
#: A linear probe predicted at least this accurate: the plan says what a linear head would cost
#: (on the benchmark's pairs above it, full fine-tuning was CHEAP_LINEAR_COST_PP points better).
CHEAP_LINEAR = 0.98
#: What the Hub-like benchmark's transfer-plan truth (``data/bench/transfer_plan.json``) says, quoted in
#: the plan's reason; ``tests/test_transfer_plan.py`` checks each against the committed document.
FULL_WITHIN_PP = 1.2  # the most a full fine-tune lost to the best mode in hindsight, on any pair
LINEAR_BEHIND_PP = 15  # a linear head's mean loss to the best mode, rounded
CHEAP_LINEAR_COST_PP = (0.2, 1.4)  # full's lead over the probe where the probe reached CHEAP_LINEAR
#: The fewest blocks a partial plan unfreezes.
MIN_UNFREEZE = 1


@dataclass
class TransferPlan:
    mode: str
    unfreeze: int | None
    why: str
    evidence: dict[str, object]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def make_plan(
    *,
    profile: DepthProfile | None,
    curve: LearningCurve | None,
    frozen_beaten_by: list[str] | None,
    n_labelled: int,
    linear_enough: float | None = LINEAR_ENOUGH,
    use_profile: bool = False,
) -> TransferPlan:
    """The plan for one candidate (see the module doc for the rules, in order)."""
    evidence: dict[str, object] = {
        "frozen_features_beaten_by": list(frozen_beaten_by or []),
        "labelled": n_labelled,
        "profile": profile.to_dict() if profile else None,
        "linear_probe_with_all_labels": None,
    }
    if frozen_beaten_by:
        return TransferPlan(
            "full",
            None,
            f"its frozen features lose to {' and '.join(frozen_beaten_by)}, so a head on them cannot be "
            "enough: fine-tune everything",
            evidence,
        )
    predicted = curve.predict(n_labelled) if curve is not None and curve.usable else None
    if predicted is not None:
        evidence["linear_probe_with_all_labels"] = predicted
        if linear_enough is not None and predicted["expected"] >= linear_enough:
            return TransferPlan(
                "linear",
                None,
                f"a linear head on its frozen features is expected to reach {predicted['expected']:.2f} "
                f"({predicted['low']:.2f}-{predicted['high']:.2f}) with the {n_labelled} labels: train the "
                "head only",
                evidence,
            )
    if use_profile and profile is not None and profile.after_peak >= 1:
        unfreeze = max(MIN_UNFREEZE, profile.after_peak)
        return TransferPlan(
            "partial",
            unfreeze,
            f"its features peak at block {profile.peak + 1} of {profile.n_blocks}: the {unfreeze} block"
            f"{'s' if unfreeze > 1 else ''} after it are specialised to the source task; unfreeze them",
            evidence,
        )
    head = ""
    if predicted is not None:
        head = (
            f"; here a linear head on its frozen features is expected to reach {predicted['expected']:.2f} "
            f"({predicted['low']:.2f}-{predicted['high']:.2f}) with these {n_labelled} labels"
        )
        if predicted["expected"] >= CHEAP_LINEAR:
            head += (
                f", so --mode linear would cost about a point ({CHEAP_LINEAR_COST_PP[0]}-"
                f"{CHEAP_LINEAR_COST_PP[1]} on the benchmark's pairs whose probe reached {CHEAP_LINEAR}) "
                "for a fraction of the compute"
            )
    return TransferPlan(
        "full",
        None,
        f"on the Hub-like benchmark, fine-tuning everything was within {FULL_WITHIN_PP} points of the best "
        f"mode on every (model, target) pair and a linear head {LINEAR_BEHIND_PP} points behind on "
        f"average{head}",
        evidence,
    )


def plan_for(
    features: np.ndarray,
    labels: np.ndarray | None,
    task: str,
    *,
    frozen_beaten_by: list[str] | None,
    seed: int = 0,
) -> tuple[TransferPlan | None, LearningCurve]:
    """The plan and learning curve of one candidate from its cached features on the sample (no
    forward pass). No plan without labels to fine-tune on."""
    curve = learning_curve(features, labels, task, seed=seed)
    if labels is None or task == "unlabelled":
        return None, curve
    plan = make_plan(profile=None, curve=curve, frozen_beaten_by=frozen_beaten_by, n_labelled=len(features))
    return plan, curve
