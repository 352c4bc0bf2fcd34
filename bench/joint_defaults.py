"""Choosing tlreg's default estimators on both benchmarks at once, judged leave-one-target-out.

    python bench/joint_defaults.py            # from the committed results files; builds nothing
    python bench/joint_defaults.py --json F   # also write the figures to F

The first benchmark (``bench/transfer_quality.py``: 23 models, 7 targets, an ImageNet model best on
every target) and the Hub-like one (``bench/hub_quality.py``: 21 candidates, 8 targets, 5 distinct
winners) pull the choice different ways; a default must do well on both. The 15 targets are pooled:
for each target in turn, a combination is selected on the other 14 by tlreg's procedure
(``transfer_eval.nested_search``: the search space, largest subset and aggregation, chosen by an inner
leave-one-target-out, then the best mean τw in it) and judged on the held-out target. The pool is
the estimators a default can run on any candidate: ``POOL`` (SFDA is left out: it refuses features
wider than the sample less the classes, 1280 dimensions on the demo's 120 digits, and scored no
model of the Hub-like benchmark).

Printed: every fold's choice; the held-out mean τw, mean and worst regret on each benchmark; the
combination selected on all 15 targets, and its in-sample figures next to each heuristic's (the
first benchmark's priors; the Hub-like benchmark's heuristics, ``hub_eval``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import hub_eval as he
import jsonio
import numpy as np
import transfer_eval as ev
from tlreg.advisor import rank

ROOT = Path(__file__).resolve().parents[1]
FIRST = ROOT / "data" / "bench" / "transfer_quality_results.json"
HUB = ROOT / "data" / "bench" / "hub_quality_results.json"
POOL = ("gbc", "hscore_shrinkage", "knn", "leep", "logme", "nce", "nleep")


def combos(pool: Sequence[str], max_size: int = ev.MAX_SUBSET) -> list[ev.Combo]:
    return [
        ev.Combo(tuple(sub), method)
        for size in range(1, max_size + 1)
        for sub in itertools.combinations(sorted(pool), size)
        for method in ev.METHODS
    ]


class Grid:
    """τw and regret of every combination on every target of both benchmarks, computed once."""

    def __init__(self, tables: Mapping[str, ev.Table], pool: Sequence[str]) -> None:
        self.combos = combos(pool)
        self.targets = [f"{b}/{t}" for b, table in tables.items() for t in table.targets]
        self.tau: dict[tuple[ev.Combo, str], float] = {}
        self.regret: dict[tuple[ev.Combo, str], float] = {}
        for b, table in tables.items():
            for t in table.targets:
                truth = table.accuracy[t]
                for c in self.combos:
                    values = c.values(table.scores[t])
                    self.tau[c, f"{b}/{t}"] = ev.tau_w(values, truth)
                    self.regret[c, f"{b}/{t}"] = ev.regret(values, truth, table.params)

    def mean_tau(self, combo: ev.Combo, targets: Sequence[str]) -> float:
        return float(np.mean([self.tau[combo, t] for t in targets]))

    def best(self, targets: Sequence[str], space: ev.Space) -> ev.Combo:
        pool = [c for c in self.combos if len(c.estimators) <= space[0] and c.method in space[1]]
        return max(pool, key=lambda c: ev._key(c, self.mean_tau(c, targets)))

    def nested(self, targets: Sequence[str]) -> ev.Combo:
        """``transfer_eval.nested_search`` on the pooled targets: the space by inner leave-one-out."""
        inner: dict[ev.Space, list[float]] = {s: [] for s in ev.SPACES}
        for held in targets:
            rest = [t for t in targets if t != held]
            for space in ev.SPACES:
                inner[space].append(self.tau[self.best(rest, space), held])
        means = {s: float(np.mean(v)) for s, v in inner.items()}
        space = max(ev.SPACES, key=lambda s: (round(means[s], 12), -s[0], -len(s[1]), s[1] == ("rank",)))
        return self.best(targets, space)


def summary(grid: Grid, picks: Mapping[str, ev.Combo], bench: str) -> dict[str, float]:
    held = [t for t in picks if t.startswith(f"{bench}/")]
    regrets = [grid.regret[picks[t], t] for t in held]
    return {
        "mean_tau_w": float(np.mean([grid.tau[picks[t], t] for t in held])),
        "mean_regret": float(np.mean(regrets)),
        "worst_regret": float(np.max(regrets)),
    }


def heuristics(hub: Mapping, tables: Mapping[str, ev.Table]) -> dict[str, dict[str, dict[str, float]]]:
    """Each benchmark's heuristics, as its own evaluation judges them."""
    first = tables["first"]
    out: dict[str, dict[str, dict[str, float]]] = {"first": {}, "hub": {}}
    for prior in ev.PRIORS:
        per = ev.judge(first, lambda t, p=prior: ev.values_of(first, t, p))
        out["first"][prior] = {
            "mean_tau_w": ev.mean(per, "tau_w"),
            "mean_regret": ev.mean(per, "regret"),
            "worst_regret": max(float(v["regret"]) for v in per.values()),
        }
    table = tables["hub"]
    noise = he.realism(hub, table)["seed_noise_pp"]
    judged = he.judge_all(hub, table, noise if math.isfinite(noise) else 0.0)
    for h in he.HEURISTICS:
        out["hub"][h] = {k: v for k, v in he.summarise(judged[h]).items() if k != "within_noise"}
    return out


