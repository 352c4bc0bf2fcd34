"""What fine-tuning trains: a backbone with a new linear head, frozen as the mode says.

The new head is ``nn.Linear(feature_dim, n_classes)`` on the penultimate features, the very
features the ranking scored (:meth:`FeatureExtractor.features`). ``linear`` trains the head alone
(on cached features, see :mod:`tlreg.advisor.handoff.finetune`), ``full`` trains everything, and
``partial`` trains the last N blocks and what comes after them.

**Which blocks** (:func:`find_blocks`): searching the module tree breadth-first from its root, the
first ``nn.Sequential``/``nn.ModuleList`` with at least two children named ``blocks``, ``stages``,
``layers``, ``layer`` or ``block`` (timm's ViT, EfficientNet, MobileNet ``blocks``, ConvNeXt
``stages``, Swin ``layers``; transformers' ``encoder.layer`` (BERT; ViT in transformers 4), ViT's
``layers`` (transformers 5), ``encoder.stages``, ``encoder.block`` (T5)); failing that, sibling
modules numbered ``layer1..layerK``, ``stage1..K`` or ``s1..sK`` (timm's ResNet, RegNet).
``--unfreeze N`` trains the last N of them plus every parameter registered after the sequence
(final norm, ``conv_head``, pooler); the stem, embeddings and earlier blocks are frozen and kept in
eval mode, so their BatchNorm statistics do not drift. A model with no such sequence is refused
with a message naming what was looked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from tlreg.registry.feature_extractor import FeatureExtractor, HFImageExtractor, TimmExtractor
from torch import nn

from ..errors import NoBlocksError

BLOCK_NAMES = ("blocks", "stages", "layers", "layer", "block")
NUMBERED = re.compile(r"^(layer|stage|s)(\d+)$")
HEAD_LR_SCALE = 10.0  # the new head starts from scratch; the backbone only needs nudging


def library(extractor: FeatureExtractor) -> str:
    return "timm" if isinstance(extractor, TimmExtractor) else "transformers"


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def find_blocks(module: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The model's main sequence of blocks as ``(qualified name, module)``, first to last (rule above)."""
    queue: list[tuple[str, nn.Module]] = [("", module)]
    while queue:
        prefix, parent = queue.pop(0)
        children = list(parent.named_children())
        for name, child in children:
            if name in BLOCK_NAMES and isinstance(child, nn.Sequential | nn.ModuleList) and len(child) >= 2:
                return [(_join(prefix, name, n), c) for n, c in child.named_children()]
        numbered: dict[str, list[tuple[int, str, nn.Module]]] = {}
        for name, child in children:
            if m := NUMBERED.match(name):
                numbered.setdefault(m.group(1), []).append((int(m.group(2)), name, child))
        for found in numbered.values():
            if len(found) >= 2:
                return [(_join(prefix, name), child) for _, name, child in sorted(found, key=lambda t: t[0])]
        queue.extend((_join(prefix, name), child) for name, child in children)
    return None


@dataclass
class Plan:
    """What a mode trains: names of the trainable backbone parameters, and what was decided."""

    mode: str
    trainable: list[str]
    frozen_params: int
    trainable_params: int
    blocks: list[str]
    unfrozen_blocks: list[str]


def plan(module: nn.Module, mode: str, *, unfreeze: int = 2, ref: str = "the model") -> Plan:
    """Choose the backbone parameters that ``mode`` trains (``linear``: none)."""
    named = list(module.named_parameters())
    total = sum(p.numel() for _, p in named)
    if mode == "linear":
        return Plan(mode, [], total, 0, [], [])
    if mode == "full":
        return Plan(mode, [n for n, _ in named], 0, total, [], [])
    blocks = find_blocks(module)
    if not blocks:
        raise NoBlocksError(
            f"{ref}: no block sequence found for --mode partial (looked for a sequence named "
            f"{'/'.join(BLOCK_NAMES)}, e.g. encoder.layer, or modules layer1..N / stage1..N / s1..N).",
            hint="Use --mode full (train everything) or --mode linear (the head alone).",
        )
    chosen = blocks[-unfreeze:]
    prefixes = tuple(f"{name}." for name, _ in chosen)
    block_prefixes = tuple(f"{name}." for name, _ in blocks)
    last_in_blocks = max(i for i, (n, _) in enumerate(named) if n.startswith(block_prefixes))
    trainable = [n for i, (n, _) in enumerate(named) if n.startswith(prefixes) or i > last_in_blocks]
    size = {n: p.numel() for n, p in named}
    n_train = sum(size[n] for n in trainable)
    return Plan(mode, trainable, total - n_train, n_train, [n for n, _ in blocks], [n for n, _ in chosen])


