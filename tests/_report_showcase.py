"""A recorded run that exercises every hard case of the HTML report and the terminal tables at once.

Negative LogME scores, H-scores all near C-1 (a 10-class task), realistic parameter counts (4M-90M),
two pairs of models with nearly the same size and score (their Pareto labels collide), long refs,
baselines, and a pick that is both tied for first and flagged (negative transfer, frozen features
beaten). Stored through the real run store, as ``recommend`` stores a run.
"""

from __future__ import annotations

from tlreg.registry import Registry, RunStore
from tlreg.registry.runs import Run, RunCandidate, RunResult, RunScore

RUN_ID = "20261125-024100-showc5"
SHA = "0123456789abcdef0123456789abcdef01234567"
ESTIMATORS = ["logme", "hscore_shrinkage", "knn"]
PICK = "timm:efficientnet_b0.ra_in1k"
TIED = "timm:convnext_tiny.fb_in22k_ft_in1k"
#: ref, params, combined, scores (logme, hscore, knn), throughput
MODELS = [
    (PICK, 5_288_548, 0.86, (-0.312, 8.951, 0.81), 410.0),
    (TIED, 28_589_128, 0.86, (-0.298, 8.949, 0.80), 120.0),
    (f"hf:google/vit-base-patch16-224@{SHA}", 86_567_656, 0.71, (-0.405, 8.944, 0.78), 95.0),
    ("timm:resnet50.a1_in1k", 25_557_032, 0.64, (-0.52, 8.932, 0.74), 160.0),
    ("timm:resnet50.tv_in1k", 25_557_032, 0.63, (-0.55, 8.930, 0.73), 161.0),
    ("timm:mobilenetv3_large_100.ra_in1k", 5_483_032, 0.40, (-0.83, 8.921, 0.66), 400.0),
    ("local-dir:/very/long/path/to/the/models/of/the/team/my-finetuned-resnet18", 11_689_512, 0.20,
     (-1.02, 8.917, 0.61), 300.0),
]  # fmt: skip
BASELINES = [
    (f"{PICK} (random init)", PICK, (-0.29, 8.90, 0.42)),
    ("raw pixels (16x16)", "*", (-1.41, 8.87, 0.35)),
]


def _scores(run_id: str, ref: str, values: tuple[float, ...]) -> list[RunScore]:
    return [
        RunScore(run_id=run_id, ref=ref, estimator=e, value=v)
        for e, v in zip(ESTIMATORS, values, strict=True)
    ]


SKIPPED = "hf:team/broken-checkpoint@" + "e" * 40
SKIP_REASON = (
    "could not be loaded: the checkpoint's config names an architecture this transformers version does "
    "not know (model_type 'mystery-net'); upgrade transformers, or register the model with --arch, or "
    "remove it from the registry if it is no longer used by anyone on the team"
)


def store_showcase_run(registry: Registry, *, run_id: str = RUN_ID, options: dict | None = None) -> str:
    store = RunStore(registry.engine)
    store.start(
        Run(
            id=run_id,
            data_path="/data/team/pets-with-a-rather-long-folder-name",
            fingerprint="9f" * 32,
            modality="image",
            task="classification",
            n_samples=400,
            classes=[f"class{i}" for i in range(10)],
            sample_ids=[f"class{i % 10}/img{i:04d}.jpg" for i in range(400)],
            command="tlreg recommend /data/team/pets-with-a-rather-long-folder-name --bootstrap 50",
            options=options or {"models": None, "bootstrap": 50, "estimators": ESTIMATORS, "per_class": 40},
            environment={"tlreg": "0.1.0", "torch": "2.14.1", "timm": "1.0.31", "device": "cpu"},
            user="ana",
            host="gpu-box-07",
        )
    )
    rows = []
    for rank, (ref, params, combined, scores, speed) in enumerate(MODELS, 1):
        revision = SHA if ref.startswith("hf:") else None
        store.add(
            RunCandidate(
                run_id=run_id, ref=ref, revision=revision, params=params, feature_dim=768,
                seconds=400 / speed, samples_per_s=speed, cache_key=f"{rank:02d}" + "c" * 62,
            ),
            *_scores(run_id, ref, scores),
        )  # fmt: skip
        rows.append(
            {
                "rank": 1 if ref in (PICK, TIED) else rank,
                "ref": ref,
                "revision": revision,
                "scores": dict(zip(ESTIMATORS, scores, strict=True)),
                "combined": combined,
                "params": params,
                "feature_dim": 768,
                "samples_per_s": speed,
                "seconds": 400 / speed,
                "from_cache": False,
                "negative_transfer": ref == PICK,
                "negative_transfer_vs": [BASELINES[0][0]] if ref == PICK else [],
                "frozen_features_beaten_by": [BASELINES[0][0]] if ref == PICK else [],
                "p_best": {PICK: 0.46, TIED: 0.44}.get(ref, 0.02),
                "rank_interval": [1, 2] if ref in (PICK, TIED) else [max(rank - 1, 1), min(rank + 1, 7)],
                "tied": ref in (PICK, TIED),
            }
        )
    for label, of, scores in BASELINES:
        store.add(
            RunCandidate(run_id=run_id, ref=label, baseline_of=of, seconds=1.0),
            *_scores(run_id, label, scores),
        )
        rows.append(
            {"rank": 0, "ref": label, "baseline_of": of, "scores": dict(zip(ESTIMATORS, scores, strict=True))}
        )
    store.add(
        RunCandidate(run_id=run_id, ref=SKIPPED, revision="e" * 40, status="skipped", reason=SKIP_REASON)
    )
    store.finish(
        RunResult(
            run_id=run_id,
            best_ref=PICK,
            reason=(
                f"{PICK} and {TIED} tie for first (combined 0.86); the cheaper model (fewer parameters, then "
                f"the name) breaks the tie. Its frozen features lose to {PICK} (random init): fine-tuning it "
                "is not expected to beat training from scratch."
            ),
            ranking=rows,
            warnings=[
                "2 images could not be decoded and were skipped: class3/img0031.jpg, class7/img0077.jpg"
            ],
            detail={
                "estimators": ESTIMATORS,
                "confidence": {
                    "rounds": 50,
                    "beats_runner_up": 0.52,
                    "separable": False,
                    "tied": [PICK, TIED],
                    "tie_rule": "the cheaper model (fewer parameters, then the name)",
                },
            },
        )
    )
    return run_id
