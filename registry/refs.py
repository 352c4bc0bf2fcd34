"""Model references: one string names a model everywhere.

``timm:resnet50.a1_in1k``, ``hf:org/name[@revision]``, ``file:/abs/w.safetensors#arch=resnet18``,
``local-dir:/abs/folder`` and ``pkg:efficientnet_lite0``, or any scheme an installed source plugin
reads. A registry entry is keyed by the ref without its revision; the revision it is pinned to (a
commit sha, a content hash) is stored beside it, so a model whose revision moves stays one entry
with a "revision" event in its history.

Only the syntax every ref shares is here (``scheme:name#options``, :func:`split_ref`); which
schemes exist and how each reads its name is the sources' business
(:func:`tlreg.registry.sources.parse_ref`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Ref:
    scheme: str
    name: str
    revision: str | None = None
    options: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __str__(self) -> str:
        """The identity form stored in the registry (no revision)."""
        text = f"{self.scheme}:{self.name}"
        if self.options:
            text += "#" + urlencode(sorted(self.options.items()))
        return text

    def pinned(self) -> str:
        """The form that names one exact revision, for audit records."""
        return f"{self}@{self.revision}" if self.revision else str(self)

    def with_revision(self, revision: str | None) -> Ref:
        return Ref(self.scheme, self.name, revision, dict(self.options))


def split_ref(text: str) -> Ref | None:
    """``scheme:name#k=v&...`` split into its parts, as written (no revision read, nothing checked);
    None when ``text`` has no scheme."""
    scheme, sep, rest = text.partition(":")
    if not sep or not scheme:
        return None
    name, _, fragment = rest.partition("#")
    return Ref(scheme, name, None, dict(parse_qsl(fragment)) if fragment else {})
