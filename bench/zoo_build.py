"""Building the transfer-quality ground truth: tasks, the model zoo, features, scores, fine-tunes.

Each stage caches its output in the work folder (written atomically, keyed by what produced it),
so an interrupted build resumes where it stopped and a rerun costs nothing. Everything the
estimators see goes through tlreg's own path: the zoo is registered in a registry of its own
(``Registry.add_ref(folder)``, ``import_from("bundled")``), the target data is an image folder read by
``load_dataset`` / ``sample`` / ``fingerprint``, and features come from ``features_for`` with a
``FeatureCache``, exactly as ``tlreg recommend`` gets them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zoo_tasks
import zoo_train
from jsonio import read_json
from PIL import Image
from tlreg.advisor import estimators as est
from tlreg.advisor.cache import FeatureCache
from tlreg.advisor.data import Dataset, fingerprint, load_dataset, sample
from tlreg.advisor.embed import EmbedRequest, EmbedSettings, features_for
from tlreg.advisor.errors import EstimatorError
from tlreg.advisor.estimators.ncti import components as ncti_components
from tlreg.registry import Registry
from torch import nn
from zoo_train import Budget, stable_seed, write_json

LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
#: Scores computed from components the build already has (identical by the estimators' definitions).
DERIVED = {"etran": ("etran_energy", "etran_lda", "etran_svd"), "ncti": ("ncti_seli", "ncti_ncc", "ncti_vc")}


@dataclass(frozen=True)
class BuildConfig:
    """Every knob of the build; recorded in the results file."""

    seed: int = 0
    source_train: int = 4000
    source_val: int = 500
    target_train: int = 1500
    target_test: int = 600
    zoo_px: int = 32
    lite_px: int = 64
    pretrain: Budget = field(default_factory=lambda: Budget(400, 64, 2e-3, 0.05, 20))
    finetune: Budget = field(default_factory=lambda: Budget(120, 32, 1e-3, 0.01, 10))
    archs: tuple[str, ...] = tuple(zoo_train.ARCHS)
    sources: tuple[str, ...] = tuple(zoo_tasks.SOURCES)
    targets: tuple[str, ...] = tuple(zoo_tasks.TARGETS)
    lites: tuple[str, ...] = LITES
    #: the seed noise, measured as in the Hub-like build (``hub_noise``): each target's best this many
    #: models are fine-tuned again with each extra seed; on a target whose repeats moved more than
    #: ``noisy_pp`` points on average, every model is, with ``noisy_seeds`` seeds in all (the first
    #: included), and its ground truth is the mean over the seeds
    repeat_top: int = 3
    extra_seeds: tuple[int, ...] = (1,)
    noisy_pp: float = 2.0
    noisy_seeds: int = 4
    #: the Hub-like build's last noise stage (``HubConfig.truth_sd_pp``); None: this build's noisy
    #: targets stop at ``noisy_seeds``, as its committed results did
    truth_sd_pp: float | None = None
    max_seeds: int = 16

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pretrain": self.pretrain.to_dict(), "finetune": self.finetune.to_dict()}


def quick_config(seed: int = 0) -> BuildConfig:
    """A smoke-run build: 2 architectures, 2 sources, 3 targets, a few steps (minutes, not an hour)."""
    return BuildConfig(
        seed=seed,
        source_train=400,
        source_val=100,
        target_train=300,
        target_test=100,
        pretrain=Budget(30, 32, 2e-3, 0.05, 5),
        finetune=Budget(15, 32, 1e-3, 0.01, 3),
        archs=("resnet", "convnext"),
        sources=("digits", "shuffled"),
        targets=("digits", "counting", "photos"),
        lites=("efficientnet_lite0",),
        repeat_top=2,
        noisy_seeds=2,
    )


Log = Callable[[str], None]


class Stopwatch:
    """Wall and CPU seconds per stage of the work actually done (cache reads are not counted)."""

    def __init__(self, spent: dict[str, dict[str, float]] | None = None) -> None:
        self.spent: dict[str, dict[str, float]] = spent or {}

    def add(self, stage: str, seconds: float, cpu_seconds: float) -> None:
        entry = self.spent.setdefault(stage, {"seconds": 0.0, "cpu_seconds": 0.0})
        entry["seconds"] += seconds
        entry["cpu_seconds"] += cpu_seconds

    def merge(self, other: Mapping[str, Mapping[str, float]]) -> None:
        for stage, entry in other.items():
            self.add(stage, entry["seconds"], entry["cpu_seconds"])


def _timed(watch: Stopwatch, stage: str, fn: Callable[[], Any]) -> Any:
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    watch.add(stage, time.perf_counter() - start, time.process_time() - cpu)
    return out


# --- tasks ----------------------------------------------------------------------------------------


def task_data(work: Path, cfg: BuildConfig, role: str, name: str, watch: Stopwatch) -> zoo_tasks.TaskData:
    """A task's images, generated once per (role, name, seed, sizes) and cached as .npz."""
    n_train, n_test = (
        (cfg.source_train, cfg.source_val) if role == "source" else (cfg.target_train, cfg.target_test)
    )
    seed = stable_seed(cfg.seed, role, name)
    path = work / "tasks" / f"{role}-{name}-v{zoo_tasks.VERSION}-{seed}-{n_train}-{n_test}.npz"
    if not path.exists():
        spec = (zoo_tasks.SOURCES if role == "source" else zoo_tasks.TARGETS)[name]
        data = _timed(watch, "tasks", lambda: spec.make(seed=seed, n_train=n_train, n_test=n_test))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(
            tmp,
            classes=np.array(data.classes),
            x_train=data.x_train,
            y_train=data.y_train,
            x_test=data.x_test,
            y_test=data.y_test,
        )
        tmp.replace(path)
    arrays = np.load(path)
    return zoo_tasks.TaskData(
        name,
        [str(c) for c in arrays["classes"]],
        *(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")),
    )


def image_folder(root: Path, classes: list[str], x: np.ndarray, y: np.ndarray) -> Path:
    """Write a split as an image folder (``NN-class/00000.png``), atomically; reuse it if present."""
    if root.is_dir():
        return root
    tmp = root.with_name(root.name + ".tmp")
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        folder = tmp / f"{int(label):02d}-{classes[int(label)]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
    tmp.rename(root)
    return root


# --- the zoo --------------------------------------------------------------------------------------


def zoo_ids(cfg: BuildConfig) -> list[str]:
    """Model ids: ``arch-source`` (pretrained here), ``arch-random`` (untrained), ``lite-imagenet``."""
    ids = [f"{a}-{s}" for a in cfg.archs for s in cfg.sources]
    return ids + [f"{a}-random" for a in cfg.archs] + [f"{lite}-imagenet" for lite in cfg.lites]


def model_key(cfg: BuildConfig) -> int:
    """What a zoo model depends on besides its id: a changed recipe builds a new folder."""
    recipe = (cfg.seed, zoo_tasks.VERSION, cfg.source_train, cfg.source_val, cfg.zoo_px, cfg.lite_px)
    return stable_seed(*recipe, *sorted(cfg.pretrain.to_dict().items()))


def model_folder(work: Path, cfg: BuildConfig, model_id: str) -> Path:
    return work / "models" / f"{model_id}-{model_key(cfg)}"


def build_model(
    work: Path, cfg: BuildConfig, model_id: str, registry: Registry, watch: Stopwatch, log: Log
) -> Path:
    """The model's saved folder: pretrained on its source, untrained, or the bundled ImageNet weights."""
    folder = model_folder(work, cfg, model_id)
    if (folder / "meta.json").exists():
        return folder
    arch, _, source = model_id.partition("-")
    if source == "imagenet":
        record = registry.get(f"pkg:{arch}")
        extractor = registry.load(record.ref)
        meta = {
            "arch": record.architecture,
            "source": "imagenet-1k",
            "bundled_ref": record.ref,
            "imagenet_top1": record.imagenet_top1,
            "input_px": cfg.lite_px,
        }
        return zoo_train.save_model(extractor.module, folder, input_px=cfg.lite_px, model_args={}, meta=meta)
    seed = stable_seed(cfg.seed, "init", model_id)
    model, args = zoo_train.create(arch, num_classes=10, seed=seed)
    meta = {"arch": zoo_train.ARCHS[arch][0], "source": source, "init_seed": seed, "input_px": cfg.zoo_px}
    if source != "random":
        data = task_data(work, cfg, "source", source, watch)
        log(f"pretraining {model_id} on {len(data.x_train)} {source} images")
        start, cpu = time.perf_counter(), time.process_time()
        x, y = zoo_train.to_tensor(data.x_train), torch.as_tensor(data.y_train)
        loss = zoo_train.train(model, x, y, cfg.pretrain, seed=seed)
        val = zoo_train.accuracy(model, zoo_train.to_tensor(data.x_test), torch.as_tensor(data.y_test))
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        watch.add("pretrain", seconds, cpu_seconds)
        meta["pretrain"] = {
            "val_accuracy": val,
            "final_loss": loss,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "budget": cfg.pretrain.to_dict(),
            "n_train": len(data.x_train),
        }
    return zoo_train.save_model(model, folder, input_px=cfg.zoo_px, model_args=args, meta=meta)


# --- per (model, target) --------------------------------------------------------------------------


def score_all(features: np.ndarray, labels: np.ndarray, probs: np.ndarray | None) -> dict[str, Any]:
    """Every classification estimator on one model's features: {name: value | None}, errors, seconds.

    NCTI's three components come from one call of the function the ``ncti_*`` estimators call, and
    the per-model ``etran`` / ``ncti`` sums are added up from their components (the same numbers).
    """
    values: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for info in est.available(task="classification"):
        name = info.name
        if name in DERIVED or name.startswith("ncti_"):
            continue
        if info.needs_source_probs and probs is None:
            continue
        start = time.perf_counter()
        try:
            values[name] = est.score(name, features, labels, source_probs=probs)
        except EstimatorError as exc:
            values[name], errors[name] = None, str(exc)
        seconds[name] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        parts = ncti_components(features, labels, estimator="ncti")
        values.update({f"ncti_{k}": v for k, v in parts.items()})
    except EstimatorError as exc:
        values.update(dict.fromkeys(DERIVED["ncti"]))
        errors["ncti"] = str(exc)
    seconds["ncti"] = time.perf_counter() - start
    for name, parts in DERIVED.items():
        got = [values.get(p) for p in parts]
        values[name] = None if any(v is None for v in got) else float(sum(got))
    return {"scores": values, "errors": errors, "seconds": seconds}


@dataclass
class Target:
    """A target's splits, read through tlreg's dataset code (the order and labels every stage uses)."""

    name: str
    train: Dataset
    test: Dataset
    train_fp: str
    test_fp: str


def load_target(work: Path, cfg: BuildConfig, name: str, watch: Stopwatch) -> Target:
    data = task_data(work, cfg, "target", name, watch)
    seed = stable_seed(cfg.seed, "target", name)
    root = work / "targets" / f"{name}-v{zoo_tasks.VERSION}-{seed}-{cfg.target_train}-{cfg.target_test}"
    splits = []
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        ds = sample(load_dataset(image_folder(root / split, data.classes, x, y)))
        splits += [ds, fingerprint(ds)]
    train, train_fp, test, test_fp = splits
    if train.classes != test.classes:
        raise RuntimeError(
            f"target {name}: train and test classes differ ({train.classes} vs {test.classes})"
        )
    return Target(name, train, test, train_fp, test_fp)


def evaluate_pair(
    work: Path,
    cfg: BuildConfig,
    registry: Registry,
    cache: FeatureCache,
    model_id: str,
    ref: str,
    target: Target,
    watch: Stopwatch,
    log: Log,
) -> dict[str, Any]:
    """Scores, linear probe and fine-tune of one model on one target (each cached on its own)."""
    record = registry.get(ref)
    device = torch.device("cpu")
    feats = {}
    for split, ds, fp in (("train", target.train, target.train_fp), ("test", target.test, target.test_fp)):
        start, cpu = time.perf_counter(), time.process_time()
        request = EmbedRequest(
            registry, ds, fp, cache=cache, device=device, settings=EmbedSettings(batch_size=128, workers=0)
        )
        feats[split] = features_for(request, record)
        if not feats[split].from_cache:
            watch.add("features", time.perf_counter() - start, time.process_time() - cpu)
    labels_train, labels_test = np.asarray(target.train.labels), np.asarray(target.test.labels)
    base = work / "pairs" / target.name / model_id
    key = f"{feats['train'].cache_key[:16]}-{feats['test'].cache_key[:16]}"

    scores_path = base / f"scores-{key}-{len(est.available(task='classification'))}.json"
    if not scores_path.exists():
        out = _timed(
            watch, "scores", lambda: score_all(feats["train"].features, labels_train, feats["train"].probs)
        )
        write_json(scores_path, out)
    scored = read_json(scores_path)

    probe_path = base / f"probe-{key}.json"
    if not probe_path.exists():
        seed = stable_seed(cfg.seed, "probe", model_id, target.name)
        train_f, test_f = feats["train"].features, feats["test"].features
        result = _timed(
            watch,
            "probe",
            lambda: zoo_train.linear_probe(train_f, labels_train, test_f, labels_test, seed=seed),
        )
        write_json(probe_path, result)
    probe = read_json(probe_path)

    ft_path = base / f"finetune-{key}-{stable_seed(*sorted(cfg.finetune.to_dict().items()))}.json"
    if not ft_path.exists():
        seed = stable_seed(cfg.seed, "finetune", model_id, target.name)
        log(f"fine-tuning {model_id} on {target.name}")
        result = finetune_on(registry, ref, target, cfg.finetune, seed=seed, watch=watch)
        write_json(ft_path, {**result, "seed": seed, "budget": cfg.finetune.to_dict()})
    finetuned = read_json(ft_path)
    return {
        "model": model_id,
        "target": target.name,
        "finetune_acc": finetuned["accuracy"],
        "finetune_final_loss": finetuned["final_loss"],
        "probe_acc": probe["accuracy"],
        "finetune_seed": finetuned["seed"],
        "probe_seed": stable_seed(cfg.seed, "probe", model_id, target.name),
        "scores": scored["scores"],
        "errors": scored["errors"],
        "seconds": {
            "finetune": finetuned["seconds"],
            "probe": probe["seconds"],
            "scores": sum(scored["seconds"].values()),
        },
        "estimator_seconds": scored["seconds"],
    }


def finetune_inputs(
    registry: Registry, ref: str, target: Target
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The registered model's module and the target's train and test images through its own
    preprocessor: what every fine-tune of the benchmarks starts from (full, partial, re-run)."""
    extractor = registry.load(ref)
    pre = extractor.preprocessor
    x_train = pre.collate([pre(p) for p in target.train.items])
    x_test = pre.collate([pre(p) for p in target.test.items])
    return extractor.module, x_train, x_test


def finetune_on(
    registry: Registry, ref: str, target: Target, budget: Budget, *, seed: int, watch: Stopwatch
) -> dict[str, Any]:
    """A full fine-tune of the registered model on the target's training split, scored on its test
    split (``zoo_train.finetune``; the seconds go to ``watch``'s "finetune" stage)."""
    module, x_train, x_test = finetune_inputs(registry, ref, target)
    return _timed(
        watch,
        "finetune",
        lambda: zoo_train.finetune(
            module,
            len(target.train.classes or []),
            x_train,
            np.asarray(target.train.labels),
            x_test,
            np.asarray(target.test.labels),
            budget,
            seed=seed,
        ),
    )


def result_file(work: Path, target: Target, model_id: str, kind: str, budget: Budget) -> Path:
    """Where one more result of ``kind`` on (model, target) is cached: keyed by the target's splits and
    the fine-tuning budget, so a changed target or budget is computed afresh (both builds)."""
    budget_key = stable_seed(*sorted(budget.to_dict().items()))
    name = f"{kind}-{target.train_fp[:16]}-{target.test_fp[:16]}-{budget_key}.json"
    return work / "pairs" / target.name / model_id / name


def repeat_finetune(
    work: Path,
    registry: Registry,
    ref: str,
    model_id: str,
    target: Target,
    budget: Budget,
    *,
    seed: int,
    extra: int,
    watch: Stopwatch,
) -> dict[str, Any]:
    """One more full fine-tune of (model, target) with seed number ``extra`` (cached): the repeats
    that measure a build's seed noise (``hub_noise``; both builds)."""
    path = result_file(work, target, model_id, f"repeat{extra}", budget)
    if not path.exists():
        result = finetune_on(registry, ref, target, budget, seed=seed, watch=watch)
        write_json(path, {**result, "seed": seed, "extra": extra, "model": model_id, "target": target.name})
    return read_json(path)


# --- jobs for the worker processes ---------------------------------------------------------------


def init_worker() -> None:
    """One thread per worker process: on a shared machine, processes that each use one core run far
    faster than one process whose threads wait for each other (measured here: 5-8x)."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


@functools.cache
def _registry(work: Path) -> Registry:
    return Registry(f"sqlite:///{work / 'registry.db'}")


@functools.cache
def _target(work: Path, cfg: BuildConfig, name: str) -> Target:
    return load_target(work, cfg, name, Stopwatch())


def model_job(work: Path, cfg: BuildConfig, model_id: str) -> tuple[str, dict[str, Any]]:
    """Build one zoo model (in a worker); returns its folder and the time it took."""
    watch = Stopwatch()
    folder = build_model(work, cfg, model_id, _registry(work), watch, lambda _m: None)
    return str(folder), watch.spent


def pair_job(
    work: Path, cfg: BuildConfig, model_id: str, ref: str, target: str
) -> tuple[dict[str, Any], dict]:
    """Scores, probe and fine-tune of one (model, target) (in a worker), and the time they took."""
    watch = Stopwatch()
    cache = FeatureCache(work / "cache")
    pair = evaluate_pair(
        work, cfg, _registry(work), cache, model_id, ref, _target(work, cfg, target), watch, lambda _m: None
    )
    return pair, watch.spent


def repeat_job(
    work: Path, cfg: BuildConfig, model_id: str, ref: str, target: str, extra: int
) -> tuple[dict[str, Any], dict]:
    """One more fine-tune of (model, target) with seed number ``extra`` (in a worker)."""
    watch = Stopwatch()
    data = _target(work, cfg, target)
    seed = stable_seed(cfg.seed, "finetune", model_id, target, "repeat", extra)
    result = repeat_finetune(
        work, _registry(work), ref, model_id, data, cfg.finetune, seed=seed, extra=extra, watch=watch
    )
    return result, watch.spent
