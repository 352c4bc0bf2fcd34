"""The Hugging Face Hub: ``hf:org/name[@revision]``, pinned to the commit sha it resolves to.

Describing a model fetches only its small files (config, processor, tokenizer); weights come
when it is loaded. Offline (``HF_HUB_OFFLINE`` or an unreachable Hub) everything works from the
local Hugging Face cache, and a listing registers what that cache holds, saying what it skipped.
Repositories written by timm (``library: timm``) load through timm, the others through
transformers; no remote code runs unless the caller passes ``trust_remote_code=True``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .. import config, hub
from ..errors import InvalidRefError, TlregError
from ..model_folders import folder_extractor, folder_fields, weight_files
from ..models import ModelBase, ModelSpec
from ..refs import Ref
from .base import Skip, Source
from .catalog import published_top1

if TYPE_CHECKING:  # huggingface_hub, and torch with a model, load when used, not with the source
    from ..feature_extractor import FeatureExtractor

METADATA_FILES = ["*.json", "*.txt", "*.model", "*.md", "1_Pooling/*"]
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _card_license(folder: Path) -> str | None:
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    front = readme.read_text(errors="replace").split("---")
    match = re.search(r"^license:\s*(\S+)", front[1] if len(front) > 2 else "", re.MULTILINE)
    return match.group(1) if match else None


class HfSource(Source):
    name: ClassVar[str] = "hf"
    schemes: ClassVar[tuple[str, ...]] = ("hf",)

    def parse(self, ref: Ref, text: str) -> Ref:
        """``hf:ORG/NAME[@REVISION]``: the repository, and the revision (a branch, tag or sha) if given."""
        repo, _, revision = ref.name.partition("@")
        if not _REPO.match(repo):
            raise InvalidRefError(f"{text!r}: a Hugging Face ref is hf:ORG/NAME[@REVISION].")
        return Ref(ref.scheme, repo, revision or None, ref.options)

    def current_revision(self, entry: ModelBase) -> str | None:
        """The pinned revision: a commit sha, whose files cannot change under it."""
        return entry.revision

    def describe(self, ref: Ref, **options: Any) -> ModelSpec:
        repo = ref.name
        sha = hub.resolve_revision(repo, ref.revision)
        folder = hub.snapshot(repo, revision=sha, allow_patterns=METADATA_FILES)
        fields = folder_fields(folder)
        extra = {**fields.pop("extra"), "repo": repo}
        license_, tags = _card_license(folder) or fields.pop("license", None), [extra["library"]]
        fields.pop("license", None)
        if hub.online():
            from huggingface_hub import HfApi

            info = HfApi().model_info(repo, revision=sha)
            license_ = (info.card_data or {}).get("license") if info.card_data else license_
            tags += [t for t in (info.tags or []) if ":" not in t][:12]
            if info.safetensors and info.safetensors.total:
                fields["params"] = info.safetensors.total
            if info.pipeline_tag:
                extra["pipeline_tag"] = info.pipeline_tag
        return ModelSpec(
            ref=f"hf:{repo}",
            source=self.name,
            revision=sha,
            license=license_,
            extra=extra,
            imagenet_top1=published_top1(f"hf:{repo}"),
            tags=sorted(set(tags)),
            **fields,
        )

    def load(
        self, entry: ModelBase, *, pretrained: bool = True, trust_remote_code: bool = False
    ) -> FeatureExtractor:
        repo = entry.ref.removeprefix("hf:")
        revision = entry.revision or hub.resolve_revision(repo)
        folder = hub.snapshot(repo, revision=revision, allow_patterns=[*METADATA_FILES, "*.safetensors"])
        if pretrained and not weight_files(folder):  # no safetensors in this repository: PyTorch files
            folder = hub.snapshot(repo, revision=revision, allow_patterns=[*METADATA_FILES, "*.bin", "*.pth"])
        return folder_extractor(
            folder,
            modality=entry.modality,
            pretrained=pretrained,
            revision=revision,
            trust_remote_code=trust_remote_code,
        )

    def list(
        self, *, filters: Sequence[str] = (), limit: int | None = None, sort: str | None = None
    ) -> Iterator[ModelSpec | Skip]:
        if hub.online():
            from huggingface_hub import HfApi

            for info in HfApi().list_models(filter=list(filters) or None, sort=sort, limit=limit):
                yield from self._describe_or_skip(Ref("hf", info.id))
            return
        yield from self._list_cache(filters, limit)

    def _describe_or_skip(self, ref: Ref) -> Iterator[ModelSpec | Skip]:
        try:
            yield self.describe(ref)
        except TlregError as exc:
            yield Skip(str(ref), str(exc))

    def _list_cache(self, filters: Sequence[str], limit: int | None) -> Iterator[ModelSpec | Skip]:
        """Offline: the models in the local cache that match every filter (library, task, modality
        or a glob on the repository id), each at the revision ``main`` points to."""
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound

        try:
            repos = [r for r in scan_cache_dir(config.hf_cache_dir()).repos if r.repo_type == "model"]
        except CacheNotFound:
            return
        count = 0
        for repo in sorted(repos, key=lambda r: r.repo_id):
            if limit is not None and count >= limit:
                return
            revisions = sorted(repo.revisions, key=lambda r: ("main" not in r.refs, -r.last_modified))
            if not revisions:
                yield Skip(f"hf:{repo.repo_id}", "no revision in the local cache.")
                continue
            for item in self._describe_or_skip(Ref("hf", repo.repo_id, revisions[0].commit_hash)):
                if isinstance(item, ModelSpec) and not _matches(item, filters):
                    continue
                count += isinstance(item, ModelSpec)
                yield item


def _matches(spec: ModelSpec, filters: Sequence[str]) -> bool:
    words = {spec.modality, spec.task or "", *spec.tags, spec.extra.get("library", "")}
    if spec.task == "image-classification":
        words.add("image-classification")
    return all(f in words or fnmatch(spec.ref.removeprefix("hf:"), f) for f in filters)
