"""The transfer plan: how to fine-tune the pick — a linear head, the last N blocks, or everything.

The plan is built from evidence measured on the user's sample, each piece checked against partial
and full fine-tunes on the Hub-like benchmark (``bench/transfer_plan.py``):

1. **Frozen features that lose to a baseline** (``frozen_features_beaten_by``): the pretrained
   features do not fit the target, so a head on them cannot be enough: ``full``.
2. **A saturated linear probe**: when the learning curve predicts a frozen-feature probe at
   :data:`LINEAR_ENOUGH` or more with all the labels, training the backbone has little left to gain:
   ``linear``.
3. **The depth profile**: when transferability peaks before the last block, the blocks after the
   peak are specialised to the source task; retrain them (``partial``, unfreezing the blocks after
   the peak, at least :data:`MIN_UNFREEZE`).
4. Otherwise ``full``: under a fixed budget, fine-tuning everything was the best or within the
   benchmark's noise of it on most (model, target) pairs.

A model whose block sequence cannot be found gets ``linear`` or ``full`` only, and the plan says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .depth import DepthProfile
from .learning_curve import LearningCurve

MODES = ("linear", "partial", "full")
#: A frozen-feature probe predicted at least this accurate with all the labels is "enough".
LINEAR_ENOUGH = 0.97
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
    linear_enough: float = LINEAR_ENOUGH,
    use_profile: bool = True,
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
        if predicted["expected"] >= linear_enough:
            return TransferPlan(
                "linear",
                None,
                f"a linear head on its frozen features is expected to reach {predicted['expected']:.2f} "
                f"({predicted['low']:.2f}-{predicted['high']:.2f}) with the {n_labelled} labels: train the "
                "head only",
                evidence,
            )
    if profile is None:
        return TransferPlan(
            "full",
            None,
            "no block sequence was found to unfreeze part of, and a linear head is not expected to be "
            "enough: fine-tune everything",
            evidence,
        )
    blocks = profile.n_blocks
    if use_profile and profile.after_peak >= 1:
        unfreeze = max(MIN_UNFREEZE, profile.after_peak)
        return TransferPlan(
            "partial",
            unfreeze,
            f"its features peak at block {profile.peak + 1} of {blocks}: the {unfreeze} block"
            f"{'s' if unfreeze > 1 else ''} after it are specialised to the source task; unfreeze them",
            evidence,
        )
    return TransferPlan(
        "full",
        None,
        f"its features keep improving to the last of its {blocks} blocks and a linear head is not expected "
        "to be enough: fine-tune everything",
        evidence,
    )