def tables(first: Mapping | None = None, hub: Mapping | None = None) -> dict[str, ev.Table]:
    """Both benchmarks' ground truth (default: the committed results files)."""
    first = first if first is not None else json.loads(FIRST.read_text())
    hub = hub if hub is not None else json.loads(HUB.read_text())
    return {"first": ev.table_from_results(first), "hub": he.hub_table(hub)}


def pool_of(both: Mapping[str, ev.Table], pool: Sequence[str] = POOL) -> list[str]:
    """The estimators of ``pool`` that both benchmarks scored."""
    scored = [set(ev.estimator_names(table)) for table in both.values()]
    return [n for n in pool if all(n in names for names in scored)]


def select(first: Mapping | None = None, hub: Mapping | None = None, pool: Sequence[str] = POOL) -> ev.Combo:
    """The combination tlreg's procedure selects on all targets of both benchmarks: what to ship."""
    both = tables(first, hub)
    grid = Grid(both, pool_of(both, pool))
    return grid.nested(grid.targets)


#: Ridge penalties tried for the learned weighting (each judged leave-one-target-out; none is chosen).
ALPHAS = (0.1, 1.0, 10.0, 100.0)


def within_target_ranks(table: ev.Table, target: str, names: Sequence[str]) -> np.ndarray:
    """Models x ``names`` matrix of ranks in [0, 1] within the target (1 = best; ``params`` = the
    parameter count; a NaN score ranks last), the inputs the rank aggregation uses too."""
    from scipy.stats import rankdata

    cols = []
    for name in names:
        if name == "params":
            v = np.array([table.params[m] for m in table.models], dtype=float)
        else:
            v = np.array([table.scores[target][m].get(name, math.nan) for m in table.models], dtype=float)
        v = np.where(np.isfinite(v), v, -np.inf)
        cols.append((rankdata(v) - 1) / max(len(v) - 1, 1))
    return np.stack(cols, 1)