def frozen_entries(module: nn.Module, trainable: set[str], *, exclude: tuple[str, ...] = ()) -> list[str]:
    """The frozen parameters, compactly: ``name.`` for a module all of whose parameters are frozen,
    the parameter's own name otherwise. Exported scripts freeze by these (``exclude``: prefixes that
    are never frozen, e.g. the classifier a script replaces)."""
    found: list[str] = []

    def names(prefix: str, mod: nn.Module) -> list[str]:
        return [n for n in (_join(prefix, p) for p, _ in mod.named_parameters()) if not n.startswith(exclude)]

    def visit(prefix: str, mod: nn.Module) -> None:
        for name, _ in mod.named_parameters(recurse=False):
            full = _join(prefix, name)
            if full not in trainable and not full.startswith(exclude):
                found.append(full)
        for name, child in mod.named_children():
            full = _join(prefix, name)
            inside = names(full, child)
            if not inside:
                continue
            if not any(n in trainable for n in inside):
                found.append(f"{full}.")
            else:
                visit(full, child)

    visit("", module)
    return found


class Classifier(nn.Module):
    """Backbone features, then the new head: ``forward(batch) -> logits [B, n_classes]``."""

    def __init__(self, extractor: FeatureExtractor, head: nn.Linear, trainable: list[str]) -> None:
        super().__init__()
        self.backbone = extractor.module
        self.head = head
        self.extractor = extractor
        wanted = set(trainable)
        for name, param in self.backbone.named_parameters():
            param.requires_grad_(name in wanted)
        self.frozen = _frozen_subtrees(self.backbone)

    def forward(self, batch: object) -> torch.Tensor:
        return self.head(self.extractor.features(batch))

    def train(self, mode: bool = True) -> Classifier:
        """Frozen parts stay in eval mode: no BatchNorm statistics drift, no dropout where nothing learns."""
        super().train(mode)
        if mode:
            for module in self.frozen:
                module.eval()
        return self


def _frozen_subtrees(root: nn.Module) -> list[nn.Module]:
    """The topmost modules holding parameters or buffers none of which is trained."""
    found: list[nn.Module] = []

    def visit(module: nn.Module) -> None:
        params = list(module.parameters())
        has_state = bool(params) or any(True for _ in module.buffers())
        if has_state and not any(p.requires_grad for p in params):
            found.append(module)
            return
        for child in module.children():
            visit(child)

    visit(root)
    return found


def prepare_backbone(extractor: FeatureExtractor) -> None:
    """Drop what training never uses: a timm model's source classifier (its logits are not needed)."""
    if isinstance(extractor, TimmExtractor):
        extractor.module.reset_classifier(0)
        extractor.num_classes = None


def param_groups(model: nn.Module, *, lr: float, weight_decay: float, head_scale: float) -> list[dict]:
    """AdamW groups: no weight decay on biases and norm scales (1-D tensors); the head's lr scaled."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            is_head = name.startswith("head.")
            groups.setdefault((is_head, param.ndim > 1), []).append(param)
    return [
        {
            "params": params,
            "lr": lr * (head_scale if is_head else 1.0),
            "weight_decay": weight_decay if decays else 0.0,
        }
        for (is_head, decays), params in sorted(groups.items())
    ]


def new_head(feature_dim: int, n_classes: int, *, seed: int) -> nn.Linear:
    """The new classifier, initialised from the fine-tune's seed (so reruns start identically)."""
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(feature_dim, n_classes)
    with torch.no_grad():
        bound = 1.0 / feature_dim**0.5
        head.weight.uniform_(-bound, bound, generator=generator)
        head.bias.zero_()
    return head


def hf_head_slot(extractor: FeatureExtractor, feature_dim: int) -> str | None:
    """``classifier`` when a transformers image model's own head is a Linear on our features (so the
    saved model can carry the new head natively); None otherwise."""
    if not isinstance(extractor, HFImageExtractor):
        return None
    current = getattr(extractor.module, "classifier", None)
    if isinstance(current, nn.Linear) and current.in_features == feature_dim:
        return "classifier"
    return None
