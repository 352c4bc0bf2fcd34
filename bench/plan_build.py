"""The transfer-plan ground truth (``bench/transfer_plan.py``), built on the Hub-like benchmark's work folder.

For each target's best candidates (by full fine-tune accuracy, from ``bench/hub_quality.py``'s build):

- **partial fine-tunes**: the last 1, 2 and half of the blocks (and everything after them, a new head)
  trained under the same fixed budget as the full fine-tune, the rest frozen with its normalisation
  statistics kept — what ``tlreg finetune --mode partial --unfreeze N`` trains;
- **the depth profile**: tlreg's pooled block features (``tlreg.advisor.depth``) on the training
  split, scored by the default estimators, block by block, with the model's penultimate features
  last;
- **the learning curve**: tlreg's curve (``tlreg.advisor.learning_curve``) from a quarter of the
  training split's cached features, predicting the linear-probe accuracy with all of it.

Every job caches its output in the work folder, so an interrupted build resumes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import hub_build as hb
import hub_jobs
import numpy as np
import torch
import zoo_build as zb
import zoo_train
from jsonio import read_json
from tlreg.advisor.cache import FeatureCache
from tlreg.advisor.embed import EmbedRequest, EmbedSettings, features_for
from zoo_train import stable_seed, write_json

TOP = 5
PROFILE_ESTIMATORS = ("logme", "hscore_shrinkage")
CURVE_FRACTION = 0.25


def unfreeze_counts(n_blocks: int) -> list[int]:
    """The partial modes measured: the last 1, 2 and half (rounded up) of the blocks."""
    return sorted({1, 2, math.ceil(n_blocks / 2)})


def _frozen_norms(module: torch.nn.Module) -> list[torch.nn.Module]:
    """Normalisation layers whose parameters are all frozen: they stay in eval mode while training."""
    norms = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm, torch.nn.GroupNorm)
    return [
        m
        for m in module.modules()
        if isinstance(m, norms) and all(not p.requires_grad for p in m.parameters(recurse=False))
    ]


def partial_job(
    work: Path, cfg: hb.HubConfig, model_id: str, ref: str, target_name: str, unfreeze: int
) -> tuple[dict, dict]:
    """A partial fine-tune of ``model_id`` on the target: the last ``unfreeze`` blocks and the head."""
    from tlreg.advisor.handoff.model import plan

    watch = zb.Stopwatch()
    target = hub_jobs.work_target(work, cfg, target_name)
    path = hub_jobs.pair_file(work, cfg, target, model_id, f"partial{unfreeze}")
    if not path.exists():
        seed = stable_seed(cfg.seed, "finetune", model_id, target.name)  # the full fine-tune's seed
        module, x_train, x_test = zb.finetune_inputs(hb.work_registry(work), ref, target)
        torch.manual_seed(seed)
        module.reset_classifier(len(target.train.classes or []))
        chosen = plan(module, "partial", unfreeze=unfreeze, ref=model_id)
        trainable = set(chosen.trainable)
        for name, param in module.named_parameters():
            param.requires_grad_(name in trainable)

        def run() -> dict[str, float]:
            loss = zoo_train.train(
                module,
                x_train,
                torch.as_tensor(np.asarray(target.train.labels)),
                cfg.finetune,
                seed=seed,
                keep_eval=_frozen_norms(module),
            )
            acc = zoo_train.accuracy(module, x_test, torch.as_tensor(np.asarray(target.test.labels)))
            return {"accuracy": acc, "final_loss": loss}

        result = zb._timed(watch, "partial", run)
        write_json(
            path,
            {
                **result,
                "seed": seed,
                "unfreeze": unfreeze,
                "blocks": len(chosen.blocks),
                "trainable_params": chosen.trainable_params,
                "model": model_id,
                "target": target.name,
            },
        )
    return read_json(path), watch.spent


def profile_job(
    work: Path, cfg: hb.HubConfig, model_id: str, ref: str, target_name: str
) -> tuple[dict, dict]:
    """The depth profile and the learning curve of ``model_id`` on the target (tlreg's own code)."""
    from tlreg.advisor.depth import PRE_LOGITS, block_features, depth_profile
    from tlreg.advisor.learning_curve import learning_curve

    watch = zb.Stopwatch()
    target = hub_jobs.work_target(work, cfg, target_name)
    path = work / "pairs" / target.name / model_id / f"profile-{target.train_fp[:16]}-v2.json"
    if not path.exists():
        registry = hb.work_registry(work)
        record = registry.get(ref)
        labels = np.asarray(target.train.labels)
        request = EmbedRequest(
            registry,
            target.train,
            target.train_fp,
            cache=FeatureCache(work / "cache"),
            settings=EmbedSettings(batch_size=128),
        )
        cached = features_for(request, record)

        def profile() -> dict[str, Any]:
            names, feats = block_features(registry.load(ref), target.train.items, batch_size=128)
            prof = depth_profile(
                [*names, PRE_LOGITS],
                [*feats, cached.features],
                labels,
                "classification",
                estimators=PROFILE_ESTIMATORS,
            )
            return prof.to_dict()

        def curve() -> dict[str, Any]:
            rng = np.random.default_rng(stable_seed(cfg.seed, "curve", model_id, target.name))
            keep = np.sort(
                np.concatenate(
                    [
                        rng.permutation(np.flatnonzero(labels == c))[
                            : round(CURVE_FRACTION * (labels == c).sum())
                        ]
                        for c in np.unique(labels)
                    ]
                )
            )
            fitted = learning_curve(cached.features[keep], labels[keep], "classification", seed=cfg.seed)
            doc = fitted.to_dict(ahead=())
            doc["quarter"] = len(keep)
            doc["full"] = len(labels)
            doc["prediction"] = fitted.predict(len(labels)) if fitted.usable else None
            return doc

        write_json(
            path,
            {
                "model": model_id,
                "target": target.name,
                "profile": zb._timed(watch, "profile", profile),
                "curve": zb._timed(watch, "curve", curve),
            },
        )
    return read_json(path), watch.spent
