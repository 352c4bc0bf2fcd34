"""What a fine-tune reports (``metrics.json``, ``--json``) and records in the registry.

The outcome row (model, revision, data fingerprint, mode, budget, validation accuracy, linked to
the run) is what lets the registry learn from its own history: ``tlreg runs show`` lists a run's
fine-tunes, and the ranking's history signal reads how each model really did on similar data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tlreg.registry import OutcomeStore, Registry
from tlreg.registry.outcomes import FinetuneOutcome

from .inputs import Data, Options


@dataclass
class FinetuneResult:
    """What a fine-tune did; ``to_dict()`` is ``metrics.json`` and the ``--json`` document."""

    out: str
    ref: str
    revision: str | None
    mode: str
    run_id: str | None
    data: dict[str, Any]
    options: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val_acc: float | None = None
    best_epoch: int | None = None
    stopped_early: bool = False
    model_dir: str | None = None
    model_format: str | None = None
    trainable_params: int | None = None
    seeds: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    device: str = ""
    resumed_at_epoch: int | None = None
    outcome_id: int | None = None
    exported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    registered: str | None = None  # the registry ref of the fine-tuned model (``register=True``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_outcome(
    registry: Registry, result: FinetuneResult, data: Data, opts: Options, epochs_run: int, *, n_train: int
) -> int | None:
    """Store the outcome, once: a resumed run that had finished training (but not written its
    metrics) finds the outcome it recorded before, rather than adding a second."""
    store = OutcomeStore(registry.engine)
    where = str(Path(result.out).resolve())
    val_accs = [h["val_acc"] for h in result.history]
    for earlier in store.outcomes(fingerprint=data.fingerprint, ref=result.ref):
        if earlier.output_dir == where and earlier.metrics.get("val_acc") == val_accs:
            return earlier.id
    budget = {
        "epochs": opts.epochs,
        "epochs_run": epochs_run,
        "steps": epochs_run * -(-n_train // opts.batch_size),
        "batch_size": opts.batch_size,
        "lr": opts.lr,
        "seconds": result.timings.get("train_s"),
        "device": result.device,
        "trainable_params": result.trainable_params,
    }
    if opts.mode == "partial":
        budget["unfreeze"] = opts.unfreeze
    outcome = store.record(
        FinetuneOutcome(
            run_id=result.run_id,
            ref=result.ref,
            revision=result.revision,
            fingerprint=data.fingerprint,
            dataset=data.path,
            mode=opts.mode,
            budget=budget,
            val_accuracy=result.best_val_acc,
            metrics={
                "best_epoch": result.best_epoch,
                "val_acc": val_accs,
                "train_acc": [h["train_acc"] for h in result.history],
                "classes": data.classes,
                "train": n_train,
                "val": result.data.get("val"),
                "stopped_early": result.stopped_early,
            },
            source="finetune",
            output_dir=where,
        )
    )
    return outcome.id
