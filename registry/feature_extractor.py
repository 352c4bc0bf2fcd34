"""A loaded model as a feature extractor: raw inputs in, (features, source-class probabilities) out.

Work is split so that a torch DataLoader can run the expensive, CPU-bound part in worker
processes: :class:`Preprocessor` (picklable) turns one raw item into a tensor and a list of
those into a batch; :meth:`FeatureExtractor.forward` runs the model on a batch. Features are the
penultimate layer (what a new head would be trained on); probabilities are the source head's
softmax where the model has a classification head, else ``None`` (LEEP and NCE need them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from .images import ImageItem, open_image


class Preprocessor:
    """Turns raw items into a model's input batch; runs in DataLoader workers, so it must pickle."""

    def __call__(self, item: Any) -> Any:
        return item

    def collate(self, items: Sequence[Any]) -> Any:
        raise NotImplementedError


class ImageTransform(Preprocessor):
    """A torchvision-style transform (timm's ``create_transform``) applied to each image."""

    def __init__(self, transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.transform = transform

    def __call__(self, item: ImageItem) -> torch.Tensor:
        return self.transform(open_image(item))

    def collate(self, items: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.stack(list(items))


class HFImageProcessor(Preprocessor):
    """A Hugging Face image processor applied to each image."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, item: ImageItem) -> torch.Tensor:
        return self.processor(images=open_image(item), return_tensors="pt")["pixel_values"][0]

    def collate(self, items: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.stack(list(items))


class Tokenize(Preprocessor):
    """Texts pass through the workers untouched; the tokenizer pads each batch to its longest text."""

    def __init__(self, tokenizer: Any, *, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, item: str) -> str:
        return str(item)

    def collate(self, items: Sequence[str]) -> dict[str, torch.Tensor]:
        return dict(
            self.tokenizer(
                list(items), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
        )


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, dict):
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    return batch.to(device, non_blocking=True)


def _channels_last(batch: Any) -> Any:
    """An image batch in the channels-last memory layout; anything else as it is.

    oneDNN's CPU convolutions prefer it, and a convolution given a channels-last input runs in that
    layout: a convolutional net embeds 1.4-1.7x faster (``python bench/recommend.py throughput``)
    and trains 1.4x faster (``python bench/layout.py``), the same arithmetic up to float rounding
    (features within 1e-5). The weights are left as they are (a fine-tune or an export saves them
    with safetensors, which takes contiguous tensors only). Only for extractors that declare
    :attr:`FeatureExtractor.channels_last` (timm's models support the layout throughout; a
    transformers model may ``view`` a feature map, which that layout refuses)."""
    if isinstance(batch, torch.Tensor) and batch.dim() == 4:
        return batch.contiguous(memory_format=torch.channels_last)
    return batch


class FeatureExtractor:
    """A model ready to embed: ``preprocessor`` for the workers, :meth:`forward` for the batches."""

    #: image batches go to the model in the channels-last layout (:func:`_channels_last`)
    channels_last: bool = False

    def __init__(
        self,
        module: nn.Module,
        preprocessor: Preprocessor,
        *,
        modality: str,
        feature_dim: int,
        num_classes: int | None,
        revision: str | None = None,
    ) -> None:
        self.module = module.eval()
        self.preprocessor = preprocessor
        self.modality = modality
        self.feature_dim = feature_dim
        self.num_classes = num_classes or None
        self.revision = revision
        self.device = torch.device("cpu")

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def to(self, device: str | torch.device) -> FeatureExtractor:
        self.device = torch.device(device)
        self.module.to(self.device)
        return self

    def _ready(self, batch: Any) -> Any:
        """The batch on the model's device, in the layout the model runs fastest in."""
        batch = _to_device(batch, self.device)
        return _channels_last(batch) if self.channels_last else batch

    def _features_and_logits(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    @torch.inference_mode()
    def forward(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(features ``[B, D]``, probabilities ``[B, K]`` or ``None``), float32 on the model's device;
        timm's images run in the channels-last layout (:func:`_channels_last`)."""
        feats, logits = self._features_and_logits(self._ready(batch))
        probs = None if logits is None else torch.softmax(logits.float(), dim=-1)
        return feats.float(), probs

    def features(self, batch: Any) -> torch.Tensor:
        """Penultimate features ``[B, D]`` with autograd on (no ``inference_mode``): what fine-tuning
        trains a new head on, and back-propagates through when the backbone is unfrozen (the layout
        of :meth:`forward`: the backward pass gains as much)."""
        feats, _ = self._features_and_logits(self._ready(batch))
        return feats

    def embed(self, items: Sequence[Any], *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray | None]:
        """Embed a small list in-process (no DataLoader); for tests, notebooks and one-offs."""
        feats, probs = [], []
        for start in range(0, len(items), batch_size):
            chunk = [self.preprocessor(x) for x in items[start : start + batch_size]]
            f, p = self.forward(self.preprocessor.collate(chunk))
            feats.append(f.cpu().numpy())
            if p is not None:
                probs.append(p.cpu().numpy())
        features = np.concatenate(feats) if feats else np.zeros((0, self.feature_dim), np.float32)
        return features, (np.concatenate(probs) if probs else None)


class TimmExtractor(FeatureExtractor):
    """timm models: ``forward_features``, then the head with and without ``pre_logits``."""

    channels_last = True

    def _features_and_logits(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        spatial = self.module.forward_features(batch)
        feats = self.module.forward_head(spatial, pre_logits=True)
        logits = self.module.forward_head(spatial) if self.num_classes else None
        return feats, logits


class HFImageExtractor(FeatureExtractor):
    """transformers vision models. With a classification head, the features are the head's input
    (captured by a forward pre-hook, so each architecture's own pooling is used); without one,
    the CLS token of a token sequence or the spatial mean of a feature map. ``pooler_output`` is
    avoided: for ViT-like models it is an extra dense layer, untrained in many checkpoints.
    """

    def __init__(self, module: nn.Module, preprocessor: Preprocessor, **kwargs: Any) -> None:
        super().__init__(module, preprocessor, **kwargs)
        self._captured: torch.Tensor | None = None
        self._head = getattr(module, "classifier", None) if self.num_classes else None
        if self._head is not None:
            self._head.register_forward_pre_hook(self._capture)

    def _capture(self, _module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self._captured = args[0]

    def _features_and_logits(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._head is not None:
            logits = self.module(pixel_values=batch).logits
            feats, self._captured = self._captured, None
            return feats.flatten(1), logits
        hidden = self.module(pixel_values=batch).last_hidden_state
        feats = hidden[:, 0] if hidden.dim() == 3 else hidden.flatten(2).mean(-1)
        return feats, None


class HFTextExtractor(FeatureExtractor):
    """transformers text encoders with sentence-transformers pooling (mean over the attention mask
    by default, as all-MiniLM-L6-v2's ``1_Pooling/config.json`` says), optionally L2-normalised.
    """

    def __init__(
        self,
        module: nn.Module,
        preprocessor: Preprocessor,
        *,
        pooling: str = "mean",
        normalize: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(module, preprocessor, **kwargs)
        self.pooling = pooling
        self.normalize = normalize

    def _features_and_logits(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden = self.module(**batch).last_hidden_state
        if self.pooling == "cls":
            feats = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            if self.pooling == "max":
                feats = hidden.masked_fill(mask == 0, float("-inf")).amax(1)
            else:
                feats = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.normalize:
            feats = torch.nn.functional.normalize(feats, dim=-1)
        return feats, None
