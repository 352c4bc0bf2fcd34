"""Model references: one string names a model everywhere.

``timm:resnet50.a1_in1k``, ``hf:org/name[@revision]``, ``file:/abs/w.safetensors#arch=resnet18``,
``local-dir:/abs/folder`` and ``pkg:efficientnet_lite0``. A registry entry is keyed by the ref
without its revision; the revision it is pinned to (a commit sha, a content hash) is stored beside
it, so a model whose revision moves stays one entry with a "revision" event in its history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from .errors import InvalidRefError

SCHEMES = ("timm", "hf", "file", "local-dir", "pkg")
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
_HF_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
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


def parse_ref(text: str) -> Ref:
    """Parse a ref string; raise :class:`InvalidRefError` naming the problem."""
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in SCHEMES:
        raise InvalidRefError(
            f"{text!r} is not a model reference.",
            hint="Use timm:NAME, hf:ORG/NAME[@REV], file:PATH#arch=ARCH, local-dir:PATH or pkg:NAME, "
            "or a path to a weights file or folder.",
        )
    rest, _, fragment = rest.partition("#")
    options = dict(parse_qsl(fragment)) if fragment else {}
    revision = None
    if scheme == "hf":
        rest, _, revision = rest.partition("@")
        revision = revision or None
        if not _HF_REPO.match(rest):
            raise InvalidRefError(f"{text!r}: a Hugging Face ref is hf:ORG/NAME[@REVISION].")
    elif scheme in ("file", "local-dir"):
        if not rest:
            raise InvalidRefError(f"{text!r}: no path after '{scheme}:'.")
        rest = str(Path(rest).expanduser().resolve())
        if scheme == "file" and "arch" not in options:
            raise InvalidRefError(
                f"{text!r}: a weights file needs its timm architecture.",
                hint="Write file:PATH#arch=resnet18, or pass --arch to `tlreg registry add`.",
            )
    elif not rest:
        raise InvalidRefError(f"{text!r}: no model name after '{scheme}:'.")
    return Ref(scheme, rest, revision, options)
