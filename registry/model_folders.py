"""A saved model folder — timm's ``save_for_hf`` or transformers' ``save_pretrained`` — read as a model.

Which library wrote it, the registry's fields for it, the checks of its weights against its
config.json (tensor shapes, mapped as transformers maps them, on the meta device: no weights
read), and the feature extractor built from local files only. Used by the ``hf``, ``local-dir:``
and bundled sources, and to reload fine-tuned models. timm folders are built by
:mod:`tlreg.registry.timm_models`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RemoteCodeError, UnsupportedModalityError, WeightsError
from .timm_models import timm_extractor, timm_fields
from .weights import count_params, loading, state_dict_shapes

if TYPE_CHECKING:  # torch, timm and transformers load with a model: the sources import this module at start
    from .feature_extractor import FeatureExtractor

# transformers 5.25 swaps layers for compiled kernels downloaded from the Hub by default: code from
# the Hub, which tlreg runs only with --trust-remote-code, and which refuses the meta device.
NO_HUB_KERNELS = {"use_kernels": False}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model", "vocab.json")
_NON_IMAGE_TEXT = {"audio": ("feature_extractor_type", "sampling_rate")}


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(str(path), f"cannot be read as JSON ({exc}).") from exc


def folder_library(folder: Path) -> str:
    """'timm' for a folder written by timm's save_for_hf, 'transformers' for save_pretrained."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise WeightsError(
            str(folder),
            "has no config.json: not a saved model folder.",
            hint="Save it with timm.models.save_for_hf or save_pretrained.",
        )
    cfg = read_json(cfg_path)
    if "architecture" in cfg and "model_type" not in cfg:
        return "timm"
    if "model_type" in cfg:
        return "transformers"
    raise WeightsError(str(cfg_path), "names no architecture (no 'architecture' or 'model_type').")


def transformers_modality(folder: Path, cfg: dict[str, Any]) -> str:
    """image or text, from the preprocessing files saved beside the weights."""
    if (folder / "preprocessor_config.json").is_file():
        pre = read_json(folder / "preprocessor_config.json")
        if "image_processor_type" in pre or "image_mean" in pre or "size" in pre:
            return "image"
        for modality, keys in _NON_IMAGE_TEXT.items():
            if any(k in pre for k in keys):
                raise UnsupportedModalityError(
                    f"{folder}: a {modality} model ({cfg.get('model_type')}); "
                    "tlreg ranks image and text models."
                )
    if any((folder / f).is_file() for f in _TOKENIZER_FILES):
        return "text"
    if "vision_config" in cfg or cfg.get("num_channels"):
        return "image"
    raise UnsupportedModalityError(
        f"{folder}: cannot tell the input of this {cfg.get('model_type')} model: no image processor and no "
        "tokenizer saved with it.",
        hint="Save the processor or tokenizer next to the weights.",
    )


def weight_files(folder: Path) -> list[Path]:
    """The folder's weights: safetensors when there are any, else PyTorch files."""
    found = (
        sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin")) or sorted(folder.glob("*.pth"))
    )
    return [p for p in found if not p.name.startswith("training_args")]


