"""The fine-tuned model on disk: written atomically in the form its own library reloads, and read back.

Formats of ``OUT/model/`` (``tlreg_finetune.json`` in each says which, with the classes, the
starting model's ref and revision, the mode, epoch and validation accuracy):

- ``timm``: ``config.json`` + ``model.safetensors`` as ``timm.models.save_for_hf`` writes them, the new
  head in the model's own classifier and the class names as ``label_names``:
  ``timm.create_model("local-dir:OUT/model", pretrained=True)`` gives the fine-tuned classifier.
- ``transformers``: an image model whose ``classifier`` is a Linear on the features: ``config.json``
  (``id2label``) + ``model.safetensors`` + the image processor, as ``save_pretrained`` writes them;
  ``AutoModelForImageClassification.from_pretrained("OUT/model")`` reloads it.
- ``backbone+head``: models whose head cannot be expressed in their library's own config (text
  encoders with sentence-transformers pooling, image models without a Linear classifier): the
  backbone as its library saves it (plus tokenizer and ``1_Pooling/`` config, so ``tlreg registry
  add OUT/model`` and sentence-transformers read it) and the head in ``head.safetensors``.
- ``linear``: ``head.safetensors`` only; the backbone is the registered model named in the JSON.

:func:`load_finetuned` reads any of them back as a classifier.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import timm
import torch
from tlreg.registry import FeatureExtractor, Registry
from tlreg.registry.errors import WeightsError
from tlreg.registry.feature_extractor import HFImageProcessor, HFTextExtractor, Tokenize
from tlreg.registry.model_folders import folder_extractor, transformers_extractor
from tlreg.registry.timm_models import PREPROCESSING_KEYS, timm_extractor
from torch import nn

from .checkpoint import staged_dir, write_file, write_json
from .model import hf_head_slot, library

INFO_FILE = "tlreg_finetune.json"


class RevisionChangedWarning(UserWarning):
    """The registered backbone of a linear-mode head now has another revision than it was trained on."""


@dataclass
class ModelToSave:
    extractor: FeatureExtractor | None  # None in linear mode: the head was trained on cached features
    head: nn.Linear
    classes: list[str]
    mode: str
    base_ref: str
    base_revision: str | None
    preprocessing: dict[str, Any]
    modality: str


def _cpu_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies; tensors sharing storage (tied weights) get their own copy each."""
    seen: set[int] = set()
    out = {}
    for key, value in state.items():
        tensor = value.detach().cpu().contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if ptr in seen else tensor
        seen.add(ptr)
    return out


def _safetensors(path: Path, state: dict[str, torch.Tensor]) -> None:
    write_file(path, safetensors.torch.save(_cpu_tensors(state), metadata={"format": "pt"}))


def save_model(folder: Path, spec: ModelToSave, *, epoch: int, val_acc: float) -> str:
    """Write the model into ``folder`` (replacing what is there only once the new one is whole).
    Returns the format written."""
    info = {
        "classes": spec.classes,
        "mode": spec.mode,
        "base_ref": spec.base_ref,
        "base_revision": spec.base_revision,
        "library": library(spec.extractor) if spec.extractor is not None else None,
        "modality": spec.modality,
        "feature_dim": spec.head.in_features,
        "epoch": epoch,
        "val_acc": val_acc,
    }
    head_state = {"weight": spec.head.weight, "bias": spec.head.bias}
    with staged_dir(folder) as tmp, torch.random.fork_rng(devices=[]):  # building layers must not draw
        if spec.extractor is None:
            fmt = "linear"
        elif info["library"] == "timm":
            fmt = _save_timm(tmp, spec, spec.extractor)
        else:
            fmt = _save_transformers(tmp, spec, spec.extractor)
        if fmt in ("linear", "backbone+head"):
            _safetensors(tmp / "head.safetensors", head_state)
        write_json(tmp / INFO_FILE, {"format": fmt, **info})
    return fmt


def _save_timm(tmp: Path, spec: ModelToSave, extractor: FeatureExtractor) -> str:
    """timm's ``save_for_hf`` layout, the weights written by :func:`write_file` (see checkpoint.py)."""
    try:
        from timm.models._hub import save_config_for_hf  # the config half of the public save_for_hf
    except ImportError:  # a timm that moved it: its public save_for_hf writes both halves
        save_config_for_hf = None
    module, head, n = extractor.module, spec.head, len(spec.classes)
    overlay = {k: spec.preprocessing[k] for k in PREPROCESSING_KEYS if k in spec.preprocessing}
    module.reset_classifier(n)
    try:
        classifier = module.get_classifier()
        native = isinstance(classifier, nn.Linear) and tuple(classifier.weight.shape) == tuple(
            head.weight.shape
        )
        if native:
            with torch.no_grad():
                classifier.weight.copy_(head.weight.detach().cpu())
                classifier.bias.copy_(head.bias.detach().cpu())
        else:
            module.reset_classifier(0)
        model_config: dict[str, Any] = {"pretrained_cfg": overlay}
        if native:
            model_config["label_names"] = list(spec.classes)
        if save_config_for_hf is None:
            timm.models.save_for_hf(module, str(tmp), model_config=model_config, safe_serialization=True)
        else:
            _safetensors(tmp / "model.safetensors", module.state_dict())
            save_config_for_hf(module, str(tmp / "config.json"), model_config=model_config)
    finally:
        module.reset_classifier(0)
    return "timm" if native else "backbone+head"


