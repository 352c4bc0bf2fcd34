"""``recommend``: the main job, from a data path to a ranked, explained, recorded answer.

Read it top to bottom; each step is one call into the module that does that one thing:

1. the data: load, sample, check, fingerprint (:mod:`.data`);
2. what is compared: the candidates and the estimators (:mod:`.candidates`);
3. the run record is opened (:mod:`.run_record`, its one writer) before the first model loads, and
   closed with the result or the failure, so an interrupted run is recorded as such;
4. embedding: one :class:`~.embed.EmbedRequest` for the run, served by the chosen backend
   (:mod:`.embed`), each row scored as it comes (:class:`~.scoring.Scoreboard`) and recorded;
5. the raw-input baseline (:mod:`.baselines`) and the history signal (:mod:`.history`);
6. the answer: standings, confidence, rows, verdicts, the transfer plan (:mod:`.plan`), the Why
   (:mod:`.answer`).
"""

from __future__ import annotations

import platform
import sys
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from tlreg.registry import ModelRecord, Registry
from tlreg.registry.errors import BadInputError, TlregError
from tlreg.registry.runs import Run

from . import answer, defaults
from .answer import HISTORY
from .baselines import raw_baseline
from .cache import FeatureCache
from .candidates import choose_estimators, loadable, require_candidates, select_candidates
from .data import Dataset, fingerprint, load_dataset, require_scorable, sample
from .embed import Backend, EmbedRequest, EmbedSettings, default_workers, make_backend
from .embed.request import Features, Job, jobs_for
from .embed.stages import StageEmbedder
from .errors import StorageError
from .halving import STAGE_ROUNDS, Halving, check_budget, halve, stage_indices
from .halving import plan as plan_budget
from .history import PROBES, compute_signature, history_signal
from .memo import Memo
from .progress import Reporter, Silent
from .result import RecommendResult
from .run_record import RunRecorder
from .scoring import Scoreboard
from .trials import Trial, run_trials


@dataclass
class Options:
    """Every option of ``tlreg recommend`` (the CLI's flags are these fields), recorded with each run."""

    models: list[str] | None = None
    tags: list[str] = field(default_factory=list)
    max_params: int | None = None
    estimators: list[str] | None = None
    aggregation: str | None = None  # None: defaults.AGGREGATION
    per_class: int | None = None
    max_samples: int | None = None
    seed: int = defaults.SEED
    text_col: str | None = None
    image_col: str | None = None
    label_col: str | None = None
    strict: bool = False
    device: str | None = None  # None: defaults.DEVICE
    batch_size: int = defaults.BATCH_SIZE
    workers: int | None = None
    top: int | None = None
    baselines: bool = True
    bootstrap: int = defaults.BOOTSTRAP
    history: bool = True
    trust_remote_code: bool = False
    backend: str = defaults.BACKEND
    ray_address: str | None = None
    include_unavailable: bool = False
    plan: str = "pick"  # pick | all | none: which candidates get a transfer plan and learning curve
    budget: str = defaults.BUDGET  # auto | full: successive halving from HALVING_FROM candidates (.halving)
    trials: int = defaults.TRIALS  # short fine-tunes of the top K before the pick (.trials); 0: none
    trial_repeats: int = defaults.TRIAL_REPEATS  # ... each on this many splits, ranked by the mean
    trial_epochs: int = defaults.TRIAL_EPOCHS  # ... each for this many epochs (at least 25 steps each)

    @property
    def method(self) -> str:
        """The aggregation this run combines the estimators with (``aggregation``, else the default)."""
        return self.aggregation or defaults.AGGREGATION


