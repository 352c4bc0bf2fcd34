"""What each mode trains on: the model, its parameter groups, and its batches.

``linear`` trains a bare head on the features the ranking cached (:func:`features_for`): after
the first extraction (or none at all, when ``recommend`` already embedded the same data) an epoch
costs no forward pass through the backbone. ``partial`` and ``full`` run the raw items through the
model's own preprocessor in DataLoader workers, with the backbone frozen as
:func:`tlreg.advisor.handoff.model.plan` decides.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tlreg.registry import FeatureExtractor, ModelRecord, Registry
from tlreg.registry.feature_extractor import Preprocessor
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from ..cache import FeatureCache
from ..embed import EmbedRequest, EmbedSettings, features_for
from .inputs import Data, Options
from .model import HEAD_LR_SCALE, Classifier, new_head, param_groups, plan, prepare_backbone

Batch = Any  # a tensor, or a dict of tensors (tokenised text)


class TensorBatches:
    """Cached features and labels in memory: batches are index slices, no forward pass, no workers."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def loader(self, batch_size: int, *, generator: torch.Generator | None) -> Iterator[tuple[Batch, Any]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield self.features[idx], self.labels[idx]


class _Labelled(TorchDataset):
    def __init__(self, items: Sequence[Any], labels: Sequence[int], preprocessor: Preprocessor) -> None:
        self.items, self.labels, self.preprocessor = items, labels, preprocessor

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.preprocessor(self.items[index]), int(self.labels[index])


class _Collate:
    def __init__(self, preprocessor: Preprocessor) -> None:
        self.preprocessor = preprocessor

    def __call__(self, pairs: Sequence[tuple[Any, int]]) -> tuple[Batch, torch.Tensor]:
        return self.preprocessor.collate([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])


class ItemBatches:
    """Raw items (image paths, texts) through the model's preprocessor, in DataLoader workers."""

    def __init__(
        self, items: Sequence[Any], labels: Sequence[int], preprocessor: Preprocessor, *, workers: int = 0
    ) -> None:
        self.dataset = _Labelled(items, labels, preprocessor)
        self.collate = _Collate(preprocessor)
        self.workers = workers

    def __len__(self) -> int:
        return len(self.dataset)

    def loader(self, batch_size: int, *, generator: torch.Generator | None) -> DataLoader:
        return DataLoader(
            self.dataset,
            batch_size=batch_size,
            shuffle=generator is not None,
            generator=generator,
            num_workers=self.workers,
            collate_fn=self.collate,
            pin_memory=torch.cuda.is_available(),
            multiprocessing_context="fork" if self.workers and os.name == "posix" else None,
        )


@dataclass
class Setup:
    """A mode made concrete: what to train, on what, and what it came from."""

    model: nn.Module
    head: nn.Linear
    extractor: FeatureExtractor | None  # None in linear mode: no model was needed
    revision: str | None
    groups: list[dict[str, Any]]
    train: TensorBatches | ItemBatches
    val: TensorBatches | ItemBatches
    trainable_params: int
    features_s: float | None = None


def build(
    registry: Registry,
    record: ModelRecord,
    data: Data,
    opts: Options,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    cache: FeatureCache,
    device: torch.device,
    workers: int,
    reporter: Any,
    trust_remote_code: bool = False,
) -> Setup:
    """The model, parameter groups and batches for ``opts.mode``."""
    labels = torch.as_tensor(np.asarray(data.dataset.labels), dtype=torch.long)
    n_classes = len(data.classes)
    if opts.mode == "linear":
        settings = EmbedSettings(
            batch_size=opts.batch_size, workers=workers, trust_remote_code=trust_remote_code
        )
        request = EmbedRequest(
            registry,
            data.dataset,
            data.fingerprint,
            cache=cache,
            device=device,
            settings=settings,
            reporter=reporter,
        )
        feats = features_for(request, record)
        x = torch.from_numpy(np.array(feats.features, dtype=np.float32))
        head = new_head(x.shape[1], n_classes, seed=opts.seed)
        return Setup(
            model=head,
            head=head,
            extractor=None,
            revision=feats.revision,
            groups=param_groups(head, lr=opts.lr, weight_decay=opts.weight_decay, head_scale=1.0),
            train=TensorBatches(x[train_idx], labels[train_idx]),
            val=TensorBatches(x[val_idx], labels[val_idx]),
            trainable_params=sum(p.numel() for p in head.parameters()),
            features_s=round(feats.seconds, 3),
        )
    extractor = registry.load(record.ref, trust_remote_code=trust_remote_code)
    prepare_backbone(extractor)
    chosen = plan(extractor.module, opts.mode, unfreeze=opts.unfreeze, ref=record.ref)
    if opts.mode == "partial" and opts.unfreeze > len(chosen.blocks):
        reporter.note(f"--unfreeze {opts.unfreeze}: the model has {len(chosen.blocks)} blocks; training all")
    head = new_head(extractor.feature_dim, n_classes, seed=opts.seed)
    extractor.to(device)
    model = Classifier(extractor, head, chosen.trainable)
    items, pre = data.dataset.items, extractor.preprocessor
    return Setup(
        model=model,
        head=head,
        extractor=extractor,
        revision=extractor.revision,
        groups=param_groups(model, lr=opts.lr, weight_decay=opts.weight_decay, head_scale=HEAD_LR_SCALE),
        train=ItemBatches([items[i] for i in train_idx], labels[train_idx], pre, workers=workers),
        val=ItemBatches([items[i] for i in val_idx], labels[val_idx], pre, workers=workers),
        trainable_params=chosen.trainable_params + sum(p.numel() for p in head.parameters()),
    )