def learned(both: Mapping[str, ev.Table], names: Sequence[str], alpha: float) -> dict[str, dict[str, float]]:
    """A weighting learned instead of chosen: ridge regression of each model's within-target accuracy
    rank on its within-target ranks by ``names`` (an estimator, or ``params``), fitted on 14 targets of
    both benchmarks and judged on the held-out one. Per benchmark: mean τw, mean and worst regret."""
    from scipy.stats import rankdata
    from sklearn.linear_model import Ridge

    rows = []
    for b, table in both.items():
        for t in table.targets:
            acc = np.array([table.accuracy[t][m] for m in table.models])
            y = (rankdata(acc) - 1) / max(len(acc) - 1, 1)
            rows.append((b, t, table, within_target_ranks(table, t, names), y))
    per: dict[str, list[tuple[float, float]]] = {b: [] for b in both}
    for i, (b, t, table, x, _) in enumerate(rows):
        rest = rows[:i] + rows[i + 1 :]
        model = Ridge(alpha=alpha).fit(
            np.concatenate([r[3] for r in rest]), np.concatenate([r[4] for r in rest])
        )
        values = dict(zip(table.models, model.predict(x), strict=True))
        per[b].append(
            (ev.tau_w(values, table.accuracy[t]), ev.regret(values, table.accuracy[t], table.params))
        )
    return {
        b: {
            "mean_tau_w": float(np.mean([v[0] for v in vs])),
            "mean_regret": float(np.mean([v[1] for v in vs])),
            "worst_regret": float(np.max([v[1] for v in vs])),
        }
        for b, vs in per.items()
    }


def evaluate(pool: Sequence[str] = POOL) -> dict:
    hub = json.loads(HUB.read_text())
    both = tables(hub=hub)
    grid = Grid(both, pool_of(both, pool))
    picks = {t: grid.nested([u for u in grid.targets if u != t]) for t in grid.targets}
    chosen = grid.nested(grid.targets)
    in_sample = {t: chosen for t in grid.targets}
    return {
        "pool": pool_of(both, pool),
        "folds": {
            t: {"combo": c.describe(), "tau_w": grid.tau[c, t], "regret": grid.regret[c, t]}
            for t, c in picks.items()
        },
        "loto": {b: summary(grid, picks, b) for b in both},
        "selected": chosen.describe(),
        "selected_config": chosen.to_dict(),
        "selected_in_sample": {b: summary(grid, in_sample, b) for b in both},
        "heuristics": heuristics(hub, both),
        "learned": {
            f"{'+'.join(names)}, alpha {alpha:g}": learned(both, names, alpha)
            for names in (
                [*rank.DEFAULT_ESTIMATORS["classification"], "params"],
                [*pool_of(both, pool), "params"],
            )
            for alpha in ALPHAS
        },
    }


def report(doc: Mapping) -> str:
    lines = [f"Pool: {', '.join(doc['pool'])}; leave-one-target-out over both benchmarks' 15 targets", ""]
    lines += [
        f"  held out {t:<20} {f['combo']:<48} tau_w {f['tau_w']:6.3f}  regret {f['regret']:5.1f}"
        for t, f in doc["folds"].items()
    ]
    lines.append("")
    for b, s in doc["loto"].items():
        lines.append(
            f"held-out, {b:<5}: mean tau_w {s['mean_tau_w']:.3f}, mean regret {s['mean_regret']:.1f}, "
            f"worst {s['worst_regret']:.1f}"
        )
    lines += ["", f"selected on all 15 targets: {doc['selected']}"]
    for b, s in doc["selected_in_sample"].items():
        lines.append(
            f"  in-sample, {b:<5}: mean tau_w {s['mean_tau_w']:.3f}, mean regret {s['mean_regret']:.1f}, "
            f"worst {s['worst_regret']:.1f}"
        )
        for h, v in doc["heuristics"][b].items():
            lines.append(
                f"    [{h}] mean tau_w {v['mean_tau_w']:.3f}, mean regret {v['mean_regret']:.1f}, "
                f"worst {v['worst_regret']:.1f}"
            )
    lines += ["", "learned weighting (ridge on within-target ranks), leave-one-target-out:"]
    for label, by in doc["learned"].items():
        lines.append(
            f"  {label}: "
            + "; ".join(
                f"{b} {v['mean_tau_w']:.3f} / {v['mean_regret']:.2f} / {v['worst_regret']:.1f}"
                for b, v in by.items()
            )
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--pool", nargs="+", default=list(POOL), help=f"estimators (default: {' '.join(POOL)})"
    )
    args = parser.parse_args()
    doc = evaluate(args.pool)
    print(report(doc))
    if args.json:
        jsonio.write_json(args.json, doc)


if __name__ == "__main__":
    main()
