"""timm models without and with their weights: metadata on the meta device, and the extractor.

Metadata comes without weights: an architecture is instantiated on the meta device (no memory, no
download) to count its parameters, find its feature dimension and the tensor shapes a weights file
must have. Weights are loaded only by the sources, from files they have already resolved locally
and pinned; :func:`timm_extractor` wraps the built model with its eval transform. Shared by every
source that serves timm models (``timm``, ``local``, ``bundled``, timm folders of ``hf``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch and timm load when a model is built: the sources import this module at start
    import torch

    from .feature_extractor import FeatureExtractor

PREPROCESSING_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def timm_meta_model(arch: str, **kwargs: Any) -> torch.nn.Module:
    """The architecture on the meta device: shapes and counts, no memory, no weights."""
    import timm
    import torch

    with torch.device("meta"):
        return timm.create_model(arch, pretrained=False, **kwargs)


def timm_feature_dim(model: torch.nn.Module) -> int:
    """The width of ``forward_head(..., pre_logits=True)`` (differs from num_features for MobileNetV3)."""
    return int(getattr(model, "head_hidden_size", None) or model.num_features)


def timm_preprocessing(cfg: dict[str, Any]) -> dict[str, Any]:
    out = {k: cfg[k] for k in PREPROCESSING_KEYS if cfg.get(k) is not None}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def timm_fields(arch: str, *, num_classes: int | None, pretrained_cfg: dict[str, Any]) -> dict[str, Any]:
    """ModelSpec fields for a timm architecture with a given head, computed on the meta device."""
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    model = timm_meta_model(arch, **kwargs)
    nc = int(getattr(model, "num_classes", 0) or 0)
    cfg = {**model.pretrained_cfg, **{k: v for k, v in pretrained_cfg.items() if v is not None}}
    return {
        "architecture": arch,
        "modality": "image",
        "task": "image-classification" if nc else "feature-extraction",
        "num_classes": nc or None,
        "params": sum(p.numel() for p in model.parameters()),
        "feature_dim": timm_feature_dim(model),
        "preprocessing": timm_preprocessing(cfg),
        "license": cfg.get("license"),
    }


def timm_head_classes(arch: str, shapes: dict[str, tuple[int, ...]]) -> int | None:
    """Classes of the head stored in a state dict (its classifier weight's rows)."""
    classifier = timm_meta_model(arch).pretrained_cfg.get("classifier")
    names = classifier if isinstance(classifier, (list, tuple)) else [classifier]
    for name in names:
        shape = shapes.get(f"{name}.weight")
        if shape:
            return int(shape[0])
    return 0


def timm_expected_shapes(arch: str, num_classes: int | None) -> dict[str, tuple[int, ...]]:
    model = timm_meta_model(arch, num_classes=num_classes or 0)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def timm_extractor(
    model: torch.nn.Module, *, revision: str | None, preprocessing: dict[str, Any] | None = None
) -> FeatureExtractor:
    """Wrap a built timm model with the eval transform of its data config (or the stored one)."""
    from timm.data import create_transform, resolve_model_data_config

    from .feature_extractor import ImageTransform, TimmExtractor

    data_cfg = resolve_model_data_config(model)
    if preprocessing:
        data_cfg.update({k: tuple(v) if isinstance(v, list) else v for k, v in preprocessing.items()})
    transform = create_transform(**data_cfg, is_training=False)
    return TimmExtractor(
        model,
        ImageTransform(transform),
        modality="image",
        feature_dim=timm_feature_dim(model),
        num_classes=getattr(model, "num_classes", 0) or None,
        revision=revision,
    )
