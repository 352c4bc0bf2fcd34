"""The Hub-like build's jobs (``bench/hub_run.py`` runs them in worker processes): per (model,
target), the raw-pixel baseline, the repeats with other seeds, the resampling rounds, and each
descendant's fine-tune on its source. Each result is cached in the work folder (written atomically,
keyed by what produced it), so an interrupted build resumes where it stopped. The models, tasks and
configuration they use are ``bench/hub_build.py``'s.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zoo_build as zb
import zoo_train
from hub_build import HubConfig, baseline_ids, build_descendant, candidate_ids, load_target, work_registry
from jsonio import read_json
from PIL import Image
from tlreg.advisor import rank
from tlreg.advisor.cache import FeatureCache
from zoo_train import stable_seed, write_json

# --- per (model, target) ---------------------------------------------------------------------------


def raw_pixels(ds: Any) -> np.ndarray:
    """16x16 RGB pixels in [0, 1] (the raw baseline's input; the probe standardises on the train split)."""
    from tlreg.registry.images import open_image

    return np.stack(
        [
            np.asarray(open_image(p).resize((16, 16), Image.BILINEAR), np.float32).ravel() / 255.0
            for p in ds.items
        ]
    )


def raw_job(work: Path, cfg: HubConfig, target_name: str) -> tuple[dict[str, Any], dict]:
    """The target's raw-pixel baseline: tlreg's raw features scored by every estimator, and a probe."""
    from tlreg.advisor.baselines import raw_baseline

    watch = zb.Stopwatch()
    target = work_target(work, cfg, target_name)
    path = work / "pairs" / target.name / f"raw-{target.train_fp[:16]}-{target.test_fp[:16]}.json"
    if not path.exists():
        cache = FeatureCache(work / "cache")
        feats = raw_baseline(target.train, target.train_fp, cache=cache, seed=cfg.seed)
        labels_train, labels_test = np.asarray(target.train.labels), np.asarray(target.test.labels)
        scored = zb._timed(watch, "scores", lambda: zb.score_all(feats.features, labels_train, None))
        probe = zb._timed(
            watch,
            "probe",
            lambda: zoo_train.linear_probe(
                raw_pixels(target.train), labels_train, raw_pixels(target.test), labels_test, seed=cfg.seed
            ),
        )
        write_json(
            path, {"target": target.name, "label": feats.label, "probe_acc": probe["accuracy"], **scored}
        )
    return read_json(path), watch.spent


def pair_file(work: Path, cfg: HubConfig, target: zb.Target, model_id: str, kind: str) -> Path:
    """Where one more result of ``kind`` on (model, target) is cached (``zoo_build.result_file``)."""
    return zb.result_file(work, target, model_id, kind, cfg.finetune)


def repeat_job(
    work: Path, cfg: HubConfig, model_id: str, ref: str, target_name: str, extra: int
) -> tuple[dict, dict]:
    """One more full fine-tune of ``model_id`` on the target with seed number ``extra``."""
    watch = zb.Stopwatch()
    target = work_target(work, cfg, target_name)
    seed = stable_seed(cfg.seed, "finetune", model_id, target.name, "repeat", extra)
    result = zb.repeat_finetune(
        work, work_registry(work), ref, model_id, target, cfg.finetune, seed=seed, extra=extra, watch=watch
    )
    return result, watch.spent


#: Estimators scored on every resampling round, and how many rounds: the earlier defaults (LogME,
#: shrinkage H-score, N-LEEP), two cheap others (the verdicts use knn's) and always today's defaults
#: (``advisor/rank.py``), so that a change of defaults re-draws the rounds (the cache key names them).
#: With the default's own rounds the evaluation judges "not separable" too, not exact ties only
#: (``hub_claims.tie_rule``, ``hub_claims.separability``).
_EARLIER = ("logme", "hscore_shrinkage", "knn", "sfda", "nleep")
RESAMPLE_ESTIMATORS = tuple(dict.fromkeys((*_EARLIER, *rank.DEFAULT_ESTIMATORS["classification"])))
RESAMPLE_ROUNDS = 20


def resample_job(work: Path, cfg: HubConfig, target_name: str, refs: dict[str, str]) -> tuple[dict, dict]:
    """The target's resampling rounds, as ``recommend``'s confidence draws them: every candidate and
    baseline (random inits, raw pixels) re-scored on stratified 80 % subsamples, from cached features.

    What ``recommend`` derives from the rounds (P(best), separability, a decisive loss to a baseline)
    can then be judged against the ground truth without the features.
    """
    from tlreg.advisor.baselines import raw_baseline
    from tlreg.advisor.confidence import bootstrap
    from tlreg.advisor.embed import EmbedRequest, EmbedSettings, features_for

    watch = zb.Stopwatch()
    target = work_target(work, cfg, target_name)
    names = list(RESAMPLE_ESTIMATORS)
    key = stable_seed(target.train_fp, *names, RESAMPLE_ROUNDS, *sorted(refs.items()))
    path = work / "pairs" / target.name / f"resamples-{key}.json"
    if not path.exists():
        registry, cache = work_registry(work), FeatureCache(work / "cache")

        def feats(model_id: str) -> tuple[np.ndarray, np.ndarray | None]:
            request = EmbedRequest(
                registry,
                target.train,
                target.train_fp,
                cache=cache,
                device=torch.device("cpu"),
                settings=EmbedSettings(batch_size=128),
            )
            got = features_for(request, registry.get(refs[model_id]))
            return got.features, got.probs

        candidates = {m: feats(m) for m in candidate_ids(cfg)}
        baselines = {m: feats(m) for m in baseline_ids(cfg)}
        raw = raw_baseline(target.train, target.train_fp, cache=cache, seed=cfg.seed)
        baselines["raw"] = (raw.features, None)
        labels = np.asarray(target.train.labels)
        conf = zb._timed(
            watch,
            "resamples",
            lambda: bootstrap(
                candidates,
                labels,
                "classification",
                names,
                [],
                rounds=RESAMPLE_ROUNDS,
                seed=cfg.seed,
                baselines=baselines,
            ),
        )
        rounds = [
            {m: {e: float(f"{v:.6g}") for e, v in by.items() if np.isfinite(v)} for m, by in r.items()}
            for r in conf.round_scores
        ]
        write_json(path, {"target": target.name, "estimators": names, "rounds": rounds})
    return read_json(path), watch.spent


@functools.cache
def work_target(work: Path, cfg: HubConfig, name: str) -> zb.Target:
    """A target's splits, loaded once per worker process."""
    return load_target(work, cfg, name, zb.Stopwatch())


def descendant_job(work: Path, cfg: HubConfig, model_id: str) -> tuple[str, dict]:
    watch = zb.Stopwatch()
    folder = build_descendant(work, cfg, model_id, watch)
    return str(folder), watch.spent


def pair_job(work: Path, cfg: HubConfig, model_id: str, ref: str, target: str) -> tuple[dict[str, Any], dict]:
    """Scores, probe and fine-tune of one (model, target), via the first benchmark's ``evaluate_pair``."""
    watch = zb.Stopwatch()
    pair = zb.evaluate_pair(
        work,
        cfg,  # type: ignore[arg-type]  # evaluate_pair reads .seed and .finetune
        work_registry(work),
        FeatureCache(work / "cache"),
        model_id,
        ref,
        work_target(work, cfg, target),
        watch,
        lambda _m: None,
    )
    return pair, watch.spent
