"""Package exports that load on first use (PEP 562), so importing a light submodule stays light.

``import tlreg.registry.errors`` — all the CLI needs to start — must not pay for torch and timm,
which the package's public names (``Registry``, ``FeatureExtractor``, ...) would pull in if its
``__init__`` imported them eagerly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` resolving ``name`` from ``exports[name]`` (a relative
    module), once: the value is then stored on the package like an ordinary import."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
