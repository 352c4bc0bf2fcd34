"""Judging rankings against the ground truth: weighted Kendall τ, top-1 regret, leave-one-target-out.

A *ranker* gives each model of the zoo a value on a target (higher = expected to transfer better):
an estimator, a prior (parameter count, published ImageNet top-1) or a combination of estimators
(:func:`tlreg.advisor.rank.combine`). It is judged per target by

- τw, :func:`scipy.stats.weightedtau` between its values and the fine-tuned accuracies (the
  hyperbolic, additive weighting by default, which weighs swaps near the top more; as SFDA and
  NLEEP report it). A ranker that gives every model the same value carries no information: τw 0.
  Models a ranker cannot score (NaN) are tied below all the others, as ``recommend`` orders them.
- regret: the accuracy of the best model minus that of the ranker's pick, in percentage points
  (ties in the ranker's values broken by fewer parameters, then name, as ``recommend`` does).

The combination's estimators, weights and aggregation are *selected* on targets by
:func:`select`; :func:`leave_one_target_out` selects on all targets but one and judges the choice
on the held-out one, so the reported figure is not tuned on the target it is judged on.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import hub_noise
import numpy as np
from scipy.stats import weightedtau
from tlreg.advisor import rank

PRIORS = ("params", "imagenet_top1")
#: Per-model sums of ETran's and NCTI's components, shown next to their pool-normalised versions.
RAW_SUMS = {"etran_sum": "etran", "ncti_sum": "ncti"}
COMBINED = "combined"
#: Aggregations tried by :func:`select`; the largest estimator subset it tries.
METHODS = rank.AGGREGATIONS
MAX_SUBSET = 4


@dataclass
class Table:
    """The ground truth in the shape the evaluation needs (see :func:`table_from_results`)."""

    targets: list[str]
    models: list[str]
    accuracy: dict[str, dict[str, float]]  # target -> model -> fine-tuned test accuracy
    probe: dict[str, dict[str, float]]  # target -> model -> linear-probe test accuracy
    scores: dict[str, dict[str, dict[str, float]]]  # target -> model -> estimator -> value (NaN: none)
    params: dict[str, float]
    imagenet_top1: dict[str, float]  # NaN where unpublished

    def restrict(self, targets: Sequence[str]) -> Table:
        """The same table with only ``targets``: what a selection on those targets may look at."""
        keep = list(targets)
        return Table(
            keep,
            self.models,
            {t: self.accuracy[t] for t in keep},
            {t: self.probe[t] for t in keep},
            {t: self.scores[t] for t in keep},
            self.params,
            self.imagenet_top1,
        )

    def truth(self, ground_truth: str) -> dict[str, dict[str, float]]:
        return self.accuracy if ground_truth == "finetune" else self.probe


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)


def table_from_results(results: Mapping, *, seeds: str = "mean") -> Table:
    """A :class:`Table` from a results document (``bench/transfer_quality.py``'s; ``hub_eval.hub_table``
    hands the Hub-like one): the fine-tuned accuracy is ``hub_noise.truth``'s, the mean over the seeds
    on the targets the build found too noisy for one (``seeds="first"``: the first fine-tune)."""
    truth = hub_noise.truth(results, seeds=seeds)
    models = list(results["models"])
    targets = list(results["targets"])
    accuracy: dict[str, dict[str, float]] = {t: {} for t in targets}
    probe: dict[str, dict[str, float]] = {t: {} for t in targets}
    scores: dict[str, dict[str, dict[str, float]]] = {t: {} for t in targets}
    for pair in results["pairs"]:
        t, m = pair["target"], pair["model"]
        accuracy[t][m] = truth[m, t]
        probe[t][m] = float(pair["probe_acc"])
        scores[t][m] = {k: _num(v) for k, v in pair["scores"].items()}
    for t in targets:
        missing = set(models) - set(accuracy[t])
        if missing:
            raise ValueError(f"target {t}: no result for {', '.join(sorted(missing))}; rebuild the zoo")
    info = results["models"]
    return Table(
        targets,
        models,
        accuracy,
        probe,
        scores,
        {m: float(info[m]["params"]) for m in models},
        {m: _num(info[m].get("imagenet_top1")) for m in models},
    )


def estimator_names(table: Table) -> list[str]:
    """Every estimator with a score in the table (components included), in name order."""
    return sorted({name for by_model in table.scores.values() for s in by_model.values() for name in s})


def combinable(table: Table) -> list[str]:
    """The estimators a combination may use: whole estimators, not the components of ETran / NCTI."""
    names = estimator_names(table)
    parts = {p for n in names for p in rank.components_of(n)}
    return [n for n in names if n not in parts]


# --- one ranker on one target ------------------------------------------------------------------


def values_of(table: Table, target: str, name: str) -> dict[str, float]:
    """Ranker ``name``'s value per model on ``target``.

    Priors: ``params`` (more is better) and ``imagenet_top1`` (models without a published top-1,
    i.e. all but the bundled ones, get 0: tied below every model that has one). ``combined`` is
    :func:`tlreg.advisor.rank.combine` with the defaults ``recommend`` uses for classification.
    """
    scores = table.scores[target]
    if name == "params":
        return dict(table.params)
    if name == "imagenet_top1":
        return {m: (v if math.isfinite(v) else 0.0) for m, v in table.imagenet_top1.items()}
    if name == COMBINED:
        return rank.combine(scores, rank.DEFAULT_ESTIMATORS["classification"])
    if name in RAW_SUMS:
        return {m: scores[m].get(RAW_SUMS[name], math.nan) for m in table.models}
    return rank.signal(scores, name)


def tau_w(values: Mapping[str, float], accuracy: Mapping[str, float]) -> float:
    """Weighted Kendall τ between a ranker's values and the accuracies (NaN values tied last)."""
    models = list(accuracy)
    x = np.array([values.get(m, math.nan) for m in models], dtype=float)
    finite = np.isfinite(x)
    if finite.sum() == 0 or (finite.all() and np.ptp(x) == 0):
        return 0.0
    x[~finite] = x[finite].min() - 1.0
    tau = float(weightedtau(x, np.array([accuracy[m] for m in models]))[0])
    return tau if math.isfinite(tau) else 0.0


