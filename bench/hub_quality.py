"""Advice quality on a Hub-like model space: does tlreg beat the obvious choices where the winner moves?

    python bench/hub_quality.py               # build the ground truth (cached, resumable), evaluate, print
    python bench/hub_quality.py --report      # evaluate the committed results only; builds nothing
    python bench/hub_quality.py --build-only  # build (or resume) and write the results file
    python bench/hub_quality.py --quick       # a tiny build into the work folder (a smoke run)

**The model space** (``bench/hub_build.py``). Real users choose among many fine-tuned descendants of a
few backbones. The three real ImageNet EfficientNet-Lites (``pkg:efficientnet_lite0/1/2``) are each
fine-tuned on six source tasks (``bench/hub_tasks.py``: handwritten digits, font letters, shapes,
textures, the rotation of photo crops, and shapes with shuffled labels — a harmful source), saved as
the Hub would (``timm.models.save_for_hf``) and registered with ``tlreg registry add``: 18
descendants and the three originals. Each architecture is also randomly initialised (the
negative-transfer truth's baseline). Inputs are 32x32 images run at 64 px.

**Ground truth.** Eight targets; for every (model, target): test accuracy after a full fine-tune
under one fixed budget, and after a linear probe on frozen features; the same for the random-init
architectures and (probe) the raw pixels. Each target's top candidates are fine-tuned again with
another seed: the spread is the build's noise. On a target where it exceeds ``noisy_pp`` (2 points)
every candidate is fine-tuned with ``noisy_seeds`` (4) seeds, then with the fewest seeds in all (at
most ``max_seeds``, 16) whose mean's sd, from one seed's sd pooled over the candidates, is at most
``truth_sd_pp`` (1) point; the truth there is the mean over the seeds (``bench/hub_noise.py``).
The build checks its own realism (distinct winners, how often the largest model wins).

Outputs: ``data/bench/hub_quality_results.json`` (the ground truth, every score, seeds, versions,
timings) and ``data/bench/hub_quality.json`` (the evaluation). The report goes to stdout, progress
to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from jsonio import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "data" / "bench" / "hub_quality_results.json"
EVALUATION = ROOT / "data" / "bench" / "hub_quality.json"


def default_work() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("tlreg")) / "bench" / "hub_quality"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument(
        "--report", action="store_true", help="Evaluate the results file only; build nothing."
    )
    parser.add_argument(
        "--build-only", action="store_true", help="Build (or resume) and write the results only."
    )
    parser.add_argument("--quick", action="store_true", help="A tiny build (smoke run), written into --work.")
    parser.add_argument(
        "--work", type=Path, default=None, help="Cache folder of the build (default: user cache)."
    )
    parser.add_argument("--results", type=Path, default=None, help=f"Ground-truth file (default {RESULTS}).")
    parser.add_argument("--out", type=Path, default=None, help=f"Evaluation file (default {EVALUATION}).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the whole build (default 0).")
    parser.add_argument("--workers", type=int, default=None, help="Worker processes (default: one per core).")
    args = parser.parse_args(argv)
    work = args.work or default_work()
    quick_dir = work / "quick"
    results_path = args.results or (quick_dir / RESULTS.name if args.quick else RESULTS)
    out_path = args.out or (quick_dir / EVALUATION.name if args.quick else EVALUATION)
    if args.report:
        if not results_path.is_file():
            print(
                f"error: {results_path}: no such file; build it with: python bench/hub_quality.py",
                file=sys.stderr,
            )
            return 2
        results = json.loads(results_path.read_text())
    else:
        import hub_build
        import hub_run

        cfg = hub_build.quick_config(args.seed) if args.quick else hub_build.HubConfig(seed=args.seed)
        log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
        results = hub_run.build(quick_dir if args.quick else work, cfg, log=log, workers=args.workers)
        write_json(results_path, results)
        if args.build_only:
            print(f"wrote {results_path}")
            return 0
    import hub_eval

    doc = hub_eval.evaluate(results)
    doc["results_file"] = {"name": results_path.name, "sha256": sha256(results_path)}
    write_json(out_path, doc)
    print(hub_eval.report(doc))
    if args.quick:
        print("(a --quick smoke run: a handful of steps on 2 targets; its figures are not evidence)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