def recommend(
    data: str | Path,
    *,
    registry: Registry | None = None,
    db: str | None = None,
    cache: FeatureCache | None = None,
    reporter: Reporter | None = None,
    command: str = "",
    record: bool = True,
    reuse_answers: bool = True,
    **options: Any,
) -> RecommendResult:
    """Rank the registered models on ``data``, best first, and record the decision.

    ``options`` are the fields of :class:`Options` (``models``, ``estimators``, ``per_class``, ...).
    ``record=False`` writes no run record (``tlreg runs verify`` recomputes a run that way), and
    ``reuse_answers=False`` recomputes the resampling and the learning curve even where an earlier run
    on the same features cached them (:mod:`.memo`; verify does).
    Raises :class:`~tlreg.advisor.errors.DatasetError` for bad data (exit 2 in the CLI) and
    :class:`~tlreg.advisor.errors.NoCandidatesError` when no model could be evaluated (exit 3).
    """
    opts = Options(**options)
    if opts.plan not in answer.PLAN_CHOICES:
        raise BadInputError(
            f"Unknown --plan {opts.plan!r}.", hint=f"Use one of: {', '.join(answer.PLAN_CHOICES)}."
        )
    check_budget(opts.budget)
    if opts.bootstrap < 0:
        raise BadInputError(f"--bootstrap must be 0 (off) or a number of rounds, not {opts.bootstrap}.")
    if opts.trials < 0:
        raise BadInputError(f"--trials must be 0 (none) or a number of candidates, not {opts.trials}.")
    if opts.trial_repeats < 1:
        raise BadInputError(f"--trial-repeats must be 1 or more splits, not {opts.trial_repeats}.")
    if opts.trial_epochs < 1:
        raise BadInputError(f"--trial-epochs must be 1 or more epochs, not {opts.trial_epochs}.")
    if opts.method not in defaults.AGGREGATIONS:
        raise BadInputError(
            f"Unknown --aggregation {opts.method!r}.", hint=f"Use one of: {', '.join(defaults.AGGREGATIONS)}."
        )
    registry = registry or Registry(db)
    recorder = RunRecorder(registry, record=record)
    warns: list[str] = []
    sub, fp = _read_data(data, opts, warns)

    names = choose_estimators(opts.estimators, sub.task)
    candidates = select_candidates(
        registry, modality=sub.modality, models=opts.models, tags=opts.tags, max_params=opts.max_params
    )
    require_candidates(
        candidates, modality=sub.modality, filtered=bool(opts.models or opts.tags or opts.max_params)
    )
    candidates, left_out = loadable(registry, candidates, include=opts.include_unavailable, warns=warns)
    request = EmbedRequest(
        registry,
        sub,
        fp,
        cache=cache or FeatureCache(),
        device=opts.device or defaults.DEVICE,  # resolved when a model runs (torch): none may
        settings=EmbedSettings(
            seed=opts.seed,
            batch_size=opts.batch_size,
            workers=opts.workers if opts.workers is not None else default_workers(sub.modality),
            trust_remote_code=opts.trust_remote_code,
        ),
        reporter=reporter or Silent(),
    )
    run = _new_run(recorder.new_id(), data, opts, request, command)
    backend = make_backend(opts.backend, address=opts.ray_address)
    recorder.start(run)
    try:
        memo = Memo(request.cache) if reuse_answers else None
        result = _decide(request, run, candidates, left_out, names, opts, backend, recorder, warns, memo)
    except BaseException as exc:
        recorder.fail(exc)
        raise
    recorder.finish(result, device=request.device_used)
    if opts.top:  # show the best ``top`` only; the run record keeps the whole ranking
        result.ranking = result.ranking[: opts.top]
    return result