def pick(values: Mapping[str, float], params: Mapping[str, float]) -> str:
    """The model a ranker recommends: ``rank.order``, ties to fewer parameters, then name."""
    return rank.order(dict(values), params)[0]


def regret(values: Mapping[str, float], accuracy: Mapping[str, float], params: Mapping[str, float]) -> float:
    """Best accuracy minus the pick's, in percentage points."""
    chosen = pick({m: values.get(m, math.nan) for m in accuracy}, params)
    return 100.0 * (max(accuracy.values()) - accuracy[chosen])


def judge(
    table: Table, values_for: Callable[[str], Mapping[str, float]], *, ground_truth: str = "finetune"
) -> dict[str, dict[str, float | str]]:
    """Per target: τw, regret and the pick of the ranker whose values ``values_for(target)`` gives."""
    out: dict[str, dict[str, float | str]] = {}
    truth = table.truth(ground_truth)
    for t in table.targets:
        values = values_for(t)
        out[t] = {
            "tau_w": tau_w(values, truth[t]),
            "regret": regret(values, truth[t], table.params),
            "pick": pick({m: values.get(m, math.nan) for m in truth[t]}, table.params),
        }
    return out


def mean(per_target: Mapping[str, Mapping[str, float | str]], key: str) -> float:
    return float(np.mean([float(v[key]) for v in per_target.values()]))


# --- combinations: selection and leave-one-target-out --------------------------------------------