def folder_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of every weights file in the folder, without loading the weights."""
    shapes: dict[str, tuple[int, ...]] = {}
    for f in weight_files(folder):
        shapes.update(state_dict_shapes(f))
    return shapes


def meta_param_count(cfg_folder: Path, head: bool) -> int | None:
    """Parameters of the architecture in ``config.json``, instantiated on the meta device."""
    import torch
    import transformers as tf

    try:
        config = tf.AutoConfig.from_pretrained(str(cfg_folder), local_files_only=True)
        auto = tf.AutoModelForImageClassification if head else tf.AutoModel
        with torch.device("meta"):
            model = auto.from_config(config)
    except (ValueError, OSError, KeyError, ImportError):
        return None  # an architecture this transformers does not know (remote code): left unknown
    return sum(p.numel() for p in model.parameters())


def transformers_fit(
    folder: Path, head: bool
) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]] | None:
    """(what the files give each tensor of the model, the model's own shapes), as transformers maps
    the files' names onto the model's on the meta device (no weights read); None when it cannot
    map them (without accelerate, which it needs to load onto the meta device, or for an architecture
    it does not know): the caller then compares sizes, so a failed mapping never passes as a fit."""
    import transformers as tf

    if not tf.utils.is_accelerate_available():
        return None
    logging = tf.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()  # its load report goes to stderr; tlreg says what matters itself
    logging.disable_progress_bar()
    auto = tf.AutoModelForImageClassification if head else tf.AutoModel
    try:
        model, info = auto.from_pretrained(
            str(folder),
            device_map="meta",
            output_loading_info=True,
            ignore_mismatched_sizes=True,
            local_files_only=True,
            trust_remote_code=False,
            **NO_HUB_KERNELS,
        )
    except (ValueError, OSError, KeyError, ImportError):
        return None
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    given = {k: s for k, s in expected.items() if k not in info["missing_keys"]}
    given.update({k: tuple(ckpt) for k, ckpt, _ in info["mismatched_keys"]})
    return given, expected


def transformers_fields(folder: Path) -> dict[str, Any]:
    """ModelSpec fields for a transformers folder, without loading its weights."""
    cfg = read_json(folder / "config.json")
    modality = transformers_modality(folder, cfg)
    archs = cfg.get("architectures") or [cfg["model_type"]]
    head = archs[0].endswith("ForImageClassification") and modality == "image"
    labels = cfg.get("id2label") or {}
    shapes = folder_shapes(folder)
    feature_dim = cfg.get("hidden_size") or (cfg.get("hidden_sizes") or [None])[-1]
    if modality == "image" and head:
        cls_w = [s for k, s in shapes.items() if k.startswith("classifier") and k.endswith("weight")]
        feature_dim = cls_w[-1][-1] if cls_w else feature_dim
    if modality == "image":
        pre = read_json(folder / "preprocessor_config.json")
        preprocessing = {
            k: pre[k]
            for k in (
                "size",
                "crop_size",
                "crop_pct",
                "image_mean",
                "image_std",
                "resample",
                "image_processor_type",
            )
            if k in pre
        }
    else:
        tok = (
            read_json(folder / "tokenizer_config.json")
            if (folder / "tokenizer_config.json").is_file()
            else {}
        )
        preprocessing = {
            "tokenizer": tok.get("tokenizer_class"),
            "max_length": _max_length(folder, cfg, tok),
            **_pooling(folder),
        }
    return {
        "architecture": archs[0],
        "modality": modality,
        "task": "image-classification" if head else "feature-extraction",
        "num_classes": len(labels) if head and labels else None,
        "params": count_params(shapes) if shapes else meta_param_count(folder, head),
        "feature_dim": feature_dim,
        "preprocessing": preprocessing,
    }


def folder_fields(folder: Path) -> dict[str, Any]:
    """ModelSpec fields for a folder saved by timm's ``save_for_hf`` or transformers' ``save_pretrained``."""
    if folder_library(folder) == "timm":
        cfg = read_json(folder / "config.json")
        fields = timm_fields(
            cfg["architecture"],
            num_classes=cfg.get("num_classes"),
            pretrained_cfg=cfg.get("pretrained_cfg") or {},
        )
        return {**fields, "extra": {"library": "timm"}}
    return {**transformers_fields(folder), "extra": {"library": "transformers"}}


def folder_extractor(
    folder: Path,
    *,
    modality: str,
    pretrained: bool = True,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> FeatureExtractor:
    """Load a saved model folder (timm or transformers) from local files only."""
    if folder_library(folder) == "timm":
        if pretrained and not weight_files(folder):
            raise WeightsError(str(folder), "has no weights file (model.safetensors or pytorch_model.bin).")
        import timm

        with loading(folder):
            model = timm.create_model(f"local-dir:{folder}", pretrained=pretrained)
        return timm_extractor(model, revision=revision)
    return transformers_extractor(
        folder,
        modality=modality,
        pretrained=pretrained,
        revision=revision,
        trust_remote_code=trust_remote_code,
    )


def _max_length(folder: Path, cfg: dict[str, Any], tok: dict[str, Any]) -> int:
    st = folder / "sentence_bert_config.json"
    if st.is_file():
        return int(read_json(st).get("max_seq_length", 512))
    limit = tok.get("model_max_length")
    positions = cfg.get("max_position_embeddings", 512)
    return int(min(limit, positions)) if isinstance(limit, int) and limit < 10**6 else int(positions)


def _pooling(folder: Path) -> dict[str, Any]:
    """The sentence-transformers pooling of this folder (mean by default), and whether it normalises."""
    pool_cfg = folder / "1_Pooling" / "config.json"
    mode = "mean"
    if pool_cfg.is_file():
        pc = read_json(pool_cfg)
        mode = (
            "cls"
            if pc.get("pooling_mode_cls_token")
            else "max"
            if pc.get("pooling_mode_max_tokens")
            else "mean"
        )
    modules = read_json(folder / "modules.json") if (folder / "modules.json").is_file() else []
    normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    return {"pooling": mode, "normalize": normalize}


def transformers_extractor(
    folder: Path,
    *,
    modality: str,
    pretrained: bool = True,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> FeatureExtractor:
    """Load a transformers folder as a feature extractor (weights only from local files)."""
    import transformers as tf

    from .feature_extractor import HFImageExtractor, HFImageProcessor, HFTextExtractor, Tokenize

    tf.utils.logging.disable_progress_bar()  # tlreg shows its own progress, on stderr, when it is a terminal
    cfg = read_json(folder / "config.json")
    if cfg.get("auto_map") and not trust_remote_code:
        raise RemoteCodeError(
            f"{folder}: this model needs its own Python code (auto_map in config.json).",
            hint="Pass --trust-remote-code (trust_remote_code=True) only if you trust its authors.",
        )
    common = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    head = (cfg.get("architectures") or [""])[0].endswith("ForImageClassification") and modality == "image"
    auto = tf.AutoModelForImageClassification if head else tf.AutoModel
    if pretrained:
        with loading(folder):
            model = auto.from_pretrained(str(folder), **common, **NO_HUB_KERNELS)
    else:
        model = auto.from_config(
            tf.AutoConfig.from_pretrained(str(folder), **common), trust_remote_code=trust_remote_code
        )
    if pretrained and not weight_files(folder):
        raise WeightsError(str(folder), "has no weights file (*.safetensors or pytorch_model.bin).")
    fields = transformers_fields(folder)
    if modality == "image":
        processor = tf.AutoImageProcessor.from_pretrained(str(folder), **common)
        return HFImageExtractor(
            model,
            HFImageProcessor(processor),
            modality="image",
            feature_dim=int(fields["feature_dim"]),
            num_classes=fields["num_classes"],
            revision=revision,
        )
    tokenizer = tf.AutoTokenizer.from_pretrained(str(folder), **common)
    pre = fields["preprocessing"]
    return HFTextExtractor(
        model,
        Tokenize(tokenizer, max_length=pre["max_length"]),
        pooling=pre["pooling"],
        normalize=pre["normalize"],
        modality="text",
        feature_dim=int(fields["feature_dim"]),
        num_classes=None,
        revision=revision,
    )
