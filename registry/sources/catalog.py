"""The built-in catalog (``data/catalog.json``): well-known models registrable with no network.

timm entries are described by the timm source itself (timm's metadata is installed with it);
Hugging Face entries carry their metadata in the file. Either way the entry's ``source`` is the
one that will load it (timm or hf) and its ``origin`` is ``catalog``. Weights come on first use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, ClassVar

from .. import hub
from ..errors import OfflineError, TlregError, UnknownModelError
from ..models import ModelBase, ModelSpec
from ..refs import Ref
from .base import Skip, Source, get_source, parse_ref

if TYPE_CHECKING:
    from ..feature_extractor import FeatureExtractor


@cache
def catalog_entries() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(files("tlreg.data").joinpath("catalog.json").read_text())["models"])


def published_top1(ref: str) -> float | None:
    """The published ImageNet-1k top-1 (percent) the catalog holds for ``ref``, if any."""
    for item in catalog_entries():
        if item["ref"] == ref:
            return item.get("imagenet_top1")
    return None


class CatalogSource(Source):
    name: ClassVar[str] = "catalog"
    schemes: ClassVar[tuple[str, ...]] = ()

    def list(
        self, *, filters: Sequence[str] = (), limit: int | None = None, sort: str | None = None
    ) -> Iterator[ModelSpec | Skip]:
        chosen = [
            e for e in catalog_entries() if not filters or any(fnmatch(e["ref"], f"*{f}*") for f in filters)
        ]
        for item in chosen[:limit]:
            try:
                yield self.describe(parse_ref(item["ref"]))
            except TlregError as exc:
                yield Skip(item["ref"], str(exc))

    def describe(self, ref: Ref, **options: Any) -> ModelSpec:
        item = next((e for e in catalog_entries() if e["ref"] == str(ref)), None)
        if item is None:
            raise UnknownModelError(
                str(ref), known=[e["ref"] for e in catalog_entries()], what="in the catalog"
            )
        if ref.scheme == "timm":
            spec = get_source("timm").describe(ref)
            return spec.model_copy(update={"origin": "catalog"})
        fields = {k: v for k, v in item.items() if k in ModelSpec.model_fields and k != "ref"}
        repo = ref.name
        try:
            revision = hub.resolve_revision(repo)
        except OfflineError:
            revision = None  # pinned when the weights are first fetched
        note = {"top1_note": item["top1_note"]} if "top1_note" in item else {}
        return ModelSpec(
            ref=f"hf:{repo}", revision=revision, origin="catalog", extra={"repo": repo, **note}, **fields
        )

    def load(
        self, entry: ModelBase, *, pretrained: bool = True, trust_remote_code: bool = False
    ) -> FeatureExtractor:
        return get_source(entry.source).load(
            entry, pretrained=pretrained, trust_remote_code=trust_remote_code
        )

    def current_revision(self, entry: ModelBase) -> str | None:
        """As the source that loads the entry (timm or hf) says."""
        return get_source(entry.source).current_revision(entry)
