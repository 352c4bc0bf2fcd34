"""Successive halving (``recommend --budget auto``) measured: what it saves and what it costs the pick.

    python bench/halving.py hub [--work DIR]     # replay on the Hub-like benchmark
    python bench/halving.py shell [--repeats 2]  # the registry-size curve: whole processes, full vs auto
    python bench/halving.py hub-shell            # one Hub-like target from the shell, real backbones
    python bench/halving.py small --max-samples 200   # the targets cut to 200 images: first-stage floors
    python bench/halving.py --report             # print the committed figures (data/bench/halving.json)

**hub.** The Hub-like benchmark (``bench/hub_quality.py``) as one registry: its 21 candidates (18
fine-tuned descendants and the three ImageNet EfficientNet-Lites), each of its 8 targets' training
split (1,000 images) as the user's sample. Both budgets run tlreg's own decision code
(``tlreg.advisor.halving``) on the features and source-head probabilities (NCE reads them) the
benchmark build cached for every (model, target), first checked against the scores it recorded:
``full`` ranks all 21 on the whole sample; ``auto`` runs the stages, each on the rows of those
features that the stage holds, in the order ``recommend`` assembles them (a stage's features are
rows of the whole sample's: each image is embedded on its own, the network in eval mode). The
pick's regret comes from the benchmark's fine-tuned accuracies; the forward passes are counted as
``recommend`` counts them (candidates on each increment, random-init baselines for the survivors,
or for everyone with ``full``) and turned into embedding time with each backbone's throughput,
measured here in this run on the same images through tlreg's embedding.

**shell.** ``tlreg recommend`` from the shell on one image folder with 4, 16 and 64 tiny timm models
(a fresh registry and feature cache each time), ``--budget full`` against ``--budget auto``,
interleaved, min and median wall seconds. Below 12 candidates ``auto`` is ``full``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import hub_noise
import jsonio
import numpy as np
from scipy.stats import kendalltau
from tlreg.advisor.data import fingerprint, load_dataset, sample
from tlreg.advisor.halving import STAGE_ROUNDS, halve, increments, stage_indices, stage_order
from tlreg.advisor.rank import DEFAULT_ESTIMATORS, combine, order, to_compute
from tlreg.advisor.scoring import as_dict, score_features

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
RESULTS = ROOT / "data" / "bench" / "hub_quality_results.json"
QUALITY = ROOT / "data" / "bench" / "hub_quality.json"
OUT = ROOT / "data" / "bench" / "halving.json"
SEED = 0


def model_id(ref: str) -> str:
    """``local-dir:/.../efficientnet_lite0-digits-644890397`` -> ``efficientnet_lite0-digits``."""
    return ref.rstrip("/").rsplit("/", 1)[-1].rsplit("-", 1)[0]


Arrays = tuple[np.ndarray, "np.ndarray | None"]  # (features, source-head probabilities or None)


def cached_features(work: Path, fp: str, n: int) -> dict[str, Arrays]:
    """Every pretrained model's features and source-head probabilities on the sample with fingerprint
    ``fp`` (the build's cache): NCE, a default estimator, needs the probabilities."""
    out = {}
    for meta_path in (work / "cache" / "features").glob("??/*/meta.json"):
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fp and meta.get("n") == n and meta.get("init") == "pretrained":
            probs = meta_path.parent / "probs.npy"
            out[model_id(meta["ref"])] = (
                np.load(meta_path.parent / "features.npy"),
                np.load(probs) if probs.is_file() else None,
            )
    return out


def full_scores(candidates: dict[str, Arrays], labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Every default estimator of every candidate on the whole sample. A candidate missing one (no
    source-head probabilities for NCE) is an error: ranked on fewer estimators than ``recommend``
    uses, the replay would measure another ranking than the one it names."""
    names = list(DEFAULT_ESTIMATORS["classification"])
    compute = list(dict.fromkeys(to_compute(names)))
    scores = {
        m: as_dict(score_features(f, p, labels, "classification", compute))
        for m, (f, p) in candidates.items()
    }
    for m, s in scores.items():
        missing = [k for k in compute if k not in s]
        if missing:
            raise SystemExit(f"{m}: no {', '.join(missing)} (no source-head probabilities in the cache)")
    return scores


def ranking(candidates: dict[str, Arrays], labels: np.ndarray, params: dict[str, float]) -> list[str]:
    """The full-budget ranking: every candidate scored on the whole sample, combined, ordered."""
    return order(combine(full_scores(candidates, labels), list(DEFAULT_ESTIMATORS["classification"])), params)


def replay(
    features: dict[str, Arrays],
    labels: np.ndarray,
    params: dict[str, float],
    *,
    seed: int = SEED,
    scores: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Both budgets on one target: the orders, the stages and the forward passes each spends
    (``seed``: ``recommend --seed``, which draws the stages and their resampling rounds; ``scores``:
    :func:`full_scores` of ``features``, when the caller has them already)."""
    names = list(DEFAULT_ESTIMATORS["classification"])
    scores = scores if scores is not None else full_scores(features, labels)
    n = len(labels)
    stages = stage_indices(labels, "classification", n, seed=seed)
    parts = increments(stages)

    def features_on(refs: list[str], k: int) -> dict:
        rows = stage_order(stages, k)
        return {r: (features[r][0][rows], _rows(features[r][1], rows)) for r in refs}

    alive, done = halve(
        list(features),
        stages,
        features_on,
        labels,
        "classification",
        names,
        params,
        rounds=STAGE_ROUNDS,
        seed=seed,
    )
    # each model's whole-sample scores are its own; only the combination depends on who is compared
    full = order(combine(scores, names), params)
    final = order(combine({m: scores[m] for m in alive}, names), params)
    dropped = [d["ref"] for s in reversed(done) for d in s.dropped]  # later drops ranked above earlier
    passes = {m: 0 for m in features}  # items each candidate embeds under auto
    for k, s in enumerate(done):
        for m in s.candidates:
            passes[m] += len(parts[k])
    for m in alive:
        passes[m] += len(parts[-1])
    return {
        "full": full,
        "auto": final + dropped,
        "survivors": alive,
        "stages": [
            {"samples": s.samples, "candidates": len(s.candidates), "dropped": len(s.dropped)} for s in done
        ],
        "passes_auto": passes,
        "baselines_auto": {m: n for m in alive},
        "passes_full": {m: n for m in features},
        "baselines_full": {m: n for m in features},
    }


def throughput(work: Path, folder: Path, backbones: list[str]) -> dict[str, float]:
    """Seconds per image of each backbone through tlreg's embedding, measured now on 96 images."""
    from tlreg.advisor.cache import FeatureCache
    from tlreg.advisor.embed import EmbedRequest, features_for
    from tlreg.registry import Registry

    registry = Registry(f"sqlite:///{work / 'registry.db'}", read_only=True)
    refs = {r.ref for r in registry.list()}
    small = sample(load_dataset(folder), max_samples=96, seed=SEED)
    out = {}
    with tempfile.TemporaryDirectory(prefix="tlreg-halving-") as tmp:
        request = EmbedRequest(registry, small, fingerprint(small), cache=FeatureCache(tmp))
        for b in backbones:
            ref = next(r for r in refs if model_id(r) == f"{b}-imagenet")
            feats = features_for(request, registry.get(ref))
            out[b] = 1.0 / feats.samples_per_s
    return out


def _rows(probs: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if probs is None else probs[rows]


def check_against_build(target: str, scores: dict[str, dict[str, float]], results: dict[str, Any]) -> None:
    """The replay's whole-sample scores (:func:`full_scores`) are the ones the benchmark's build
    recorded for this target (to its stored precision): the replay ranks what ``hub_quality`` judges,
    estimator by estimator."""
    stored = {p["model"]: p["scores"] for p in results["pairs"] if p["target"] == target}
    for m, by_name in scores.items():
        for k, v in by_name.items():
            want = stored[m].get(k)
            if want is None or not np.isclose(v, want, rtol=1e-4, atol=1e-6):
                raise SystemExit(f"target {target}, {m}: {k} {v:.6g} here, {want} in the build's results")


def hub(work: Path, seeds: int = 1) -> dict[str, Any]:
    """Both budgets on every target with ``recommend``'s default seed (the per-target rows), and the
    picks with ``seeds`` seeds in all (``over_seeds``: halving's stages are random draws)."""
    results = json.loads(RESULTS.read_text())
    noise = json.loads(QUALITY.read_text())["realism"]["seed_noise_pp"]
    truth = hub_noise.truth(results)
    candidates = results["candidates"]
    backbones = sorted({c.split("-")[0] for c in candidates})
    registry_params = _params(work)
    per_target, folders, over_seeds = {}, {}, []
    for target in results["config"]["targets"]:
        folder = next((work / "targets").glob(f"{target}-v*-{results['config']['target_train']}-*")) / "train"
        folders[target] = folder
        ds = sample(load_dataset(folder))
        feats = cached_features(work, fingerprint(ds), len(ds))
        feats = {m: f for m, f in feats.items() if m in candidates}
        if len(feats) != len(candidates):
            raise SystemExit(
                f"target {target}: {len(feats)} of {len(candidates)} candidates' features cached in {work}"
            )
        scores = full_scores(feats, np.asarray(ds.labels))
        check_against_build(target, scores, results)
        params = {m: float(registry_params[m]) for m in feats}
        replayed = replay(feats, np.asarray(ds.labels), params, scores=scores)
        acc = {m: truth[m, target] for m in feats}
        best = max(acc.values())
        for seed in range(SEED, SEED + seeds):
            run = (
                replayed
                if seed == SEED
                else replay(feats, np.asarray(ds.labels), params, seed=seed, scores=scores)
            )
            pick = run["auto"][0]
            over_seeds.append(
                {"target": target, "seed": seed, "pick": pick, "regret": 100.0 * (best - acc[pick])}
            )
        full_pick, auto_pick = replayed["full"][0], replayed["auto"][0]
        position = {m: i for i, m in enumerate(replayed["auto"])}
        tau = kendalltau(range(len(replayed["full"])), [position[m] for m in replayed["full"]])[0]
        per_target[target] = {
            "full_pick": full_pick,
            "auto_pick": auto_pick,
            "regret_full": 100.0 * (best - acc[full_pick]),
            "regret_auto": 100.0 * (best - acc[auto_pick]),
            "tau_vs_full": float(tau),
            "survivors": replayed["survivors"],
            "best_in_survivors": max(acc, key=acc.__getitem__) in replayed["survivors"],
            "stages": replayed["stages"],
            **{k: replayed[k] for k in ("passes_auto", "baselines_auto", "passes_full", "baselines_full")},
        }
    seconds = throughput(work, folders[results["config"]["targets"][0]], backbones)
    for row in per_target.values():
        for budget in ("auto", "full"):
            items = {**row[f"passes_{budget}"]}
            total = sum(v * seconds[m.split("-")[0]] for m, v in items.items())
            total += sum(v * seconds[m.split("-")[0]] for m, v in row[f"baselines_{budget}"].items())
            row[f"passes_total_{budget}"] = sum(items.values()) + sum(row[f"baselines_{budget}"].values())
            row[f"embed_seconds_{budget}"] = total
    doc = summarise(per_target, seconds, noise, len(candidates))
    regrets = [r["regret"] for r in over_seeds]
    doc["over_seeds"] = {
        "seeds": seeds,
        "mean_regret_auto": statistics.mean(regrets),
        "worst_regret_auto": max(regrets),
        "same_pick": statistics.mean(r["pick"] == per_target[r["target"]]["full_pick"] for r in over_seeds),
        "runs": over_seeds,
    }
    return doc


def _params(work: Path) -> dict[str, int]:
    from tlreg.registry import Registry

    registry = Registry(f"sqlite:///{work / 'registry.db'}", read_only=True)
    return {model_id(r.ref): r.params or 0 for r in registry.list() if r.ref.startswith("local-dir:")}


def summarise(per_target: dict, seconds: dict, noise: float, n_candidates: int) -> dict[str, Any]:
    rows = list(per_target.values())
    mean = statistics.mean
    return {
        "about": "successive halving replayed on the Hub-like benchmark: see bench/halving.py",
        "candidates": n_candidates,
        "estimators": list(DEFAULT_ESTIMATORS["classification"]),
        "seed_noise_pp": noise,
        "seconds_per_image": seconds,
        "mean_regret_full": mean(r["regret_full"] for r in rows),
        "mean_regret_auto": mean(r["regret_auto"] for r in rows),
        "worst_regret_auto": max(r["regret_auto"] for r in rows),
        "same_pick": sum(r["full_pick"] == r["auto_pick"] for r in rows) / len(rows),
        "mean_tau_vs_full": mean(r["tau_vs_full"] for r in rows),
        "forward_passes_ratio": sum(r["passes_total_full"] for r in rows)
        / sum(r["passes_total_auto"] for r in rows),
        "embed_time_ratio": sum(r["embed_seconds_full"] for r in rows)
        / sum(r["embed_seconds_auto"] for r in rows),
        "mean_survivors": mean(len(r["survivors"]) for r in rows),
        "per_target": per_target,
    }


def small(work: Path, n: int, floors: tuple[int, ...] = (4, 8), seeds: int = 2) -> dict[str, Any]:
    """Both budgets on the Hub-like targets cut to ``n`` images (stratified, ``seeds`` draws each),
    for each first-stage floor (items of every class the first stage must hold): does halving on a
    small sample drop the true contenders?"""
    import tlreg.advisor.halving as halving

    results = json.loads(RESULTS.read_text())
    truth = hub_noise.truth(results)
    params = {m: float(v) for m, v in _params(work).items()}
    regrets: dict[str, list[float]] = {"full": [], **{f"auto, floor {f}": [] for f in floors}}
    saved = halving.MIN_FIRST_PER_CLASS
    try:
        for target in results["config"]["targets"]:
            folder = (
                next((work / "targets").glob(f"{target}-v*-{results['config']['target_train']}-*")) / "train"
            )
            ds = sample(load_dataset(folder))
            feats = {
                m: f
                for m, f in cached_features(work, fingerprint(ds), len(ds)).items()
                if m in results["candidates"]
            }
            labels = np.asarray(ds.labels)
            acc = {m: truth[m, target] for m in feats}
            best = max(acc.values())
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                classes = np.unique(labels)
                idx = np.sort(
                    np.concatenate(
                        [
                            rng.choice(np.flatnonzero(labels == c), n // len(classes), replace=False)
                            for c in classes
                        ]
                    )
                )
                cut = {m: (f[idx], _rows(p, idx)) for m, (f, p) in feats.items()}
                for k, floor in enumerate(floors):
                    halving.MIN_FIRST_PER_CLASS = floor
                    replayed = replay(cut, labels[idx], {m: params.get(m, 0.0) for m in cut})
                    regrets[f"auto, floor {floor}"].append(100.0 * (best - acc[replayed["auto"][0]]))
                    if k == 0:
                        regrets["full"].append(100.0 * (best - acc[replayed["full"][0]]))
    finally:
        halving.MIN_FIRST_PER_CLASS = saved
    return {
        "n": n,
        "draws": len(regrets["full"]),
        "mean_regret": {k: statistics.mean(v) for k, v in regrets.items()},
        "worst_regret": {k: max(v) for k, v in regrets.items()},
    }


def report_small(docs: dict[str, Any]) -> str:
    lines = ["Hub-like targets cut to n images (pick regret, mean / worst over targets x draws):"]
    for doc in docs.values():
        cells = ", ".join(
            f"{k} {doc['mean_regret'][k]:.2f} / {doc['worst_regret'][k]:.1f}" for k in doc["mean_regret"]
        )
        lines.append(f"  n={doc['n']} ({doc['draws']} draws): {cells}")
    return "\n".join(lines)


def report_hub(doc: dict[str, Any]) -> str:
    lines = [
        f"Successive halving on the Hub-like benchmark ({doc['candidates']} candidates, 8 targets of "
        f"1,000 images; estimators {' + '.join(doc['estimators'])}):",
        f"{'target':<12} {'candidates@samples':<26} {'regret full':>11} {'regret auto':>11} "
        f"{'tau vs full':>11} {'embed s full':>13} {'embed s auto':>13}",
    ]
    for t, r in doc["per_target"].items():
        path = (
            " -> ".join(f"{s['candidates']}@{s['samples']}" for s in r["stages"])
            + f" -> {len(r['survivors'])}@1000"
        )
        lines.append(
            f"{t:<12} {path:<26} {r['regret_full']:>11.1f} {r['regret_auto']:>11.1f} "
            f"{r['tau_vs_full']:>11.2f} {r['embed_seconds_full']:>13.0f} {r['embed_seconds_auto']:>13.0f}"
        )
    lines += [
        "",
        f"mean regret: full {doc['mean_regret_full']:.2f} pts, auto {doc['mean_regret_auto']:.2f} pts "
        f"(worst {doc['worst_regret_auto']:.1f}); seed noise {doc['seed_noise_pp']:.1f} pts",
        f"same pick as full on {doc['same_pick']:.0%} of targets; Kendall tau with the full ranking "
        f"{doc['mean_tau_vs_full']:.2f}",
        f"forward passes: {doc['forward_passes_ratio']:.1f}x fewer; embedding time: "
        f"{doc['embed_time_ratio']:.1f}x less "
        f"(throughput measured: "
        + ", ".join(f"{b} {1 / s:.1f} img/s" for b, s in doc["seconds_per_image"].items())
        + ")",
    ]
    seeds = doc.get("over_seeds")
    if seeds and seeds["seeds"] > 1:
        lines.append(
            f"over {seeds['seeds']} seeds (the stages' draws): auto mean regret "
            f"{seeds['mean_regret_auto']:.2f} pts (worst {seeds['worst_regret_auto']:.1f}), same pick as "
            f"full on {seeds['same_pick']:.0%} of targets x seeds"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument(
        "what",
        nargs="?",
        choices=["hub", "shell", "hub-shell", "small"],
        help="What to measure (default: report).",
    )
    parser.add_argument("--report", action="store_true", help="Print the committed figures; measure nothing.")
    parser.add_argument("--work", type=Path, default=None, help="The Hub-like build's work folder.")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--seeds", type=int, default=1, help="hub: seeds to replay (default 1, the default seed)."
    )
    parser.add_argument("--target", default="digits", help="hub-shell: the Hub-like target (default digits).")
    parser.add_argument(
        "--max-samples", type=int, default=200, help="hub-shell, small: the sample (default 200)."
    )
    parser.add_argument("--sizes", default="4,16,64")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.what == "hub":
        from hub_quality import default_work

        doc["hub"] = hub(args.work or default_work(), args.seeds)
    elif args.what == "hub-shell":
        from halving_shell import hub_shell
        from hub_quality import default_work

        doc["hub_shell"] = hub_shell(args.work or default_work(), args.target, args.max_samples)
    elif args.what == "small":
        from hub_quality import default_work

        doc.setdefault("small", {})[str(args.max_samples)] = small(
            args.work or default_work(), args.max_samples
        )
    elif args.what == "shell":
        from halving_shell import shell

        doc["shell"] = shell(args.repeats, [int(s) for s in args.sizes.split(",")])
    if args.what:
        jsonio.write_json(args.out, doc)
    if not doc:
        raise SystemExit(
            f"error: no figures in {args.out}; run `python bench/halving.py hub` or `shell` first"
        )
    from halving_shell import report_hub_shell, report_shell

    if "hub" in doc:
        print(report_hub(doc["hub"]))
    if "hub_shell" in doc:
        print("\n" + report_hub_shell(doc["hub_shell"]))
    if "small" in doc:
        print("\n" + report_small(doc["small"]))
    if "shell" in doc:
        print(("\n" if "hub" in doc else "") + report_shell(doc["shell"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
