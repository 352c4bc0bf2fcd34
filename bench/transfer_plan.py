"""How to transfer the pick: is tlreg's plan (mode, blocks to unfreeze) and its learning curve right?

    python bench/transfer_plan.py               # build on the Hub-like work folder, evaluate, print
    python bench/transfer_plan.py --report      # evaluate the committed results only; builds nothing
    python bench/transfer_plan.py --build-only  # build (or resume) and write the results file

**Ground truth** (``bench/plan_build.py``), on the Hub-like benchmark (``bench/hub_quality.py``): for
each of its 8 targets' 5 best candidates, test accuracy after a linear probe (frozen features), after
partial fine-tunes of the last 1, 2 and half of the blocks, and after a full fine-tune, all under the
same fixed budget; the depth profile (each block's pooled features, scored) and the learning curve
from a quarter of the training split, with tlreg's own code.

**Evaluation** (``bench/plan_eval.py``): the accuracy lost by following tlreg's plan against the best
mode in hindsight, next to the fixed policies (always linear, always partial, always full); the
learning curve's error and the coverage of its 80 % interval at the full training size.

Outputs: ``data/bench/transfer_plan_results.json`` and ``data/bench/transfer_plan.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HUB_RESULTS = ROOT / "data" / "bench" / "hub_quality_results.json"
RESULTS = ROOT / "data" / "bench" / "transfer_plan_results.json"
EVALUATION = ROOT / "data" / "bench" / "transfer_plan.json"


def main(argv: list[str] | None = None) -> int:
    from hub_quality import default_work, sha256
    from jsonio import write_json

    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument(
        "--report", action="store_true", help="Evaluate the results file only; build nothing."
    )
    parser.add_argument(
        "--build-only", action="store_true", help="Build (or resume) and write the results only."
    )
    parser.add_argument("--work", type=Path, default=None, help="The Hub-like build's work folder.")
    parser.add_argument("--hub-results", type=Path, default=HUB_RESULTS, help="The Hub-like build's results.")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help=f"Ground-truth file (default {RESULTS})."
    )
    parser.add_argument(
        "--out", type=Path, default=EVALUATION, help=f"Evaluation file (default {EVALUATION})."
    )
    parser.add_argument("--workers", type=int, default=None, help="Worker processes (default: one per core).")
    args = parser.parse_args(argv)
    for needed in [args.results] if args.report else [args.hub_results]:
        if not needed.is_file():
            print(f"error: {needed}: no such file; build it first (see --help)", file=sys.stderr)
            return 2
    hub = json.loads(args.hub_results.read_text())
    if args.report:
        results = json.loads(args.results.read_text())
    else:
        import hub_build
        import plan_run

        cfg = hub_build.config_from_dict(hub["config"])
        log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
        results = plan_run.build(args.work or default_work(), cfg, hub, log=log, workers=args.workers)
        write_json(args.results, results)
        if args.build_only:
            print(f"wrote {args.results}")
            return 0
    import plan_eval

    doc = plan_eval.evaluate(results, hub)
    doc["results_file"] = {"name": args.results.name, "sha256": sha256(args.results)}
    write_json(args.out, doc)
    print(plan_eval.report(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
