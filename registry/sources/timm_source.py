"""timm: every pretrained ``arch.tag`` that timm knows, described from its ``pretrained_cfg``.

Weights are timm's Hugging Face Hub repositories (``timm/arch.tag``); the pinned revision is that
repository's commit sha, resolved online or from the local cache, and left unset (pinned on first
load) when neither can tell it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .. import hub
from ..errors import OfflineError, TlregError, UnknownModelError
from ..models import ModelBase, ModelSpec
from ..refs import Ref
from ..timm_models import timm_extractor, timm_fields
from ..weights import loading
from .base import Skip, Source
from .catalog import published_top1

if TYPE_CHECKING:  # timm (and torch) load when a model is described or loaded, not with the source
    from ..feature_extractor import FeatureExtractor

# timm tag tokens that name a training dataset, in the words users search for.
DATASETS = {
    "in1k": "imagenet-1k",
    "in12k": "imagenet-12k",
    "in21k": "imagenet-21k",
    "in22k": "imagenet-22k",
    "laion2b": "laion-2b",
    "laion400m": "laion-400m",
    "openai": "openai-wit-400m",
    "webli": "webli",
    "datacomp1b": "datacomp-1b",
    "metaclip": "metaclip",
    "dfndr2b": "dfn-2b",
    "lvd142m": "lvd-142m",
    "lvd1689m": "lvd-1689m",
    "jft": "jft-300m",
    "ig1b": "instagram-1b",
    "yfcc100m": "yfcc-100m",
    "yfcc15m": "yfcc-15m",
    "swag": "instagram-swag",
}


def pretrain_dataset(tag: str) -> str | None:
    """'imagenet-22k -> imagenet-1k' for a tag like ``fb_in22k_ft_in1k``: pretraining then fine-tuning."""
    seen = [DATASETS[t] for t in re.split(r"[_.]", tag) if t in DATASETS]
    return " -> ".join(dict.fromkeys(seen)) or None


class TimmSource(Source):
    name: ClassVar[str] = "timm"
    schemes: ClassVar[tuple[str, ...]] = ("timm",)

    def list(
        self, *, filters: Sequence[str] = (), limit: int | None = None, sort: str | None = None
    ) -> Iterator[ModelSpec | Skip]:
        import timm

        names = sorted({n for f in (filters or ["*"]) for n in timm.list_pretrained(f)})
        for name in names[:limit]:
            try:
                yield self.describe(Ref("timm", name))
            except TlregError as exc:
                yield Skip(f"timm:{name}", str(exc))

    def describe(self, ref: Ref, **options: Any) -> ModelSpec:
        import timm
        from timm.models import get_pretrained_cfg, split_model_name_tag

        cfg = get_pretrained_cfg(ref.name)
        if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
            raise UnknownModelError(
                f"timm:{ref.name}", known=timm.list_pretrained(), what="a pretrained timm model"
            )
        arch, _ = split_model_name_tag(ref.name)
        name = f"{arch}.{cfg.tag}" if cfg.tag else arch
        revision = ref.revision
        if cfg.hf_hub_id and not revision:
            try:
                revision = hub.resolve_revision(cfg.hf_hub_id)
            except OfflineError:
                revision = None  # pinned when the weights are first fetched
        fields = timm_fields(arch, num_classes=cfg.num_classes, pretrained_cfg=cfg.to_dict())
        dataset = pretrain_dataset(cfg.tag or "")
        return ModelSpec(
            ref=f"timm:{name}",
            source=self.name,
            revision=revision,
            **fields,
            pretrain_dataset=dataset,
            imagenet_top1=published_top1(f"timm:{name}"),
            extra={"hf_hub_id": cfg.hf_hub_id, "url": cfg.url, "paper_ids": cfg.paper_ids},
            tags=["timm", *(t for t in re.split(r"[_.]", cfg.tag or "") if t in DATASETS)],
        )

    def load(
        self, entry: ModelBase, *, pretrained: bool = True, trust_remote_code: bool = False
    ) -> FeatureExtractor:
        import timm
        from timm.models import split_model_name_tag

        name = entry.ref.removeprefix("timm:")
        arch, _ = split_model_name_tag(name)
        if not pretrained:
            model = timm.create_model(arch, pretrained=False, num_classes=entry.num_classes or 0)
            return timm_extractor(model, revision=None, preprocessing=entry.preprocessing)
        repo = (entry.extra or {}).get("hf_hub_id")
        if repo:
            revision = entry.revision or hub.resolve_revision(repo)
            path = hub.download(repo, ["model.safetensors", "pytorch_model.bin"], revision=revision)
            with loading(path):
                model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)})
        else:
            if not hub.online():
                raise OfflineError(
                    f"timm:{name}: its weights come from a URL and {hub.offline_reason()}.",
                    hint="Connect once to fill torch's cache, then it works offline.",
                )
            revision = entry.revision
            model = timm.create_model(name, pretrained=True)
        return timm_extractor(model, revision=revision, preprocessing=entry.preprocessing)

    def current_revision(self, entry: ModelBase) -> str | None:
        """The pinned revision: a Hub commit sha, whose weights cannot change under it."""
        return entry.revision
