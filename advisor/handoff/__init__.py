"""Hand-off: the picked model to fine-tuning (``tlreg finetune``), or to scripts for your own trainer.

``finetune(...)`` trains (linear probe on cached features, partial or full), writes a reloadable
model, ``metrics.json`` and ``command.txt``, and records the outcome in the registry;
``load_finetuned(out)`` reloads any fine-tune. Names load on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tlreg.registry.lazy import lazy_exports

if TYPE_CHECKING:
    from .finetune import finetune
    from .finetuned import load_finetuned
    from .result import FinetuneResult

_EXPORTS = {"FinetuneResult": ".result", "finetune": ".finetune", "load_finetuned": ".finetuned"}
__all__ = ["FinetuneResult", "finetune", "load_finetuned"]


__getattr__ = lazy_exports(__name__, _EXPORTS)