def _save_transformers(tmp: Path, spec: ModelToSave, extractor: FeatureExtractor) -> str:
    head = spec.head
    module = extractor.module
    config = copy.deepcopy(module.config)
    config.architectures = [type(module).__name__]
    state = dict(module.state_dict())
    slot = hf_head_slot(extractor, head.in_features)
    if slot:
        state = {k: v for k, v in state.items() if not k.startswith(f"{slot}.")}
        state[f"{slot}.weight"], state[f"{slot}.bias"] = head.weight, head.bias
        config.num_labels = len(spec.classes)
        config.id2label = dict(enumerate(spec.classes))
        config.label2id = {c: i for i, c in enumerate(spec.classes)}
    _safetensors(tmp / "model.safetensors", state)
    write_file(tmp / "config.json", config.to_json_string().encode())
    pre = extractor.preprocessor
    if isinstance(pre, HFImageProcessor):
        pre.processor.save_pretrained(str(tmp))
    elif isinstance(pre, Tokenize):
        pre.tokenizer.save_pretrained(str(tmp))
        write_json(tmp / "sentence_bert_config.json", {"max_seq_length": pre.max_length})
    if isinstance(extractor, HFTextExtractor):
        write_json(tmp / "1_Pooling" / "config.json", pooling_config(extractor))
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if extractor.normalize:
            modules.append(
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                }
            )
        write_json(tmp / "modules.json", modules)
    return "transformers" if slot else "backbone+head"


def pooling_config(extractor: HFTextExtractor) -> dict[str, Any]:
    dim = int(extractor.feature_dim)
    return {
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": extractor.pooling == "cls",
        "pooling_mode_mean_tokens": extractor.pooling == "mean",
        "pooling_mode_max_tokens": extractor.pooling == "max",
    }


def read_head(path: Path) -> nn.Linear:
    tensors = safetensors.torch.load_file(str(path))
    weight, bias = tensors["weight"], tensors["bias"]
    head = nn.Linear(weight.shape[1], weight.shape[0])
    head.load_state_dict({"weight": weight, "bias": bias})
    return head.eval()


class FinetunedModel:
    """A fine-tuned classifier read back from ``OUT/model``: ``predict`` / ``predict_proba`` on raw items."""

    def __init__(self, extractor: FeatureExtractor, head: nn.Linear | None, info: dict[str, Any]) -> None:
        self.extractor, self.head, self.info = extractor, head, info
        self.classes: list[str] = list(info["classes"])

    def predict_proba(self, items: Sequence[Any], *, batch_size: int = 32) -> np.ndarray:
        """Class probabilities ``[N, n_classes]``, columns in the order of :attr:`classes`."""
        features, probs = self.extractor.embed(items, batch_size=batch_size)
        if self.head is None:
            if probs is None:
                raise WeightsError(str(self.info.get("path")), "has no classifier head to predict with.")
            return probs
        with torch.no_grad():
            logits = self.head(torch.from_numpy(np.asarray(features, dtype=np.float32)))
        return torch.softmax(logits, dim=-1).numpy()

    def predict(self, items: Sequence[Any], *, batch_size: int = 32) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(items, batch_size=batch_size).argmax(1)]


def load_finetuned(path: str | Path, *, registry: Registry | None = None) -> FinetunedModel:
    """Read a fine-tuned model written by ``tlreg finetune`` (``OUT`` or ``OUT/model``)."""
    folder = Path(path)
    if (folder / "model" / INFO_FILE).is_file():
        folder = folder / "model"
    info_path = folder / INFO_FILE
    if not info_path.is_file():
        raise WeightsError(str(folder), f"has no {INFO_FILE}: not a model written by tlreg finetune.")
    info = {**json.loads(info_path.read_text()), "path": str(folder)}
    fmt = info["format"]
    if fmt == "linear":
        extractor = (registry or Registry()).load(info["base_ref"])
        if info.get("base_revision") and extractor.revision != info["base_revision"]:
            warnings.warn(
                f"{info['base_ref']} is now at revision {extractor.revision}, but the head in {folder} was "
                f"trained on {info['base_revision']}; its predictions may be off.",
                RevisionChangedWarning,
                stacklevel=2,
            )
        return FinetunedModel(extractor, read_head(folder / "head.safetensors"), info)
    if fmt == "timm":
        model = timm.create_model(f"local-dir:{folder}", pretrained=True)
        return FinetunedModel(timm_extractor(model, revision=None), None, info)
    if fmt == "transformers":
        return FinetunedModel(transformers_extractor(folder, modality=info["modality"]), None, info)
    extractor = folder_extractor(folder, modality=info["modality"])
    return FinetunedModel(extractor, read_head(folder / "head.safetensors"), info)
