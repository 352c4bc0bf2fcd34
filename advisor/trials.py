"""Short fine-tunes of the top candidates: evidence that frozen features cannot give.

Every estimator reads frozen features; a fine-tune moves every weight. Where a model's frozen
features are the best and it fine-tunes among the worst (the ImageNet originals on the Hub-like
benchmark's counting target: README, "Advice quality"), no estimator can tell. With
``recommend(trials=k)`` (``--trials K``) each of the combined ranking's top ``k`` candidates is
fine-tuned briefly on the sample, with tlreg's own fine-tuning and :data:`~.defaults.TRIAL_RECIPE`
(the whole network, :data:`~.defaults.TRIAL_EPOCHS` epochs unless ``trial_epochs`` says otherwise,
AdamW at 1e-3 with the new head at 10x, warm-up then cosine) on a stratified 80/20 split drawn with
the run's seed: exactly what ``tlreg finetune --model REF --data DATA --mode full --epochs E --lr 1e-3
--patience 0 --seed S`` trains on the same items. Three epochs, not one: on both benchmarks a
one-epoch trial rewarded the model that starts fastest (on the first benchmark's digits a small
digits-pretrained model, 23 points behind the ImageNet Lites at the truth's budget), and trials at
about the truth's budget did not. The top
``k`` are then ordered by validation accuracy, ties to the estimators' order; the others keep
their places. With ``trial_repeats=R`` (``--trial-repeats R``) each candidate is tried R times, on
splits drawn with seeds S, S+1, ..., S+R-1 of the same sample, and ranked by the mean: a second
split lessens the luck of one validation set (the splits share items, so not by half) at twice
the cost. ``bench/trial_quality.py`` measures what this buys against both benchmarks' truth.

A trial's result is kept in the answer cache (:mod:`.memo`) under the model's ref and revision, the
sample's fingerprint, the recipe, the seed and the device type, so a second run on the same data
trains nothing (``reuse_answers=False``, as ``tlreg runs verify`` runs, trains again).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tlreg.registry import ModelRecord
from tlreg.registry.errors import TlregError

from . import defaults
from .embed import EmbedRequest
from .errors import StorageError
from .memo import Memo, memo_key


@dataclass
class Trial:
    """One candidate's short fine-tune on the sample."""

    ref: str
    val_acc: float
    val: int  # validation items
    train: int  # training items
    epochs: int
    seconds: float
    from_cache: bool = False
    repeats: int = 1  # splits it was tried on; ``val_acc`` is their mean and ``val`` their sum

    @property
    def correct(self) -> int:
        """Validation items it got right (over all its splits)."""
        return round(self.val_acc * self.val)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "correct": self.correct}


def recipe(seed: int, n_train: int | None = None, epochs: int = defaults.TRIAL_EPOCHS) -> dict[str, Any]:
    """The options each trial fine-tunes with (``tlreg finetune``'s), the run's seed included:
    ``epochs``, or as many as reach ``epochs`` x :data:`~.defaults.TRIAL_MIN_STEPS` optimiser steps on
    ``n_train`` training items (a small sample: one epoch of 100 items is 4 steps, too few to tell
    models apart)."""
    steps_per_epoch = math.ceil((n_train or 0) / defaults.FINETUNE_BATCH_SIZE)
    least = epochs * defaults.TRIAL_MIN_STEPS
    trained = max(epochs, math.ceil(least / steps_per_epoch)) if steps_per_epoch else epochs
    return {**defaults.TRIAL_RECIPE, "epochs": trained, "seed": seed}


