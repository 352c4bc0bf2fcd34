"""tlreg.registry: what models exist and what we know about them.

``Registry`` is the store (and the Python twin of ``tlreg registry ...``); sources describe and
load models; ``FeatureExtractor`` is a loaded model ready to embed data.
"""

from .extractors import FeatureExtractor
from .models import Event, ModelRecord, ModelSpec
from .outcomes import OutcomeStore
from .refs import Ref, parse_ref
from .runs import RunStore
from .store import ImportReport, Registry, to_ref

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
