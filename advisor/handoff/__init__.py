"""Hand-off: the picked model to fine-tuning (``tlreg finetune``), or to scripts for your own trainer.

``finetune(...)`` trains (linear probe on cached features, partial or full), writes a reloadable
model, ``metrics.json`` and ``command.txt``, and records the outcome in the registry;
``load_finetuned(out)`` reloads any fine-tune. Names load on first use (PEP 562).

The modules, in the order a fine-tune goes through them: :mod:`.inputs` (the run, its pick, the
data, the options, the split: every check before anything loads), :mod:`.job` (the resolved
:class:`FinetuneJob`), :mod:`.finetune` (the entry point and the training step), :mod:`.mode_setup`
(what each mode trains, on which batches), :mod:`.model` (the backbone, its blocks and the new
head), :mod:`.train` (the loop), :mod:`.checkpoint` (atomic writes), :mod:`.saved_model` (the
fine-tuned model on disk, and reloading it), :mod:`.result` (the report and the outcome record);
``--export`` instead: :mod:`.export` and the ``template_*.py`` scripts it fills in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tlreg.registry.lazy import lazy_exports

if TYPE_CHECKING:
    from .finetune import finetune
    from .job import FinetuneJob
    from .result import FinetuneResult
    from .saved_model import load_finetuned

_EXPORTS = {
    "FinetuneJob": ".job",
    "FinetuneResult": ".result",
    "finetune": ".finetune",
    "load_finetuned": ".saved_model",
}
__all__ = ["FinetuneJob", "FinetuneResult", "finetune", "load_finetuned"]


__getattr__ = lazy_exports(__name__, _EXPORTS)
