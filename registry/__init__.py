"""tlreg.registry: what models exist and what we know about them.

``Registry`` is the store (and the Python twin of ``tlreg registry ...``); sources describe and
load models; ``FeatureExtractor`` is a loaded model ready to embed data.

Names are imported on first use (PEP 562), so ``import tlreg.registry.errors`` — what the CLI needs
to start — does not pay for torch and timm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

if TYPE_CHECKING:
    from .feature_extractor import FeatureExtractor
    from .models import Event, ModelRecord, ModelSpec
    from .outcomes import OutcomeStore
    from .refs import Ref
    from .runs import RunStore
    from .sources.base import parse_ref
    from .store import ImportReport, Registry, to_ref

_EXPORTS = {
    "Event": ".models",
    "FeatureExtractor": ".feature_extractor",
    "ImportReport": ".store",
    "ModelRecord": ".models",
    "ModelSpec": ".models",
    "OutcomeStore": ".outcomes",
    "Ref": ".refs",
    "Registry": ".store",
    "RunStore": ".runs",
    "parse_ref": ".sources.base",
    "to_ref": ".store",
}
__all__ = [
    "Event",
    "FeatureExtractor",
    "ImportReport",
    "ModelRecord",
    "ModelSpec",
    "OutcomeStore",
    "Ref",
    "Registry",
    "RunStore",
    "parse_ref",
    "to_ref",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