def _read_data(data: str | Path, opts: Options, warns: list[str]) -> tuple[Dataset, str]:
    """The sample ``recommend`` ranks on, and its fingerprint; the data's warnings join ``warns``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        full = load_dataset(
            data,
            text_col=opts.text_col,
            image_col=opts.image_col,
            label_col=opts.label_col,
            strict=opts.strict,
        )
        sub = sample(full, per_class=opts.per_class, max_samples=opts.max_samples, seed=opts.seed)
        require_scorable(sub, per_class=opts.per_class)
        fp = fingerprint(sub)
    warns += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return sub, fp


def _new_run(run_id: str, data: str | Path, opts: Options, request: EmbedRequest, command: str) -> Run:
    sub = request.sample
    versions = {name: version(name) for name in ("tlreg", "torch", "timm", "transformers", "numpy")}
    return Run(
        id=run_id,
        command=command or "python: tlreg.advisor.recommend(...)",
        options=dict(vars(opts)),
        environment={
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "device": str(request.device),  # as asked (auto); the one used is in the result
            **versions,
        },
        data_path=str(Path(data).resolve()),
        fingerprint=request.fingerprint,
        modality=sub.modality,
        task=sub.task,
        n_samples=len(sub),
        classes=sub.classes,
        sample_ids=list(sub.ids),
    )


def _decide(
    request: EmbedRequest,
    run: Run,
    candidates: list[ModelRecord],
    left_out: list[dict[str, str]],
    names: list[str],
    opts: Options,
    backend: Backend,
    recorder: RunRecorder,
    warns: list[str],
    memo: Memo | None,
) -> RecommendResult:
    """Embed, score and record every row, add the baselines and the history, then answer; ``left_out``
    (what cannot be loaded now) is recorded as skipped, like a model that fails to load."""
    sub = request.sample
    board = Scoreboard(names, sub.labels, sub.task, warns, memo)
    for row in left_out:
        board.skip(row["ref"], row["reason"])
        recorder.skipped(row["ref"], row["reason"])
    stages = stage_indices(sub.labels, sub.task, len(sub), seed=opts.seed)
    budget = plan_budget(opts.budget, len(candidates), stages)
    if budget.active:
        embedded = _halved(request, candidates, names, opts, backend, budget, stages, memo)
        for drop in budget.dropped:
            recorder.dropped(drop["ref"], drop["reason"])
    else:
        embedded = backend.run(request, jobs_for(candidates, baselines=opts.baselines))
    n = len(sub)
    budget.full_forward_passes = n * len(candidates) * (2 if opts.baselines else 1)
    for job, outcome in embedded:
        if isinstance(outcome, TlregError):
            board.skip(job.label, str(outcome))
            recorder.skipped(job.label, str(outcome))
            request.reporter.note(f"skipped {job.label}: {outcome}")
            continue
        if not budget.active or not job.pretrained:  # the halving counted its candidates' own
            budget.forward_passes += 0 if outcome.from_cache else n
        scored = board.score(outcome, job.record)
        recorder.candidate(
            outcome, scored, params=job.record.params, baseline_of=None if job.pretrained else job.record.ref
        )
    refs = board.scored_candidates([c for c in candidates if c.ref in board.scores])

    raw_label = None
    if opts.baselines:
        raw = raw_baseline(sub, request.fingerprint, cache=request.cache, seed=opts.seed)
        raw_label = raw.label
        recorder.candidate(raw, board.score(raw), params=None, baseline_of="*")

    ranked_by = list(names)
    history: dict[str, Any] = {}
    if opts.history and sub.task == "classification":
        history = _history(request, run, board, refs, recorder)
        if history.get("used"):
            ranked_by.append(HISTORY)

    standing = answer.standings(board, refs, ranked_by, method=opts.method)
    baselines = answer.baseline_labels(board, candidates)
    conf = answer.resample(board, refs, baselines, standing, rounds=opts.bootstrap, seed=opts.seed, memo=memo)
    tried, asked = _trials(request, run, board, standing, opts, memo) if opts.trials else ({}, [])
    ranked_rows = answer.rows(board, standing, conf, baselines, trials=tried)
    answer.judge(ranked_rows[0], board, conf, raw_label=raw_label, n_classes=sub.num_classes)
    answer.plan_rows(ranked_rows[0], board, which=opts.plan, seed=opts.seed, memo=memo)
    answer.warn_if_undecided(standing, conf, warns, ranking=ranked_rows[0], trials=tried)
    result = answer.answer(
        run, sub, board, standing, conf, ranked_rows, history=history, trials=tried, tried=asked
    )
    result.budget = budget.to_dict()
    return result


def _halved(
    request: EmbedRequest,
    candidates: list[ModelRecord],
    names: list[str],
    opts: Options,
    backend: Backend,
    budget: Halving,
    stages: list[np.ndarray],
    memo: Memo | None,
) -> list[tuple[Job, Features | TlregError]]:
    """Successive halving (:mod:`.halving`): the survivors' features on the whole sample and their
    baselines, and the candidates that could not be embedded; ``budget`` gets the stages."""
    out: list[tuple[Job, Features | TlregError]] = []
    records = {c.ref: c for c in candidates}
    embedder = StageEmbedder(
        request, backend, records, stages, on_error=lambda job, exc: out.append((job, exc))
    )
    sub = request.sample
    alive, budget.stages = halve(
        list(records),
        stages,
        embedder.features_on,
        sub.labels,
        sub.task,
        names,
        {r: float(c.params or 0) for r, c in records.items()},
        rounds=STAGE_ROUNDS if opts.bootstrap else 0,
        seed=opts.seed,
        method=opts.method,
        memo=memo,
    )
    for ref in alive:
        feats = embedder.whole(ref)
        if feats is not None:
            out.append((Job(records[ref]), feats))
    budget.forward_passes = embedder.forward_passes
    if opts.baselines:
        survivors = [records[r] for r in alive if r not in embedder.failed]
        out += backend.run(request, [Job(record, pretrained=False) for record in survivors])
    return out


def _trials(
    request: EmbedRequest,
    run: Run,
    board: Scoreboard,
    standing: answer.Standings,
    opts: Options,
    memo: Memo | None,
) -> tuple[dict[str, Trial], list[str]]:
    """Short fine-tunes of the top ``opts.trials`` candidates (:mod:`.trials`), and the candidates they
    were asked of; a candidate that cannot be fine-tuned is said in a warning and ranks after those
    that were."""
    if board.task != "classification":
        board.warns.append(
            "--trials: a fine-tune trains a classifier and this data has no classes; none ran."
        )
        return {}, []
    if len(standing.ranked) < 2:
        return {}, []
    top = standing.ranked[: opts.trials]
    out, failed = run_trials(
        request,
        [board.records[r] for r in top],
        data_path=run.data_path,
        columns={"text_col": opts.text_col, "image_col": opts.image_col, "label_col": opts.label_col},
        revisions={r: board.features[r].revision for r in top},
        seed=opts.seed,
        memo=memo,
        repeats=opts.trial_repeats,
        epochs=opts.trial_epochs,
    )
    for ref, reason in failed.items():
        board.warns.append(
            f"--trials: {ref} could not be fine-tuned ({reason}); it ranks after those that were."
        )
    return out, top


def _history(
    request: EmbedRequest, run: Run, board: Scoreboard, refs: list[str], recorder: RunRecorder
) -> dict[str, Any]:
    """Record this dataset's signature and, where the history knows similar datasets, add its signal
    to the candidates' scores; what it found, for the answer."""
    sub = request.sample
    probe = PROBES.get(sub.modality)
    try:
        signature = compute_signature(
            request.registry,
            sub,
            request.fingerprint,
            cache=request.cache,
            device=request.device,
            data_path=run.data_path,
            probe_features=board.features[probe].features if probe in board.features else None,
        )
    except StorageError:
        raise  # a full disk stops the run here as anywhere else
    except TlregError as exc:
        board.warns.append(f"no dataset signature (history) for this run: {exc}")
        return {}
    recorder.signature(signature)
    signal = history_signal(request.registry, signature, refs)
    if signal.usable:
        for r in refs:
            board.scores[r][HISTORY] = signal.scores[r]
    return signal.detail(signature)
