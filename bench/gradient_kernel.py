"""Gradient evidence on the Hub-like benchmark: does the fine-tuning kernel tell which checkpoint
fine-tunes best? (issue 13: "any new evidence ... measured the same way")

Every estimator tlreg ships reads the frozen features. A full fine-tune moves every weight, and
Deshpande et al. ("A linearized framework and a new benchmark for model selection for fine-tuning",
arXiv:2102.00084, 2021) model it by the linearised network f(x; w0) + ∇w f(x; w0)·(w − w0): what
fine-tuning can learn quickly is then governed by the gradient kernel Θ(x, x') = ⟨∇w f(x; w0),
∇w f(x'; w0)⟩, and their Label-Gradient Correlation (LGC) scores a checkpoint by how well Θ on the
target's training images agrees with the labels' kernel (1 for a pair of the same class). Its
feature-only twin, LFC, uses the features' Gram matrix instead. Both were proposed for exactly this
model space: checkpoints fine-tuned from one backbone on different sources.

Here: the target head is new, so f is the pooled features projected on ``directions`` random
Gaussian directions u (f = u·φ(x), one kernel per direction, summed: an unbiased estimate, up to a
constant, of the trace of the network's Jacobian kernel); the gradient is over every backbone weight,
with batch-norm statistics fixed (eval mode); ``n`` training images per target, the same draw for
every model. Agreement is centred kernel alignment (Cortes, Mohri & Rostamizadeh, "Algorithms for
learning kernels based on centered alignment", JMLR 2012), which is invariant to the kernels' scale.

    python bench/gradient_kernel.py            # compute from the Hub-like build's work folder, evaluate
    python bench/gradient_kernel.py --report   # evaluate the committed scores only (seconds)
    python bench/gradient_kernel.py --keep-first   # only the Hub-like scores (after a Hub-like rebuild)

Per-(model, target) results are cached in the work folder (written atomically), so an interrupted run
resumes. Scores: ``data/bench/hub_gradient_kernel.json``. The evaluation judges them as
``bench/hub_quality.py`` judges every estimator: against the same truth (on the noisy targets, the
mean over as many seeds as each build's truth rule gave them), alone and as one more equally weighted
signal in tlreg's default combination.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import jsonio
import numpy as np
import torch
import transfer_eval as ev
from tlreg.advisor import rank

ROOT = Path(__file__).resolve().parents[1]
HUB_RESULTS = ROOT / "data" / "bench" / "hub_quality_results.json"
HUB_EVALUATION = ROOT / "data" / "bench" / "hub_quality.json"
FIRST_RESULTS = ROOT / "data" / "bench" / "transfer_quality_results.json"
SCORES = ROOT / "data" / "bench" / "hub_gradient_kernel.json"
#: Training images per target and random output directions (the kernels' precision against cost:
#: 6-12 s per model on 2 cores at 64 px).
N_IMAGES = 96
DIRECTIONS = 2
SEED = 0


# --- the measures ----------------------------------------------------------------------------------


def centred_alignment(k1: np.ndarray, k2: np.ndarray) -> float:
    """Centred kernel alignment ⟨H K1 H, H K2 H⟩_F / (‖H K1 H‖_F ‖H K2 H‖_F), H = I − 11ᵀ/n, in
    [−1, 1]; NaN where a centred kernel is zero (a constant kernel says nothing)."""
    a = k1 - k1.mean(0, keepdims=True) - k1.mean(1, keepdims=True) + k1.mean()
    b = k2 - k2.mean(0, keepdims=True) - k2.mean(1, keepdims=True) + k2.mean()
    norm = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / norm if norm > 0 else math.nan


def label_kernel(labels: np.ndarray) -> np.ndarray:
    """1 where two samples share a class, 0 elsewhere (the labels' kernel of LGC / LFC)."""
    y = np.asarray(labels)
    return (y[:, None] == y[None, :]).astype(np.float64)


def gradient_kernel(
    module: torch.nn.Module, x: torch.Tensor, directions: torch.Tensor, *, chunk: int = 16
) -> np.ndarray:
    """Σ_u J_u J_uᵀ, where row i of J_u is ∇w (u·φ(x_i)) over every trainable weight of ``module``
    (whose forward returns pooled features φ, ``[N, D]``), for each direction u (``[K, D]``).

    Per-sample gradients via ``torch.func`` (``vmap`` of ``grad``), in eval mode so that a sample's
    gradient does not depend on the rest of its batch; the module is left in eval mode.
    """
    from torch.func import functional_call, grad, vmap

    module.eval()
    params = {k: v.detach() for k, v in module.named_parameters() if v.requires_grad}
    buffers = dict(module.named_buffers())
    gram = np.zeros((len(x), len(x)))
    for u in directions:

        def projected(p: dict[str, torch.Tensor], xi: torch.Tensor, u: torch.Tensor = u) -> torch.Tensor:
            return (functional_call(module, (p, buffers), (xi[None],))[0] * u).sum()

        rows = []
        for start in range(0, len(x), chunk):
            grads = vmap(grad(projected), in_dims=(None, 0))(params, x[start : start + chunk])
            rows.append(torch.cat([g.reshape(g.shape[0], -1) for g in grads.values()], 1))
        jac = torch.cat(rows)
        gram += (jac @ jac.T).double().numpy()
    return gram


def sample_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` training images drawn without replacement (all of them if fewer), in index order: the
    same draw for every model of a target."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(labels), min(n, len(labels)), replace=False))


def measure(
    module: torch.nn.Module, x: torch.Tensor, labels: np.ndarray, *, directions: int, seed: int
) -> dict[str, float]:
    """LGC and LFC of one model on one sample (``module`` returns pooled features); the sample's
    LFC is ``lfc_sample`` (``lfc`` is the whole split's, from the cached features: :func:`lfc_of`)."""
    module.eval()
    with torch.no_grad():
        feats = module(x).double().numpy()
    gen = torch.Generator().manual_seed(seed)
    dirs = torch.randn(directions, feats.shape[1], generator=gen) / math.sqrt(feats.shape[1])
    y = label_kernel(labels)
    return {
        "lgc": centred_alignment(gradient_kernel(module, x, dirs), y),
        "lfc_sample": centred_alignment(feats @ feats.T, y),
    }


def lfc_of(features: np.ndarray, labels: np.ndarray) -> float:
    """LFC: centred alignment of the features' linear kernel with the labels' kernel."""
    feats = np.asarray(features, dtype=np.float64)
    return centred_alignment(feats @ feats.T, label_kernel(labels))


# --- computing the scores from the builds ----------------------------------------------------------


def cached_features(registry: Any, work: Path, ref: str, target: Any) -> np.ndarray:
    """A model's features of a target's training split, from the build's feature cache: the features
    the build scored every estimator on (an uncached pair is an error, not embedded afresh)."""
    from tlreg.advisor.cache import FeatureCache
    from tlreg.advisor.embed import EmbedRequest, EmbedSettings, features_for

    request = EmbedRequest(
        registry,
        target.train,
        target.train_fp,
        cache=FeatureCache(work / "cache"),
        device=torch.device("cpu"),
        settings=EmbedSettings(batch_size=128, workers=0),
    )
    got = features_for(request, registry.get(ref))
    if not got.from_cache:
        raise RuntimeError(f"{ref} on {target.name}: not in {work / 'cache'}; build the benchmark first")
    return got.features


def compute(work: Path, results: dict[str, Any], *, n: int, directions: int, seed: int) -> dict[str, Any]:
    """Every candidate's LGC (and the sample's LFC) on ``n`` images of every target, and its LFC on
    the whole training split, from the Hub-like build's work folder (its registered checkpoints, its
    targets, its feature cache); each pair's gradient measures cached there."""
    import hub_build as hb
    import zoo_build as zb
    from jsonio import read_json
    from zoo_train import stable_seed, write_json

    cfg = hb.config_from_dict(results["config"])
    registry = hb.work_registry(work)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for name in results["targets"]:
        target = hb.load_target(work, cfg, name, zb.Stopwatch())
        labels_all = np.asarray(target.train.labels)
        idx = sample_indices(labels_all, n, stable_seed(seed, "gradient-kernel", name))
        scores[name] = {}
        for model_id in results["candidates"]:
            ref = results["models"][model_id]["ref"]
            path = (
                work
                / "gradient_kernel"
                / name
                / f"{model_id}-{target.train_fp[:16]}-{n}-{directions}-{seed}.json"
            )
            if not path.exists():
                start = time.perf_counter()
                extractor = registry.load(ref)
                pre = extractor.preprocessor
                x = pre.collate([pre(target.train.items[i]) for i in idx])
                module = extractor.module
                module.reset_classifier(0)
                got = measure(module, x, labels_all[idx], directions=directions, seed=seed)
                write_json(path, {**got, "seconds": round(time.perf_counter() - start, 2)})
                print(f"{name} {model_id}: {got}", file=sys.stderr, flush=True)
            lfc = lfc_of(cached_features(registry, work, ref, target), labels_all)
            scores[name][model_id] = {**read_json(path), "lfc": lfc}
    return {"config": {"n": n, "directions": directions, "seed": seed}, "scores": scores}


def compute_first(work: Path, results: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """LFC on the whole training split of every (model, target) of the first benchmark
    (``bench/transfer_quality.py``), from its work folder's feature cache."""
    import hub_build as hb
    import zoo_build as zb

    cfg = zb.BuildConfig(seed=results["config"]["seed"])
    registry = hb.work_registry(work)  # WORK/registry.db, as in every build
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in results["targets"]:
        target = zb.load_target(work, cfg, name, zb.Stopwatch())
        labels = np.asarray(target.train.labels)
        refs = {m: f"local-dir:{zb.model_folder(work, cfg, m)}" for m in results["models"]}
        out[name] = {
            m: {"lfc": lfc_of(cached_features(registry, work, ref, target), labels)}
            for m, ref in refs.items()
        }
    return out


# --- evaluation -----------------------------------------------------------------------------------


def with_measures(table: ev.Table, scores: dict[str, dict[str, dict[str, float]]]) -> ev.Table:
    """``table`` with every measure of ``scores`` added to each (model, target)'s estimator scores."""
    for t in table.targets:
        for m in table.models:
            table.scores[t][m].update({k: float(v) for k, v in scores[t][m].items() if k != "seconds"})
    return table


def judged(table: ev.Table, names: dict[str, list[str]]) -> dict[str, Any]:
    """τw, mean and worst regret of each named combination (rank aggregation, tlreg's ``combine``)."""
    per_target = {
        label: ev.judge(table, lambda t, c=combo: rank.combine(table.scores[t], c))
        for label, combo in names.items()
    }
    return {
        "mean_tau_w": {n: ev.mean(p, "tau_w") for n, p in per_target.items()},
        "mean_regret": {n: ev.mean(p, "regret") for n, p in per_target.items()},
        "worst_regret": {n: max(float(v["regret"]) for v in p.values()) for n, p in per_target.items()},
        "per_target": per_target,
    }


def evaluate(results: dict[str, Any], first: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """LGC and LFC judged as ``bench/hub_quality.py`` judges every estimator (the Hub-like truth, on its
    noisy targets the mean over the seeds its truth rule gave them), alone and as one more equally
    weighted signal in the default combination; LFC on the first benchmark too; and tlreg's own
    selection of the defaults (``bench/joint_defaults.py``: leave-one-target-out over both benchmarks'
    15 targets) with LFC in the pool: does the procedure that chose today's default choose LFC?"""
    import hub_eval
    import joint_defaults as jd

    default = list(rank.DEFAULT_ESTIMATORS["classification"])
    tables = {
        "hub": with_measures(hub_eval.hub_table(results), doc["scores"]),
        "first": with_measures(ev.table_from_results(first), doc["first"]),
    }
    hub_rankers = {
        "lgc": ["lgc"],
        "lfc (sample)": ["lfc_sample"],
        "lfc": ["lfc"],
        "combined (default)": default,
        "combined + lgc": [*default, "lgc"],
        "combined + lfc": [*default, "lfc"],
        "nleep": ["nleep"],
    }
    first_rankers = {k: hub_rankers[k] for k in ("lfc", "combined (default)", "combined + lfc", "nleep")}
    pool = [*jd.pool_of(tables), "lfc"]
    grid = jd.Grid(tables, pool)
    picks = {t: grid.nested([u for u in grid.targets if u != t]) for t in grid.targets}
    chosen = grid.nested(grid.targets)
    return {
        "hub": judged(tables["hub"], hub_rankers),
        "first": judged(tables["first"], first_rankers),
        "selection": {
            "pool": pool,
            "folds": {t: c.describe() for t, c in picks.items()},
            "folds_with_lfc": sum("lfc" in c.estimators for c in picks.values()),
            "loto": {b: jd.summary(grid, picks, b) for b in tables},
            "selected": chosen.describe(),
        },
    }


def report(evaluation: dict[str, Any], config: dict[str, Any], heuristics: dict[str, Any]) -> str:
    lines = [
        f"Gradient and kernel evidence (LGC on {config['n']} training images per target and "
        f"{config['directions']} random output directions; LFC on the whole training split)",
    ]
    for bench, title in (("hub", "Hub-like benchmark"), ("first", "first benchmark")):
        ev_b = evaluation[bench]
        lines += [
            "",
            f"{title}:",
            f"{'ranker':<22} {'mean τw':>8} {'regret':>7} {'worst':>6}   regret per target",
        ]
        for name in ev_b["mean_tau_w"]:
            detail = " ".join(f"{t} {float(v['regret']):.1f}" for t, v in ev_b["per_target"][name].items())
            lines.append(
                f"{name:<22} {ev_b['mean_tau_w'][name]:8.3f} {ev_b['mean_regret'][name]:7.2f} "
                f"{ev_b['worst_regret'][name]:6.1f}   {detail}"
            )
        if bench == "hub":
            lines += [
                f"{'[' + h + ']':<22} {heuristics['mean_tau_w'][h]:8.3f} {heuristics['mean_regret'][h]:7.2f} "
                f"{heuristics['worst_regret'][h]:6.1f}   (bench/hub_quality.py)"
                for h in ("name_match", "most_params")
            ]
    sel = evaluation["selection"]
    lines += [
        "",
        f"tlreg's selection of the defaults with LFC in the pool ({', '.join(sel['pool'])}), "
        "leave-one-target-out over both benchmarks:",
        f"  LFC chosen in {sel['folds_with_lfc']} of {len(sel['folds'])} folds; selected on all targets: "
        f"{sel['selected']}",
    ]
    lines += [
        f"  held out, {b}: mean τw {v['mean_tau_w']:.3f}, regret {v['mean_regret']:.2f}, "
        f"worst {v['worst_regret']:.1f}"
        for b, v in sel["loto"].items()
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--report", action="store_true", help="evaluate the committed scores; compute nothing"
    )
    parser.add_argument("--work", type=Path, help="the Hub-like build's work folder (default: its own)")
    first_scores = parser.add_mutually_exclusive_group()
    first_scores.add_argument(
        "--first-work", type=Path, help="the first benchmark's work folder (default: its own)"
    )
    first_scores.add_argument(
        "--keep-first",
        action="store_true",
        help="keep the committed first-benchmark scores (that build unchanged); recompute the Hub-like ones",
    )
    parser.add_argument("--n", type=int, default=N_IMAGES, help="training images per target")
    parser.add_argument("--directions", type=int, default=DIRECTIONS, help="random output directions")
    args = parser.parse_args()
    results = json.loads(HUB_RESULTS.read_text())
    first = json.loads(FIRST_RESULTS.read_text())
    if args.report:
        doc = json.loads(SCORES.read_text())
    else:
        from hub_quality import default_work as hub_work
        from transfer_quality import default_work as first_work

        doc = compute(args.work or hub_work(), results, n=args.n, directions=args.directions, seed=SEED)
        if args.keep_first:
            doc["first"] = json.loads(SCORES.read_text())["first"]
        else:
            doc["first"] = compute_first(args.first_work or first_work(), first)
        jsonio.write_json(SCORES, doc)
        print(f"wrote {SCORES}", file=sys.stderr)
    evaluation = evaluate(results, first, doc)
    print(report(evaluation, doc["config"], json.loads(HUB_EVALUATION.read_text())))


if __name__ == "__main__":
    main()
