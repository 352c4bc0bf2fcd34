"""tlreg.advisor: target data in, ranking out.

``recommend(path, ...)`` is the main job (:mod:`.recommend` reads as its steps, one module each);
its result's ``to_dict()`` is the ``--json`` document. ``finetune(...)`` hands the pick to
fine-tuning (:mod:`.handoff`). Names are imported on first use (PEP 562), so the light submodules
(the defaults, the cache, the errors) load without torch. The README's "Development" section maps
every module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tlreg.registry.lazy import lazy_exports

if TYPE_CHECKING:
    from .handoff import FinetuneResult, finetune
    from .recommend import Options, recommend
    from .result import RankingRow, RecommendResult

_EXPORTS = {
    "FinetuneResult": ".handoff",
    "Options": ".recommend",
    "RankingRow": ".result",
    "RecommendResult": ".result",
    "finetune": ".handoff",
    "recommend": ".recommend",
}
__all__ = ["FinetuneResult", "Options", "RankingRow", "RecommendResult", "finetune", "recommend"]


__getattr__ = lazy_exports(__name__, _EXPORTS)