def run_trials(
    request: EmbedRequest,
    records: Sequence[ModelRecord],
    *,
    data_path: str,
    columns: Mapping[str, str | None],
    revisions: Mapping[str, str | None],
    seed: int,
    memo: Memo | None,
    repeats: int = defaults.TRIAL_REPEATS,
    epochs: int = defaults.TRIAL_EPOCHS,
) -> tuple[dict[str, Trial], dict[str, str]]:
    """A trial of each of ``records`` (their weights' ``revisions``: the cache key) on the request's
    sample, in order, each on ``repeats`` splits (seeds ``seed`` .. ``seed + repeats - 1``), and why
    each that could not be fine-tuned failed; progress goes to the request's reporter as notes. A
    full disk stops the run (:class:`~.errors.StorageError`)."""
    from .handoff.finetune import short_finetune
    from .handoff.inputs import Data, split

    data = Data(data_path, request.sample, request.fingerprint, dict(columns), [])
    n_train = len(split(np.asarray(request.sample.labels), defaults.VAL_SPLIT, seed)[0])
    device = request.torch_device()

    def once(record: ModelRecord, given: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """One split's trial (from the answer cache where it is there) and whether it was cached."""
        key = memo_key(
            "trial",
            ref=record.ref,
            revision=revisions.get(record.ref),
            fingerprint=request.fingerprint,
            recipe=given,
            device=device.type,
        )
        cached = memo.get(key) if memo is not None else None
        if cached is not None:
            return cached, True
        start = time.perf_counter()
        done = short_finetune(
            record,
            data,
            given,
            registry=request.registry,
            cache=request.cache,
            device=str(device),
            workers=request.settings.workers,
            trust_remote_code=request.settings.trust_remote_code,
        )
        value = {
            "val_acc": float(done.best_val_acc),
            "val": int(done.data["val"]),
            "train": int(done.data["train"]),
            "epochs": int(given["epochs"]),
            "seconds": round(time.perf_counter() - start, 3),
        }
        if memo is not None:
            memo.put(key, value, kind="trial")
        return value, False

    out: dict[str, Trial] = {}
    failed: dict[str, str] = {}
    for i, record in enumerate(records, 1):
        try:
            runs = [once(record, recipe(seed + r, n_train, epochs)) for r in range(repeats)]
        except StorageError:
            raise
        except TlregError as exc:
            failed[record.ref] = str(exc)
            request.reporter.note(f"trial {i}/{len(records)}: {record.ref}: could not be fine-tuned: {exc}")
            continue
        values = [v for v, _ in runs]
        trial = out[record.ref] = Trial(
            record.ref,
            val_acc=float(np.mean([v["val_acc"] for v in values])),
            val=sum(int(v["val"]) for v in values),
            train=int(values[0]["train"]),
            epochs=int(values[0]["epochs"]),
            seconds=round(sum(float(v["seconds"]) for v in values), 3),
            from_cache=all(c for _, c in runs),
            repeats=repeats,
        )
        request.reporter.note(
            f"trial {i}/{len(records)}: {record.ref}: validation accuracy {trial.val_acc:.3f} "
            f"({trial.correct}/{trial.val})" + (" (cached)" if trial.from_cache else "")
        )
    return out, failed


def reorder(ranked: Sequence[str], trials: Mapping[str, Trial]) -> list[str]:
    """``ranked`` with the candidates that had a trial (the top ones) ordered by validation accuracy,
    ties to their order in ``ranked``; the others keep their places after them."""
    tried = [r for r in ranked if r in trials]
    rest = [r for r in ranked if r not in trials]
    return sorted(tried, key=lambda r: (-trials[r].val_acc, tried.index(r))) + rest


def too_close(a: Trial, b: Trial) -> bool:
    """Are two trials' accuracies within one standard error of their difference (two binomial
    proportions on the validation items)? Then the trials do not tell the two apart. A trial repeated
    on R splits of one sample sees some validation items more than once: two splits that each hold a
    share f of the sample share about f of their items, so the mean's variance is that of R
    independent splits times 1 + (R - 1) f, and each trial counts as that many fewer items."""
    if a.val == 0 or b.val == 0:
        return True
    p = (a.correct + b.correct) / (a.val + b.val)
    se = math.sqrt(p * (1 - p) * (1 / effective_items(a) + 1 / effective_items(b)))
    return abs(a.val_acc - b.val_acc) <= se


def effective_items(trial: Trial) -> float:
    """Validation items as independent ones: ``val`` over the design effect of repeated splits."""
    per_split = trial.val / trial.repeats
    share = per_split / (per_split + trial.train) if per_split + trial.train else 0.0
    return trial.val / (1 + (trial.repeats - 1) * share)
