"""A small Hub-like results document in the build's schema (``bench/hub_run.py``), for the tests of
the evaluations that read one (``test_hub_quality``, ``test_trial_quality``). Not a test module."""

from __future__ import annotations

import numpy as np

BACKBONES = ("lite0", "lite1")
SOURCES = ("digits", "shapes", "shuffled")
TARGETS = {"digits": ["digits"], "outlines": ["shapes"], "counting": []}


def synthetic(seed: int = 0) -> dict:
    """A results document in the build's schema: the descendant of each target's related source wins
    (the ImageNet originals where none is related), the shuffled ones lose to random init on one
    target; LogME follows the accuracies."""
    rng = np.random.default_rng(seed)
    models, pairs = {}, []
    candidates = [f"{b}-{s}" for b in BACKBONES for s in SOURCES] + [f"{b}-imagenet" for b in BACKBONES]
    baselines = [f"{b}-random" for b in BACKBONES]
    for m in candidates + baselines:
        backbone, source = m.split("-")
        models[m] = {
            "backbone": backbone,
            "source": source,
            "params": 1000.0 * (2 if backbone == "lite1" else 1) + (500 if source == "imagenet" else 0),
            "imagenet_top1": 75.0 + BACKBONES.index(backbone) if source == "imagenet" else None,
        }
    for t, related in TARGETS.items():
        for m in candidates + baselines:
            backbone, source = m.split("-")
            acc = (
                0.3 if source == "random" else 0.6 + 0.3 * (source in related) + 0.01 * (backbone == "lite1")
            )
            if source == "shuffled" and t == "counting":
                acc = 0.25  # below random init: negative transfer
            if source == "imagenet" and t == "counting":
                acc = 0.7 + 0.01 * (backbone == "lite1")  # no source helps: the ImageNet originals win
            acc += rng.normal(0, 0.005)
            logme = acc + rng.normal(0, 0.01)
            pairs.append(
                {
                    "model": m,
                    "target": t,
                    "finetune_acc": float(acc),
                    "probe_acc": float(acc * 0.9),
                    "scores": {
                        "logme": float(logme),
                        "hscore_shrinkage": float(logme * 2),
                        "nleep": float(logme * 3),
                    },
                }
            )
    raw = {
        t: {"probe_acc": 0.2, "scores": {"logme": 0.1, "hscore_shrinkage": 0.2, "nleep": 0.3}}
        for t in TARGETS
    }
    repeats = [{"model": "lite0-digits", "target": "digits", "accuracy": 0.89, "extra": 1}]
    return {
        "candidates": candidates,
        "baselines": baselines,
        "models": models,
        "targets": {t: {"related_to": r, "classes": ["a", "b", "c"]} for t, r in TARGETS.items()},
        "pairs": pairs,
        "raw": raw,
        "repeats": repeats,
        "config": {"repeat_top": 3, "extra_seeds": [1], "noisy_pp": 2.0},
    }
