"""``finetune``: hand a recommendation off to a real fine-tune, and record how it went.

``finetune(run_id, out=...)`` takes the run's best model (or ``model=``), the run's data (or
``data=``), trains a new linear head (``mode="linear"``, on cached features: no forward pass per
epoch), the last blocks as well (``"partial"``) or everything (``"full"``), keeps the best epoch by
validation accuracy in ``OUT/model`` (see :mod:`tlreg.advisor.handoff.saved_model` for the formats), and
writes ``metrics.json`` and ``command.txt``. The outcome (model, revision, data fingerprint, mode,
budget, validation accuracy) goes to the registry's ``finetune_outcome`` table, linked to the run,
so the registry learns from how its recommendations really did. ``export=`` writes scripts for the
user's own trainer instead of training (:mod:`tlreg.advisor.handoff.export`).

``OUT/checkpoint.pt`` is written after every epoch; ``resume=True`` continues from it and reaches
the result an uninterrupted run would have: bit for bit on a CPU, up to the non-determinism of some
CUDA kernels on a GPU (see :mod:`tlreg.advisor.handoff.train`).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tlreg.registry import ModelRecord, Registry
from tlreg.registry.errors import BadInputError

from .. import defaults
from ..cache import FeatureCache
from ..embed.device import default_workers, resolve_device
from ..files import is_disk_full
from . import checkpoint as ckpt
from .export import export_scripts
from .inputs import Data, Options, command_text, get_run, load_data, pick_model, planned_mode, split
from .job import FinetuneJob
from .mode_setup import build
from .result import FinetuneResult, record_outcome
from .saved_model import ModelToSave, save_model
from .train import SilentTraining, TrainConfig, Trainer, TrainState, rng_state, set_rng_state

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"


def _stored(out: Path) -> dict[str, Any] | None:
    """The options of the fine-tune whose checkpoint is in ``out`` (None when there is none)."""
    path = out / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)["extra"]
    except Exception as exc:  # written atomically, so only another program can have broken it
        raise BadInputError(
            f"{path}: cannot be read as a tlreg checkpoint ({type(exc).__name__}).",
            hint="Remove it to start again, or choose another --out.",
        ) from exc


def finetune(
    run_id: str | None = None,
    *,
    out: str | Path,
    model: str | None = None,
    data: str | Path | None = None,
    mode: str | None = None,
    unfreeze: int | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    val_split: float | None = None,
    seed: int | None = None,
    label_smoothing: float | None = None,
    patience: int | None = None,
    weight_decay: float | None = None,
    device: str | None = None,
    workers: int | None = None,
    text_col: str | None = None,
    image_col: str | None = None,
    label_col: str | None = None,
    resume: bool = False,
    full_data: bool = False,
    export: str | None = None,
    register: bool = False,
    trust_remote_code: bool = False,
    registry: Registry | None = None,
    db: str | None = None,
    cache: FeatureCache | None = None,
    reporter: Any = None,
    command: str = "",
    record: bool = True,
) -> FinetuneResult:
    """Fine-tune the run's best model (or ``model``) on ``data`` into ``out``; the Python twin of
        ``tlreg finetune``. Options left as ``None`` take their defaults (``mode``: the run's transfer plan
    for the model, see :mod:`tlreg.advisor.plan`, else ``"linear"``;
        ``unfreeze=2``, ``epochs``/``lr`` by mode: linear 50 / 1e-2, partial 10 / 1e-4, full 10 / 5e-5,
        ``batch_size=32``, ``val_split=0.2``, ``seed=0``, ``label_smoothing=0``, ``patience=5`` (0: no
        early stopping), ``weight_decay=0.01``), or, with ``resume=True``, the interrupted run's values.
        On the run's data, the items are the run's sample (its cached features: no forward pass in
        linear mode); ``full_data=True`` trains on every item (see :func:`~.inputs.load_data`).
        ``register=True`` adds the fine-tuned model to the registry as a candidate, with its parent,
        run and outcome (``result.registered`` is its ref; see :mod:`tlreg.registry.lineage`).
    """
    registry = registry or Registry(db)
    reporter = reporter or SilentTraining()
    out = Path(out)
    ckpt.recover(out)
    if export is not None and export not in defaults.EXPORTS:
        raise BadInputError(
            f"Unknown --export {export!r}.", hint=f"Use one of: {', '.join(defaults.EXPORTS)}."
        )
    if export is not None and register:
        raise BadInputError("--register needs a trained model; --export writes scripts instead.")
    stored = _stored(out)
    if resume and export is None:
        if stored is None:
            raise BadInputError(f"{out}: no {CHECKPOINT} to resume from.", hint="Run again without --resume.")
        named = registry.get(model).ref if model else None
        for name, given, kept in (("RUN_ID", run_id, stored["run_id"]), ("--model", named, stored["ref"])):
            if given is not None and given != kept:
                raise BadInputError(f"{name} {given} differs from the interrupted run's {kept}.")
        run_id, model, data = stored["run_id"], stored["ref"], data or stored["data"]
        kept = stored.get("full_data", True)  # checkpoints from before the choice trained on all data
        if full_data and not kept:
            raise BadInputError(f"--full-data differs from the interrupted run's (run {run_id}'s sample).")
        full_data = kept
    elif export is None and (stored is not None or (out / METRICS).exists()):
        raise BadInputError(
            f"{out}: already holds a fine-tune.",
            hint="Continue it with --resume, or choose another --out.",
        )
    given = {
        "mode": mode,
        "unfreeze": unfreeze,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "val_split": val_split,
        "seed": seed,
        "label_smoothing": label_smoothing,
        "patience": patience,
        "weight_decay": weight_decay,
    }
    run, result = get_run(registry, run_id) if run_id else (None, None)
    record_ = registry.get(pick_model(run, result, model))
    planned = planned_mode(result, record_.ref) if mode is None and not resume else None
    if planned is not None:
        given["mode"], given["unfreeze"] = planned[0], unfreeze or planned[1]
    opts = Options.resolve(given, stored["options"] if resume and stored else None)
    columns = {"text_col": text_col, "image_col": image_col, "label_col": label_col}
    if resume and stored:
        columns = {k: columns[k] or stored["columns"].get(k) for k in columns}
    ds = load_data(data, run, modality=record_.modality, columns=columns, full_data=full_data)
    for message in ds.warnings:
        reporter.note(f"warning: {message}")
    for message in ds.notes:
        reporter.note(message)
    if planned is not None:
        reporter.note(f"mode {planned[0]}: run {run_id}'s transfer plan for {record_.ref} (--mode wins)")
    if resume and stored and ds.fingerprint != stored["fingerprint"]:
        raise BadInputError(
            f"{ds.path}: the data changed since the interrupted fine-tune (another fingerprint).",
            hint="Resume on the same data, or start afresh in another --out.",
        )
    labels = np.asarray(ds.dataset.labels)
    train_idx, val_idx = split(labels, opts.val_split, opts.seed)
    extra = {
        "device": device,
        "workers": workers,
        **columns,
        "trust_remote_code": trust_remote_code or None,
        "full_data": full_data or None,
        "export": export,
    }
    run_id = run.id if run else None
    job = FinetuneJob(
        registry=registry,
        record=record_,
        run_id=run_id,
        data=ds,
        opts=opts,
        out=out,
        device=resolve_device(device),
        workers=workers if workers is not None else default_workers(ds.dataset.modality),
        reporter=reporter,
        text=command_text(
            command, run_id=run_id, ref=record_.ref, data=ds.path, out=out, opts=opts, extra=extra
        ),
        full_data=full_data,
    )
    if export is not None:
        return export_scripts(export, job, train_idx, val_idx, trust_remote_code=trust_remote_code)
    result = _train(
        job,
        train_idx,
        val_idx,
        cache=cache or FeatureCache(),
        payload=ckpt.load_torch(out / CHECKPOINT) if resume else None,
        trust_remote_code=trust_remote_code,
        record=record,
    )
    if register and result.model_dir:
        result.registered = registry.add_ref(result.model_dir)[0].ref
    return result


def short_finetune(
    record: ModelRecord,
    data: Data,
    given: dict[str, Any],
    *,
    registry: Registry,
    cache: FeatureCache,
    device: str | None = None,
    workers: int | None = None,
    trust_remote_code: bool = False,
) -> FinetuneResult:
    """A fine-tune of ``record`` on ``data`` with the options ``given`` (the rest their defaults) in a
    temporary folder, removed after: ``recommend``'s trials (:mod:`tlreg.advisor.trials`). It trains
    exactly as ``tlreg finetune --model REF --data ...`` with those options does on the same items,
    and records nothing."""
    opts = Options.resolve(given)
    train_idx, val_idx = split(np.asarray(data.dataset.labels), opts.val_split, opts.seed)
    with tempfile.TemporaryDirectory(prefix="tlreg-trial-") as tmp:
        job = FinetuneJob(
            registry=registry,
            record=record,
            run_id=None,
            data=data,
            opts=opts,
            out=Path(tmp) / "trial",
            device=resolve_device(device),
            workers=workers if workers is not None else default_workers(data.dataset.modality),
            reporter=SilentTraining(),
        )
        return _train(
            job,
            train_idx,
            val_idx,
            cache=cache,
            payload=None,
            trust_remote_code=trust_remote_code,
            record=False,
        )


def _train(
    job: FinetuneJob,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    cache: FeatureCache,
    payload: dict[str, Any] | None,
    trust_remote_code: bool,
    record: bool,
) -> FinetuneResult:
    opts, ds, out = job.opts, job.data, job.out
    if payload and TrainState(**payload["state"]).done and (out / METRICS).is_file():
        job.reporter.note(f"{out}: this fine-tune had already finished; nothing to do.")
        return FinetuneResult(**json.loads((out / METRICS).read_text()))
    start = time.perf_counter()
    setup = build(
        job.registry,
        job.record,
        ds,
        opts,
        train_idx,
        val_idx,
        cache=cache,
        device=job.device,
        workers=job.workers,
        reporter=job.reporter,
        trust_remote_code=trust_remote_code,
    )
    revision = setup.revision
    timings: dict[str, float] = {} if setup.features_s is None else {"features_s": setup.features_s}
    if payload and payload["extra"]["revision"] != revision:
        raise BadInputError(
            f"{job.record.ref} changed since the interrupted fine-tune (revision "
            f"{payload['extra']['revision']} then, {revision} now).",
            hint="Start afresh in another --out.",
        )
    spec = ModelToSave(
        setup.extractor,
        setup.head,
        ds.classes,
        opts.mode,
        job.record.ref,
        revision,
        job.record.preprocessing,
        modality=ds.dataset.modality,
    )

    def save_best(epoch: int, acc: float, previous: TrainState) -> None:
        try:
            save_model(out / "model", spec, epoch=epoch, val_acc=acc)
        except Exception as exc:
            if is_disk_full(exc):
                kept = (
                    f"the best model so far (epoch {previous.best_epoch}, validation accuracy "
                    f"{previous.best_acc:.3f}) is still in {out / 'model'}"
                    if previous.best_epoch
                    else "no model had been saved yet"
                )
                raise ckpt.disk_full(out / "model", exc, kept, checkpoint=out / CHECKPOINT) from exc
            raise

    cfg = TrainConfig(
        epochs=opts.epochs,
        lr=opts.lr,
        batch_size=opts.batch_size,
        weight_decay=opts.weight_decay,
        label_smoothing=opts.label_smoothing,
        patience=opts.patience,
        seed=opts.seed,
    )
    stored = {
        "options": opts.to_dict(),
        "run_id": job.run_id,
        "ref": job.record.ref,
        "revision": revision,
        "data": ds.path,
        "columns": ds.columns,
        "fingerprint": ds.fingerprint,
        "full_data": job.full_data,
    }
    trainer = Trainer(
        setup.model,
        setup.groups,
        setup.train,
        setup.val,
        cfg,
        device=job.device,
        checkpoint=out / CHECKPOINT,
        save_best=save_best,
        reporter=job.reporter,
        extra=stored,
    )
    out.mkdir(parents=True, exist_ok=True)
    caller_rng = rng_state()  # training reseeds the global generators; the caller gets theirs back
    try:
        if payload:
            trainer.resume(payload)
        else:
            torch.manual_seed(opts.seed)
        resumed_at = trainer.state.epoch if payload else None
        fit_start = time.perf_counter()
        state = trainer.fit()
    finally:
        set_rng_state(caller_rng)
    timings["train_s"] = round(time.perf_counter() - fit_start, 3)
    timings["total_s"] = round(time.perf_counter() - start, 3)
    info = json.loads((out / "model" / "tlreg_finetune.json").read_text())
    result = job.result(
        revision,
        history=state.history,
        best_val_acc=state.best_acc,
        best_epoch=state.best_epoch,
        stopped_early=state.stopped_early,
        model_dir=str(out / "model"),
        model_format=info["format"],
        trainable_params=setup.trainable_params,
        seeds={
            "seed": opts.seed,
            "split": f"numpy default_rng({opts.seed})",
            "head_init": opts.seed,
            "shuffle_of_epoch_e": f"torch.Generator seeded {opts.seed} * 1000003 + e",
        },
        timings=timings,
        resumed_at_epoch=resumed_at,
        notes=[*ds.warnings, *ds.notes],
    )
    result.data.update({"train": len(train_idx), "val": len(val_idx), "val_ids": _ids(ds, val_idx)})
    if record:
        result.outcome_id = record_outcome(
            job.registry, result, job.data, job.opts, state.epoch, n_train=len(train_idx)
        )
    try:
        ckpt.write_json(out / METRICS, result.to_dict())
        ckpt.write_text(out / "command.txt", job.text)
    except OSError as exc:
        if is_disk_full(exc):
            kept = f"the model is in {out / 'model'}, only metrics.json or command.txt is missing"
            raise ckpt.disk_full(out / METRICS, exc, kept, checkpoint=out / CHECKPOINT) from exc
        raise
    return result


def _ids(data: Data, idx: np.ndarray) -> list[str]:
    return [data.dataset.ids[i] for i in idx]
