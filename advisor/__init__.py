"""tlreg.advisor: target data in, ranking out.

``recommend(path, ...)`` is the main job; its result's ``to_dict()`` is the ``--json`` document.
"""

from .recommend import Options, recommend
from .result import RankingRow, RecommendResult

__all__ = ["Options", "RankingRow", "RecommendResult", "recommend"]
