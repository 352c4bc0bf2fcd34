"""What a fine-tune starts from: the run and its pick, the data and its classes, the options, the split.

Kept apart from the loop so that every check on the user's input happens, with a one-line error,
before a model is loaded or a file is written.
"""

from __future__ import annotations

import shlex
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from tlreg.registry import Registry, RunStore
from tlreg.registry.errors import BadInputError
from tlreg.registry.runs import Run, RunResult

from .. import defaults as d
from ..data import Dataset, fingerprint, load_dataset, sample
from ..errors import ClassMismatchError, DatasetError


@dataclass
class Options:
    """Everything that decides the result of a fine-tune (stored in its checkpoint and metrics)."""

    mode: str = d.FINETUNE_MODE
    unfreeze: int = d.UNFREEZE
    epochs: int = 0  # 0: the mode's default (defaults.MODE_DEFAULTS)
    lr: float = 0.0  # 0: the mode's default
    batch_size: int = d.FINETUNE_BATCH_SIZE
    val_split: float = d.VAL_SPLIT
    seed: int = d.SEED
    label_smoothing: float = d.LABEL_SMOOTHING
    patience: int = d.PATIENCE
    weight_decay: float = d.WEIGHT_DECAY

    @classmethod
    def resolve(cls, given: dict[str, Any], stored: dict[str, Any] | None = None) -> Options:
        """Defaults, overridden by ``stored`` (a run being resumed), overridden by what was ``given``.

        Resuming with a value that differs from the interrupted run's would silently change the
        result, so it is refused.
        """
        names = [f.name for f in fields(cls)]
        unknown = set(given) - set(names)
        if unknown:
            raise TypeError(f"unknown fine-tune options: {', '.join(sorted(unknown))}")
        values = {**(stored or {})}
        for name, value in given.items():
            if value is None:
                continue
            if stored is not None and name in stored and stored[name] != value:
                flag = f"--{name.replace('_', '-')}"
                raise BadInputError(
                    f"{flag} {value} differs from the interrupted run's {stored[name]}.",
                    hint="Resume with the same options (or leave them out), or start again in another --out.",
                )
            values[name] = value
        opts = cls(**{k: v for k, v in values.items() if k in names})
        if opts.mode not in d.FINETUNE_MODES:
            raise BadInputError(
                f"Unknown --mode {opts.mode!r}.", hint=f"Use one of: {', '.join(d.FINETUNE_MODES)}."
            )
        opts.epochs = opts.epochs or int(d.MODE_DEFAULTS[opts.mode]["epochs"])
        opts.lr = opts.lr or d.MODE_DEFAULTS[opts.mode]["lr"]
        checks = [
            (opts.epochs >= 1, "--epochs must be at least 1"),
            (opts.lr > 0, "--lr must be positive"),
            (opts.batch_size >= 1, "--batch-size must be at least 1"),
            (0 < opts.val_split < 1, "--val-split must be between 0 and 1 (exclusive)"),
            (0 <= opts.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
            (opts.patience >= 0, "--patience must be 0 (no early stopping) or more"),
            (opts.unfreeze >= 1, "--unfreeze must be at least 1"),
            (opts.seed >= 0, "--seed must be 0 or more"),
            (opts.weight_decay >= 0, "--weight-decay must be 0 or more"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInputError(f"{message}.")
        return opts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def get_run(registry: Registry, run_id: str) -> tuple[Run, RunResult | None]:
    """The run (a unique prefix of its id is enough), or one line with the closest ids."""
    run, _, _, result = RunStore(registry.engine).get(run_id)
    return run, result


def pick_model(run: Run | None, result: RunResult | None, model: str | None) -> str:
    if model:
        return model
    if run is None:
        raise BadInputError("Nothing to fine-tune: give a RUN_ID, or a model with --model REF.")
    if result is None or not result.best_ref:
        raise BadInputError(
            f"Run {run.id} has no recommended model (status: {run.status}).",
            hint="Pass --model REF to choose one yourself.",
        )
    return result.best_ref


@dataclass
class Data:
    """The fine-tuning data: its items (decoded once), its fingerprint, and its classes."""

    path: str
    dataset: Dataset
    fingerprint: str
    columns: dict[str, str | None]
    warnings: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return list(self.dataset.classes or [])


def load_data(
    data: str | Path | None,
    run: Run | None,
    *,
    modality: str,
    columns: dict[str, str | None],
    full_data: bool = False,
) -> Data:
    """Load and check the data: classification, the model's modality, and the run's classes.

    On the run's own data, the items are the run's sample (unless ``full_data``): the data the
    models were ranked on, whose features ``recommend`` cached, so linear mode needs no forward
    pass and the outcome is recorded under the run's fingerprint. A note says so when the run
    sampled part of the data; a warning says when the data changed since and all of it is used.
    """
    from_run = (
        run is not None
        and bool(run.data_path)
        and (data is None or Path(data).expanduser().resolve() == Path(run.data_path))
    )
    if data is None:
        if run is None or not run.data_path:
            raise BadInputError("No data to fine-tune on: pass --data PATH.")
        data = run.data_path
        columns = {
            k: columns.get(k) or (run.options or {}).get(k) for k in ("text_col", "image_col", "label_col")
        }
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        every = load_dataset(data, **columns)
        chosen = None
        if from_run and run is not None and run.sample_ids and not full_data:
            chosen = run_sample(every, run)
            if chosen is None:
                warnings.warn(
                    f"{data} changed since run {run.id} ranked the models on it (its sample is not "
                    "there as it was): fine-tuning on all its items as they are now",
                    UserWarning,
                    stacklevel=2,
                )
            elif len(chosen) < len(every):
                notes.append(
                    f"fine-tuning on run {run.id}'s sample: {len(chosen)} of the {len(every)} items in "
                    f"{data} (the items it ranked the models on, whose features it cached); "
                    "--full-data trains on all"
                )
        full = chosen if chosen is not None else sample(every)  # no caps: every item, decoded once
    warned = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if full.task != "classification":
        raise DatasetError(
            f"{data}: {full.task} data; fine-tuning trains a classifier and needs class labels.",
            hint="Give a folder of class subfolders, or a table with a label column (--label-col).",
        )
    if full.modality != modality:
        raise DatasetError(f"{data}: {full.modality} data, but the model takes {modality}.")
    if run is not None and run.classes is not None and set(run.classes) != set(full.classes or []):
        extra = sorted(set(full.classes or []) - set(run.classes))
        missing = sorted(set(run.classes) - set(full.classes or []))
        parts = ([f"not in the run: {', '.join(extra)}"] if extra else []) + (
            [f"missing from the data: {', '.join(missing)}"] if missing else []
        )
        raise ClassMismatchError(
            f"{data}: its classes differ from those run {run.id} ranked the models on ({'; '.join(parts)}).",
            hint="Fine-tune on data with the run's classes, or pass --model REF without a run id.",
        )
    path = str(Path(data).expanduser().resolve())
    return Data(path, full, fingerprint(full), dict(columns), warned, notes)


def run_sample(ds: Dataset, run: Run) -> Dataset | None:
    """The items ``run`` ranked the models on, in its order, as they were (same fingerprint); None
    when an item is gone or changed since."""
    where = {item_id: i for i, item_id in enumerate(ds.ids)}
    if any(i not in where for i in run.sample_ids):
        return None
    chosen = ds.subset([where[i] for i in run.sample_ids])
    if fingerprint(chosen) != run.fingerprint:
        return None
    chosen.validated = True  # the same bytes the run decoded
    return chosen


def split(labels: np.ndarray, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation indices: each class with 2+ items gives ``val_split`` of them
    (at least 1, never all) to validation; the draw is seeded."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for code in np.unique(labels):
        idx = np.flatnonzero(labels == code)
        idx = idx[rng.permutation(len(idx))]
        k = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(val_split * len(idx))))
        val.extend(idx[:k].tolist())
        train.extend(idx[k:].tolist())
    if not val:
        raise DatasetError("Too few samples for a validation split: every class has a single item.")
    return np.sort(np.asarray(train)), np.sort(np.asarray(val))


def command_text(
    given: str, *, run_id: str | None, ref: str, data: str, out: Path, opts: Options, extra: dict[str, Any]
) -> str:
    """``command.txt``: the command as typed, the same with every option spelled out, and in Python."""
    flags: list[str] = ["--model", ref, "--data", data, "--out", str(out)]
    kwargs: dict[str, Any] = {"model": ref, "data": data, "out": str(out)}
    for key, value in {**opts.to_dict(), **{k: v for k, v in extra.items() if v is not None}}.items():
        if key == "unfreeze" and opts.mode != "partial":
            continue
        kwargs[key] = value
        if isinstance(value, bool):
            if value:
                flags.append(f"--{key.replace('_', '-')}")
        else:
            flags += [f"--{key.replace('_', '-')}", str(value)]
    cli = shlex.join(["tlreg", "finetune", *([run_id] if run_id else []), *flags])
    args = ([repr(run_id)] if run_id else []) + [f"{k}={v!r}" for k, v in kwargs.items()]
    return (
        "# The command as given:\n"
        f"{given or '(called from Python)'}\n\n"
        "# The same fine-tune with every option spelled out:\n"
        f"{cli}\n\n"
        "# The same from Python:\n"
        "from tlreg.advisor import finetune\n"
        f"finetune({', '.join(args)})\n"
    )


def planned_mode(result: RunResult | None, ref: str) -> tuple[str, int | None] | None:
    """The fine-tuning mode (and blocks to unfreeze) the run's transfer plan gives ``ref``, if any."""
    for row in (result.ranking if result else None) or []:
        if row.get("ref") == ref and row.get("plan"):
            return row["plan"]["mode"], row["plan"].get("unfreeze")
    return None
