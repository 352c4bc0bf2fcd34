"""Building the Hub-like ground truth (``bench/hub_quality.py``): descendants, targets, fine-tunes.

Stages, each cached in the work folder (written atomically, keyed by what produced it), so an
interrupted build resumes where it stopped and a rerun costs nothing:

1. **models.** The three bundled ImageNet EfficientNet-Lites saved at the benchmark's input size
   (``LITE-imagenet``); each fine-tuned on every source task (``LITE-SOURCE``: the Hub's descendants);
   each architecture randomly initialised (``LITE-random``: the negative-transfer truth's baseline).
   Every model is a ``timm.models.save_for_hf`` folder registered with ``tlreg registry add``.
2. **pairs.** For every (model, target): tlreg's features (``features_for`` through the feature
   cache, as ``recommend`` gets them), every classification estimator's score, a linear probe and a
   full fine-tune under the fixed budget (``zoo_build.evaluate_pair``, shared with the first
   benchmark).
3. **raw.** Each target's raw-pixel baseline, exactly as ``recommend`` computes it, scored and probed.
4. **repeats.** Each target's top candidates fine-tuned again with other seeds: the build's noise;
   on a target where they moved more than ``noisy_pp`` points, every candidate with ``noisy_seeds``
   seeds in all, then with as many more as one seed's pooled sd needs for a mean within
   ``truth_sd_pp`` points (``bench/hub_noise.py``).
5. **resamples.** Each target's resampling rounds, as ``recommend``'s confidence draws them, for every
   candidate and baseline.

The stages' jobs (run in worker processes by ``bench/hub_run.py``) are in ``bench/hub_jobs.py``.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hub_tasks
import numpy as np
import torch
import zoo_build as zb
import zoo_train
from tlreg.advisor.data import fingerprint, load_dataset, sample
from tlreg.registry import Registry
from zoo_train import Budget, stable_seed

LITES = zb.LITES
ORIGINAL, RANDOM = "imagenet", "random"


@dataclass(frozen=True)
class HubConfig:
    """Every knob of the build; recorded in the results file."""

    seed: int = 0
    source_train: int = 3000
    source_val: int = 300
    target_train: int = 1000
    target_test: int = 500
    px: int = 64
    #: fine-tuning an ImageNet Lite on a source task: how the Hub's descendants are made
    descend: Budget = field(default_factory=lambda: Budget(200, 32, 1e-3, 0.01, 20))
    #: the fixed budget every model gets on every target (the ground truth)
    finetune: Budget = field(default_factory=lambda: Budget(60, 32, 1e-3, 0.01, 6))
    lites: tuple[str, ...] = LITES
    sources: tuple[str, ...] = tuple(hub_tasks.SOURCES)
    targets: tuple[str, ...] = tuple(hub_tasks.TARGETS)
    #: each target's best this many candidates are fine-tuned again with each extra seed
    repeat_top: int = 3
    extra_seeds: tuple[int, ...] = (1,)
    #: a target whose top repeats differ from their first fine-tune by more than this many points on
    #: average is too noisy for one seed to name its best model: every candidate is fine-tuned there
    #: with ``noisy_seeds`` seeds in all (the first included), and its ground truth is the mean over
    #: the seeds (``hub_noise.truth``); two seeds left 1.6-1.9 points of noise in each model's truth
    noisy_pp: float = 2.0
    noisy_seeds: int = 4
    #: then, on each noisy target, every candidate gets the fewest seeds (at most ``max_seeds``) whose
    #: mean's sd is at most ``truth_sd_pp`` points, one seed's sd measured on its ``noisy_seeds``
    #: (``hub_noise.seed_repeats``): four seeds left photos' truth 1.4-1.9 points of noise per model,
    #: too much for the advice's 1-point regret goal (fixed before the seeds run; None: no such stage)
    truth_sd_pp: float | None = 1.0
    max_seeds: int = 16

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "descend": self.descend.to_dict(), "finetune": self.finetune.to_dict()}


def config_from_dict(doc: dict[str, Any]) -> HubConfig:
    """The configuration a results document records (``HubConfig.to_dict``), rebuilt."""
    fields = dict(doc)
    for budget in ("descend", "finetune"):
        fields[budget] = Budget(**fields[budget])
    for seq in ("lites", "sources", "targets", "extra_seeds"):
        fields[seq] = tuple(fields[seq])
    # a document older than the knob averaged its noisy targets over the extra seeds only
    fields.setdefault("noisy_seeds", 1 + len(fields["extra_seeds"]))
    # ... and one older than the sd rule stopped at noisy_seeds
    fields.setdefault("truth_sd_pp", None)
    return HubConfig(**fields)


def quick_config(seed: int = 0) -> HubConfig:
    """A smoke run: one backbone, two sources, two targets, a few steps (a few minutes)."""
    return HubConfig(
        seed=seed,
        source_train=200,
        source_val=50,
        target_train=120,
        target_test=60,
        descend=Budget(8, 32, 1e-3, 0.01, 2),
        finetune=Budget(6, 32, 1e-3, 0.01, 2),
        lites=("efficientnet_lite0",),
        sources=("digits", "shuffled"),
        targets=("digits", "photos"),
        repeat_top=2,
        noisy_seeds=2,
        max_seeds=3,
    )


# --- ids ------------------------------------------------------------------------------------------


def candidate_ids(cfg: HubConfig) -> list[str]:
    """What a user chooses among: every descendant, then the three ImageNet originals."""
    return [f"{lite}-{s}" for lite in cfg.lites for s in cfg.sources] + [
        f"{lite}-{ORIGINAL}" for lite in cfg.lites
    ]


def baseline_ids(cfg: HubConfig) -> list[str]:
    return [f"{lite}-{RANDOM}" for lite in cfg.lites]


def split_id(model_id: str) -> tuple[str, str]:
    lite, _, source = model_id.partition("-")
    return lite, source


def model_key(cfg: HubConfig) -> int:
    recipe = (cfg.seed, hub_tasks.VERSION, cfg.source_train, cfg.source_val, cfg.px)
    return stable_seed(*recipe, *sorted(cfg.descend.to_dict().items()))


def model_folder(work: Path, cfg: HubConfig, model_id: str) -> Path:
    return work / "models" / f"{model_id}-{model_key(cfg)}"


# --- tasks ----------------------------------------------------------------------------------------


def task_data(work: Path, cfg: HubConfig, role: str, name: str, watch: zb.Stopwatch) -> Any:
    """A task's images, generated once per (role, name, seed, sizes) and cached as .npz."""
    n_train, n_test = (
        (cfg.source_train, cfg.source_val) if role == "source" else (cfg.target_train, cfg.target_test)
    )
    seed = stable_seed(cfg.seed, "hub", role, name)
    path = work / "tasks" / f"{role}-{name}-v{hub_tasks.VERSION}-{seed}-{n_train}-{n_test}.npz"
    if not path.exists():
        spec = (hub_tasks.SOURCES if role == "source" else hub_tasks.TARGETS)[name]
        data = zb._timed(watch, "tasks", lambda: spec.make(seed=seed, n_train=n_train, n_test=n_test))
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
    return hub_tasks.zt.TaskData(
        name,
        [str(c) for c in arrays["classes"]],
        *(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")),
    )


def load_target(work: Path, cfg: HubConfig, name: str, watch: zb.Stopwatch) -> zb.Target:
    """A target's splits as image folders, read through tlreg's dataset code."""
    data = task_data(work, cfg, "target", name, watch)
    seed = stable_seed(cfg.seed, "hub", "target", name)
    root = work / "targets" / f"{name}-v{hub_tasks.VERSION}-{seed}-{cfg.target_train}-{cfg.target_test}"
    splits = []
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        ds = sample(load_dataset(zb.image_folder(root / split, data.classes, x, y)))
        splits += [ds, fingerprint(ds)]
    train, train_fp, test, test_fp = splits
    if train.classes != test.classes:
        raise RuntimeError(f"target {name}: train and test classes differ")
    return zb.Target(name, train, test, train_fp, test_fp)


# --- models ---------------------------------------------------------------------------------------


def build_original(work: Path, cfg: HubConfig, lite: str, registry: Registry) -> Path:
    """The bundled ImageNet Lite saved at the benchmark's input size (the descendants' parent)."""
    folder = model_folder(work, cfg, f"{lite}-{ORIGINAL}")
    if (folder / "meta.json").exists():
        return folder
    record = registry.get(f"pkg:{lite}")
    meta = {
        "arch": record.architecture,
        "backbone": lite,
        "source": "imagenet-1k",
        "bundled_ref": record.ref,
        "imagenet_top1": record.imagenet_top1,
        "input_px": cfg.px,
    }
    module = registry.load(record.ref).module
    return zoo_train.save_model(module, folder, input_px=cfg.px, model_args={}, meta=meta)


def build_random(work: Path, cfg: HubConfig, lite: str) -> Path:
    """The architecture randomly initialised (seeded), with the original's 1000-class head."""
    import timm

    folder = model_folder(work, cfg, f"{lite}-{RANDOM}")
    if (folder / "meta.json").exists():
        return folder
    seed = stable_seed(cfg.seed, "init", lite)
    torch.manual_seed(seed)
    module = timm.create_model(f"tf_{lite}", num_classes=1000)
    meta = {"arch": f"tf_{lite}", "backbone": lite, "source": RANDOM, "init_seed": seed, "input_px": cfg.px}
    return zoo_train.save_model(module, folder, input_px=cfg.px, model_args={}, meta=meta)


def sibling_folder(work: Path, cfg: HubConfig, model_id: str, sibling: int) -> Path:
    """Where a descendant is saved: the build's own (``sibling`` 0) among the models, another made by
    the same recipe with another seed (``bench/descent_noise.py``) apart from them."""
    if sibling == 0:
        return model_folder(work, cfg, model_id)
    return work / "siblings" / f"{model_id}-s{sibling}-{model_key(cfg)}"


def descent_seed(cfg: HubConfig, model_id: str, sibling: int = 0) -> int:
    """The seed of a descendant's fine-tune on its source: the build's own for ``sibling`` 0."""
    if sibling == 0:
        return stable_seed(cfg.seed, "descend", model_id)
    return stable_seed(cfg.seed, "descend", model_id, "sibling", sibling)


def build_descendant(
    work: Path, cfg: HubConfig, model_id: str, watch: zb.Stopwatch, *, sibling: int = 0
) -> Path:
    """``LITE-SOURCE``: the ImageNet original fine-tuned on the source task, saved as the Hub would.
    ``sibling`` k > 0 makes the k-th other checkpoint of the same recipe (only the seed differs)."""
    folder = sibling_folder(work, cfg, model_id, sibling)
    if (folder / "meta.json").exists():
        return folder
    lite, source = split_id(model_id)
    registry = work_registry(work)
    parent = registry.get(f"local-dir:{model_folder(work, cfg, f'{lite}-{ORIGINAL}')}")
    extractor = registry.load(parent.ref)
    data = task_data(work, cfg, "source", source, watch)
    seed = descent_seed(cfg, model_id, sibling)
    start, cpu = time.perf_counter(), time.process_time()
    pre = extractor.preprocessor
    x = zoo_train.preprocess(pre, data.x_train)
    x_val = zoo_train.preprocess(pre, data.x_test)
    module = extractor.module
    torch.manual_seed(seed)
    module.reset_classifier(len(data.classes))
    loss = zoo_train.train(module, x, torch.as_tensor(data.y_train), cfg.descend, seed=seed)
    val = zoo_train.accuracy(module, x_val, torch.as_tensor(data.y_test))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    watch.add("descend", seconds, cpu_seconds)
    meta = {
        "arch": parent.architecture,
        "backbone": lite,
        "parent": f"{lite}-{ORIGINAL}",
        "source": source,
        "source_about": hub_tasks.SOURCES[source].about,
        "source_classes": data.classes,
        "input_px": cfg.px,
        "descend": {
            "val_accuracy": val,
            "final_loss": loss,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "budget": cfg.descend.to_dict(),
            "n_train": len(data.x_train),
            "seed": seed,
            # only on a sibling, so that the build's own models record what they always have
            **({"sibling": sibling} if sibling else {}),
        },
    }
    return zoo_train.save_model(module, folder, input_px=cfg.px, model_args={}, meta=meta)


def register(work: Path, folder: Path) -> str:
    """``tlreg registry add FOLDER`` into the build's registry (the CLI a user would run); the ref."""
    import json

    db = f"sqlite:///{work / 'registry.db'}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tlreg.cli.main",
            "--db",
            db,
            "registry",
            "add",
            str(folder),
            "--tag",
            "hub-bench",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tlreg registry add {folder} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)["model"]["ref"]


@functools.cache
def work_registry(work: Path) -> Registry:
    """The build's registry (``WORK/registry.db``), opened once per process."""
    return Registry(f"sqlite:///{work / 'registry.db'}")
