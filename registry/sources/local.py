"""Local weights: a timm architecture plus a weights file, or a saved model folder.

``file:/abs/w.safetensors#arch=resnet18`` is checked tensor by tensor against the architecture
before it is registered, so a corrupt or mismatched file is refused with its name. ``local-dir:``
takes a folder written by timm's ``save_for_hf`` or transformers' ``save_pretrained``, whose
weights are checked the same way against its config.json. The revision of a local model is the
sha256 of its weights, so a changed file is a new revision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import BadInputError, InvalidRefError, WeightsError
from ..model_folders import (
    folder_extractor,
    folder_fields,
    folder_shapes,
    meta_param_count,
    read_json,
    transformers_fit,
    weight_files,
)
from ..models import ModelBase, ModelSpec
from ..refs import Ref
from ..timm_models import (
    timm_expected_shapes,
    timm_extractor,
    timm_fields,
    timm_head_classes,
    timm_meta_model,
)
from ..weights import check_fits, count_params, loading, sha256, state_dict_shapes
from .base import Skip, Source, parse_ref

if TYPE_CHECKING:  # timm (and torch) load when a model is described or loaded, not with the source
    from ..feature_extractor import FeatureExtractor


def folder_revision(folder: Path) -> str:
    """One hash over the folder's weights files (their names and contents)."""
    files = weight_files(folder)
    if not files:
        raise WeightsError(str(folder), "has no weights file (*.safetensors, pytorch_model.bin or *.pth).")
    if len(files) == 1:
        return sha256(files[0])
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + sha256(f).encode())
    return digest.hexdigest()


_TIMM_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth")


def check_folder_weights(folder: Path, fields: dict[str, Any]) -> None:
    """Refuse a saved model folder whose weights are not the weights of the model in its config.json,
    before it is registered: they would otherwise be read for the first time at ``recommend``.
    Reads safetensors headers only and memory-maps PyTorch files (each read with weights_only)."""
    files = weight_files(folder)
    named = files[0] if len(files) == 1 else folder
    hint = "Check that the weights were saved from the model in config.json (save_for_hf, save_pretrained)."
    if fields["extra"]["library"] == "timm":
        # timm loads one file, by name first: a hub folder may also hold open_clip's weights.
        preferred = (folder / name for name in _TIMM_WEIGHTS)
        weights = next((f for f in preferred if f.is_file()), files[0])
        cfg = read_json(folder / "config.json")
        kwargs = dict(cfg.get("model_args") or {})  # as timm builds a local-dir model
        if cfg.get("num_classes") is not None:
            kwargs.setdefault("num_classes", cfg["num_classes"])
        model = timm_meta_model(cfg["architecture"], **kwargs)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        check_fits(weights, state_dict_shapes(weights), expected, arch=cfg["architecture"], hint=hint)
        return
    if read_json(folder / "config.json").get("auto_map"):
        return  # its architecture is its own code, which is not run to describe it
    head = fields["task"] == "image-classification"
    fit = transformers_fit(folder, head)
    if fit is not None:
        check_fits(named, *fit, arch=fields["architecture"], partial=True, hint=hint)
        return
    # Without the names mapped, sizes: renamed, fused or tied tensors keep the count of parameters.
    total, held = meta_param_count(folder, head), count_params(folder_shapes(folder))
    if total and not total / 2 <= held <= total * 2:
        raise WeightsError(
            str(named),
            f"does not fit architecture {fields['architecture']!r}: it holds {held:,} parameters, "
            f"the architecture in config.json has {total:,}.",
            hint=hint,
        )


class LocalSource(Source):
    name: ClassVar[str] = "local"
    schemes: ClassVar[tuple[str, ...]] = ("file", "local-dir")

    def parse(self, ref: Ref, text: str) -> Ref:
        """An absolute path; a weights file (``file:``) also needs its timm architecture (``#arch=``)."""
        if not ref.name:
            raise InvalidRefError(f"{text!r}: no path after '{ref.scheme}:'.")
        if ref.scheme == "file" and "arch" not in ref.options:
            raise InvalidRefError(
                f"{text!r}: a weights file needs its timm architecture.",
                hint="Write file:PATH#arch=resnet18, or pass --arch to `tlreg registry add`.",
            )
        return Ref(ref.scheme, str(Path(ref.name).expanduser().resolve()), None, ref.options)

    def list(
        self, *, filters: Sequence[str] = (), limit: int | None = None, sort: str | None = None
    ) -> Iterator[ModelSpec | Skip]:
        """Local files are added one by one; there is nothing to import in bulk."""
        raise BadInputError("Local models are added one by one: tlreg registry add PATH [--arch ARCH].")

    def describe(self, ref: Ref, **options: Any) -> ModelSpec:
        path = Path(ref.name)
        if ref.scheme == "local-dir":
            if not path.is_dir():
                raise BadInputError(f"{path}: no such folder.")
            fields = folder_fields(path)
            revision = folder_revision(path)
            check_folder_weights(path, fields)
            return ModelSpec(
                ref=str(ref),
                source=self.name,
                revision=revision,
                **fields,
                tags=["local", fields["extra"]["library"]],
            )
        import timm

        arch = ref.options["arch"]
        if not timm.is_model(arch):
            raise BadInputError(
                f"{arch!r} is not a timm architecture (for {path}).",
                hint="See timm.list_models() for the names, e.g. resnet18.",
            )
        if not path.is_file():
            raise WeightsError(str(path), "no such file.")
        shapes = state_dict_shapes(path)
        num_classes = timm_head_classes(arch, shapes)
        check_fits(path, shapes, timm_expected_shapes(arch, num_classes), arch=arch)
        fields = timm_fields(arch, num_classes=num_classes, pretrained_cfg={})
        return ModelSpec(
            ref=str(ref),
            source=self.name,
            revision=sha256(path),
            **fields,
            extra={"path": str(path), "library": "timm"},
            tags=["local", "timm"],
        )

    def current_revision(self, entry: ModelBase) -> str:
        """The hash of the weights as they are now: a local file can change after it was added."""
        ref = parse_ref(entry.ref)
        return folder_revision(Path(ref.name)) if ref.scheme == "local-dir" else sha256(Path(ref.name))

    def load(
        self, entry: ModelBase, *, pretrained: bool = True, trust_remote_code: bool = False
    ) -> FeatureExtractor:
        import timm

        ref = parse_ref(entry.ref)
        path = Path(ref.name)
        if ref.scheme == "local-dir":
            revision = folder_revision(path) if pretrained else None
            return folder_extractor(
                path,
                modality=entry.modality,
                pretrained=pretrained,
                revision=revision,
                trust_remote_code=trust_remote_code,
            )
        arch, nc = ref.options["arch"], entry.num_classes or 0
        if not pretrained:
            return timm_extractor(timm.create_model(arch, pretrained=False, num_classes=nc), revision=None)
        revision = sha256(path)
        with loading(path):
            model = timm.create_model(
                arch,
                pretrained=True,
                num_classes=nc,
                pretrained_cfg_overlay={"file": str(path), "num_classes": nc},
            )
        return timm_extractor(model, revision=revision)
