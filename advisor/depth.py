"""The depth profile: how transferable each block's features are, from the first block to the last.

Which layers to fine-tune depends on where the features that fit the target live. If the pooled
output of an earlier block scores as well as the last one, the later blocks are specialised to the
source task and are the ones to retrain; if transferability keeps rising to the last block, the
frozen network already ends where the target needs it. The blocks are the model's main block
sequence (``handoff.model.find_blocks``: timm's ``blocks``/``stages``/``layers``, transformers'
``encoder.layer``, ResNet's ``layer1..4``), each block's output is average-pooled over its spatial
positions or tokens, and every pooled feature set is scored by the same estimators as the ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tlreg.registry.feature_extractor import FeatureExtractor

from .handoff.model import find_blocks
from .scoring import as_dict, score_features

#: The name of the model's own penultimate features in a profile, after its blocks.
PRE_LOGITS = "pre-logits"


def _pool(output: object) -> torch.Tensor:
    """A block's output as one vector per item: mean over spatial positions ([B, C, H, W]) or tokens
    ([B, T, C]); a tuple (transformers layers) contributes its first element."""
    if isinstance(output, tuple | list):
        output = output[0]
    x = output if isinstance(output, torch.Tensor) else torch.as_tensor(output)
    x = x.float()
    if x.dim() == 4:
        return x.mean(dim=(2, 3))
    if x.dim() == 3:
        return x.mean(dim=1)
    return x.flatten(1)


@torch.inference_mode()
def block_features(
    extractor: FeatureExtractor, items: Sequence[object], *, batch_size: int = 64, device: str = "cpu"
) -> tuple[list[str], list[np.ndarray]] | None:
    """The pooled output of every block of the model's block sequence, ``[N, C_b]`` per block, and
    the blocks' names; None when no block sequence is found."""
    blocks = find_blocks(extractor.module)
    if not blocks:
        return None
    captured: list[list[torch.Tensor]] = [[] for _ in blocks]
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, k=k: captured[k].append(_pool(out).cpu()))
        for k, (_, module) in enumerate(blocks)
    ]
    extractor.to(device)
    extractor.module.eval()
    pre = extractor.preprocessor
    try:
        for start in range(0, len(items), batch_size):
            batch = pre.collate([pre(item) for item in items[start : start + batch_size]])
            extractor.forward(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return [name for name, _ in blocks], [torch.cat(c).numpy() for c in captured]


@dataclass
class DepthProfile:
    """Each block's scores, and where transferability peaks."""

    blocks: list[str]
    scores: list[dict[str, float]] = field(default_factory=list)  # one {estimator: value} per block
    estimator: str = "logme"

    @property
    def values(self) -> list[float]:
        return [s.get(self.estimator, float("nan")) for s in self.scores]

    @property
    def peak(self) -> int:
        """The block (0-based) whose features score best on the profile's estimator."""
        values = np.array(self.values, dtype=float)
        return int(np.nanargmax(values)) if np.isfinite(values).any() else len(self.blocks) - 1

    @property
    def n_blocks(self) -> int:
        """Blocks of the sequence (the penultimate features, when profiled, are not one)."""
        return sum(name != PRE_LOGITS for name in self.blocks)

    @property
    def after_peak(self) -> int:
        """How many blocks of the sequence follow the peak (0 when it is the last block or the
        penultimate features)."""
        return sum(name != PRE_LOGITS for name in self.blocks[self.peak + 1 :])

    def to_dict(self) -> dict[str, object]:
        return {
            "blocks": self.blocks,
            "estimator": self.estimator,
            "scores": self.scores,
            "peak": self.peak,
            "peak_block": self.blocks[self.peak] if self.blocks else None,
            "after_peak": self.after_peak,
        }


def depth_profile(
    names: Sequence[str],
    features: Sequence[np.ndarray],
    labels: np.ndarray | None,
    task: str,
    *,
    estimators: Sequence[str] = ("logme",),
) -> DepthProfile:
    """Score every block's pooled features with ``estimators`` (the first one locates the peak)."""
    scores = [as_dict(score_features(f, None, labels, task, list(estimators))) for f in features]
    return DepthProfile(list(names), scores, estimators[0])