@dataclass(frozen=True)
class Combo:
    """A combination of estimators as :func:`tlreg.advisor.rank.combine` computes it."""

    estimators: tuple[str, ...]
    method: str = rank.DEFAULT_AGGREGATION
    weights: tuple[float, ...] | None = None  # None: equal
    note: str = field(default="", compare=False)  # how it was chosen

    def weight_map(self) -> dict[str, float]:
        return dict(zip(self.estimators, self.weights or [1.0] * len(self.estimators), strict=True))

    def values(self, scores: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        return rank.combine(scores, self.estimators, self.weight_map(), method=self.method)

    def describe(self) -> str:
        parts = (
            [f"{e}×{w:.2f}" for e, w in self.weight_map().items()] if self.weights else list(self.estimators)
        )
        return f"{' + '.join(parts)} ({self.method})"

    def to_dict(self) -> dict[str, object]:
        return {"estimators": list(self.estimators), "method": self.method, "weights": self.weight_map()}


_TAU_MEMO: dict[tuple[Combo, str, str], float] = {}


def _digest(table: Table, target: str, truth: Mapping[str, float]) -> str:
    """A hash of everything a combination's τw on ``target`` depends on."""
    import hashlib
    import json

    data = [table.models, truth, table.scores[target], table.params]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class ComboScorer:
    """τw of many combinations on many targets, fast: each estimator's normalised values are computed
    once per (target, method) with ``rank.signal`` and ``rank.normalise`` — the functions
    ``rank.combine`` uses — and a combination is their weighted mean over the estimators that scored
    the model (tests check it equals ``rank.combine``)."""

    def __init__(self, table: Table, names: Sequence[str], *, ground_truth: str = "finetune") -> None:
        self.table = table
        self.names = list(names)
        self.ground_truth = ground_truth
        self.truth = table.truth(ground_truth)
        self.rows: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        for t in table.targets:
            signals = {n: rank.signal(table.scores[t], n) for n in names}
            for method in METHODS:
                self.rows[t, method] = {
                    n: rank.normalise(np.array([signals[n][m] for m in table.models]), method) for n in names
                }
        # A target's τw for a combination depends on that target's data alone, so it is memoised across
        # scorers (the folds of leave-one-target-out) under a digest of exactly that data.
        self.digest = {t: _digest(table, t, self.truth[t]) for t in table.targets}

    def values(self, combo: Combo, target: str) -> dict[str, float]:
        rows = self.rows[target, combo.method]
        total = np.zeros(len(self.table.models))
        weight = np.zeros(len(self.table.models))
        for name, w in combo.weight_map().items():
            if w <= 0:
                continue
            ok = np.isfinite(rows[name])
            total[ok] += w * rows[name][ok]
            weight[ok] += w
        with np.errstate(invalid="ignore", divide="ignore"):
            combined = np.where(weight > 0, total / weight, np.nan)
        return dict(zip(self.table.models, combined.tolist(), strict=True))

    def tau(self, combo: Combo, target: str) -> float:
        key = (combo, target, self.digest[target])
        if key not in _TAU_MEMO:
            _TAU_MEMO[key] = tau_w(self.values(combo, target), self.truth[target])
        return _TAU_MEMO[key]

    def mean_tau(self, combo: Combo, targets: Sequence[str]) -> float:
        return float(np.mean([self.tau(combo, t) for t in targets]))


def candidates(names: Sequence[str], *, max_size: int = MAX_SUBSET) -> list[Combo]:
    """Every subset of ``names`` up to ``max_size`` estimators, equal weights, each aggregation."""
    return [
        Combo(tuple(subset), method)
        for size in range(1, max_size + 1)
        for subset in itertools.combinations(sorted(names), size)
        for method in METHODS
    ]


def _key(combo: Combo, mean_tau: float) -> tuple:
    """Best mean τw first; ties: fewer estimators, rank before zscore, then names."""
    return (
        round(mean_tau, 12),
        -len(combo.estimators),
        combo.method == rank.DEFAULT_AGGREGATION,
        tuple(-ord(ch) for ch in "".join(combo.estimators)),
    )


def select(scorer: ComboScorer, targets: Sequence[str], pool: Sequence[Combo]) -> Combo:
    """The combination of ``pool`` with the best mean τw on ``targets``. It sees only those targets."""
    return max(pool, key=lambda c: _key(c, scorer.mean_tau(c, targets)))


#: The search spaces the selection chooses among: (largest subset, aggregations tried).
Space = tuple[int, tuple[str, ...]]
SPACES: tuple[Space, ...] = tuple(
    (size, methods) for size in range(1, MAX_SUBSET + 1) for methods in (("rank",), ("zscore",), METHODS)
)


def describe_space(space: Space) -> str:
    return f"subsets of up to {space[0]}, {' or '.join(space[1])}"


def best_per_space(scorer: ComboScorer, targets: Sequence[str]) -> dict[Space, Combo]:
    """The best combination on ``targets`` within each of :data:`SPACES` (equal weights)."""
    pool = candidates(scorer.names)
    means = {c: scorer.mean_tau(c, targets) for c in pool}
    return {
        space: max(
            (c for c in pool if len(c.estimators) <= space[0] and c.method in space[1]),
            key=lambda c: _key(c, means[c]),
        )
        for space in SPACES
    }


def choose_space(scorer: ComboScorer, targets: Sequence[str]) -> tuple[Space, dict[Space, float]]:
    """The search space whose selections generalise best *within* ``targets``: each space is judged
    by leave-one-target-out over ``targets`` alone (ties: the smaller space). Returns the space and
    every space's inner figure."""
    inner: dict[Space, list[float]] = {space: [] for space in SPACES}
    for held in targets:
        rest = [t for t in targets if t != held]
        sub = ComboScorer(scorer.table.restrict(rest), scorer.names, ground_truth=scorer.ground_truth)
        for space, combo in best_per_space(sub, rest).items():
            inner[space].append(scorer.tau(combo, held))
    means = {space: float(np.mean(v)) for space, v in inner.items()}
    best = max(SPACES, key=lambda s: (round(means[s], 12), -s[0], -len(s[1]), s[1] == ("rank",)))
    return best, means


def nested_search(scorer: ComboScorer, targets: Sequence[str]) -> Combo:
    """tlreg's selection procedure: choose the search space (largest subset, aggregation) by an inner
    leave-one-target-out over ``targets`` (:func:`choose_space`), then the best combination in it on
    all of ``targets``. Searching a large space on few targets overfits; this lets the evidence say
    how large a space the targets can support, without looking outside ``targets``."""
    space, _ = choose_space(scorer, targets)
    return replace(best_per_space(scorer, targets)[space], note=describe_space(space))


def subset_search(scorer: ComboScorer, targets: Sequence[str]) -> Combo:
    """The best of every subset of up to :data:`MAX_SUBSET` estimators, equal weights, under each
    aggregation (:func:`candidates`, :func:`select`): the largest search space, with no inner check."""
    return select(scorer, targets, candidates(scorer.names))


def best_single(scorer: ComboScorer, targets: Sequence[str]) -> Combo:
    """The one estimator with the best mean τw on ``targets`` (what choosing a single estimator from
    evidence gives: the fair comparison for the combination's leave-one-target-out figure)."""
    return select(scorer, targets, [Combo((n,)) for n in scorer.names])


def tau_weighted(scorer: ComboScorer, targets: Sequence[str], method: str = "rank") -> Combo:
    """Every estimator with a positive mean τw on ``targets``, weighted by that τw."""
    names = scorer.names
    taus = {n: scorer.mean_tau(Combo((n,), method), targets) for n in names}
    chosen = sorted(n for n, v in taus.items() if v > 0) or [max(taus, key=taus.__getitem__)]
    return Combo(tuple(chosen), method, tuple(max(taus[n], 1e-6) for n in chosen))


Procedure = Callable[[ComboScorer, Sequence[str]], Combo]


def leave_one_target_out(
    table: Table, procedure: Procedure, *, ground_truth: str = "finetune", names: Sequence[str] | None = None
) -> dict[str, dict[str, object]]:
    """For each target: the combination ``procedure`` selects on the *other* targets, judged on it.

    The procedure is handed a scorer built from a table restricted to the other targets, so the
    held-out target's scores and accuracies are out of its reach by construction.
    """
    names = list(names or combinable(table))
    folds: dict[str, dict[str, object]] = {}
    for held_out in table.targets:
        rest = [t for t in table.targets if t != held_out]
        train = ComboScorer(table.restrict(rest), names, ground_truth=ground_truth)
        combo = procedure(train, rest)
        values = combo.values(table.scores[held_out])
        truth = table.truth(ground_truth)[held_out]
        folds[held_out] = {
            "combo": combo.describe(),
            "how": combo.note,
            "config": combo.to_dict(),
            "tau_w": tau_w(values, truth),
            "regret": regret(values, truth, table.params),
        }
    return folds


def loto_per_space(
    table: Table, *, ground_truth: str = "finetune", names: Sequence[str] | None = None
) -> dict:
    """Leave-one-target-out of a selection *within each fixed* search space: how well each space's
    choices generalise. A view of the evidence, not a selection: picking the best row here would be
    choosing on the held-out targets (:func:`nested_search` makes that choice inside each fold)."""
    names = list(names or combinable(table))
    out: dict[Space, list[float]] = {space: [] for space in SPACES}
    for held_out in table.targets:
        rest = [t for t in table.targets if t != held_out]
        train = ComboScorer(table.restrict(rest), names, ground_truth=ground_truth)
        truth = table.truth(ground_truth)[held_out]
        for space, combo in best_per_space(train, rest).items():
            out[space].append(tau_w(combo.values(table.scores[held_out]), truth))
    return {describe_space(space): float(np.mean(v)) for space, v in out.items()}
