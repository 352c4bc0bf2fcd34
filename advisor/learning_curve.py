"""How many labels does the pick need? A learning curve from the cached features, extrapolated.

A linear probe (standardised features, L2 logistic regression with C = 1, as the benchmarks' probes)
is trained on nested stratified subsamples of the labelled sample — an eighth, a quarter, a half
and all of its training part — and scored on a held-out fifth; this is repeated on several splits
(at 12 items per class, as in the demo, the smallest subsample still holds one of each class). The points are
fitted with the inverse power law that learning curves follow in their saturating regime,

    acc(n) = a − b · n^(−c),    0 ≤ a ≤ 1, b ≥ 0, 0 < c ≤ 2

(Mukherjee et al., "Estimating dataset size requirements for classifying DNA microarray data",
J. Comput. Biol. 2003; Hestness et al., "Deep learning scaling is predictable, empirically", 2017),
and extrapolated to more labels. The interval comes from the spread of the repeats: each repeat's
points are fitted on their own, and the 10th–90th percentiles of their predictions, widened by the
residual noise of the pooled fit, give an 80 % interval. The benchmark (``bench/transfer_plan.py``)
checks how often it holds.

Regression targets get the same curve in R² (a ridge probe), unlabelled data none. A sample with
fewer than :data:`MIN_PER_CLASS` items per class in the smallest subsample has no curve: the
message says how many are needed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

FRACTIONS = (0.125, 0.25, 0.5, 1.0)
REPEATS = 5
HOLDOUT = 0.2
#: The smallest subsample must hold this many items of every class (and the holdout one).
MIN_PER_CLASS = 1
#: The interval's coverage.
COVERAGE = 0.8


@dataclass
class LearningCurve:
    """Probe accuracy (R² for regression) against the number of labelled training items, and the fit."""

    metric: str
    points: list[dict[str, float]] = field(default_factory=list)  # {n, mean, sd}
    params: dict[str, float] = field(default_factory=dict)  # a, b, c of the pooled fit
    repeat_params: list[dict[str, float]] = field(default_factory=list)
    residual_sd: float = 0.0
    n_labelled: int = 0
    note: str = ""

    @property
    def usable(self) -> bool:
        return bool(self.params)

    def predict(self, n: float) -> dict[str, float]:
        """The expected metric with ``n`` training items, and its 80 % interval."""
        if not self.usable:
            raise ValueError(f"no learning curve: {self.note}")
        mid = _law(n, **self.params)
        spread = [_law(n, **p) for p in self.repeat_params] or [mid]
        lo, hi = np.percentile(spread, [100 * (1 - COVERAGE) / 2, 100 * (1 + COVERAGE) / 2])
        z = 1.2816  # the 90th percentile of a standard normal: an 80 % two-sided interval
        lo = min(float(lo), mid) - z * self.residual_sd
        hi = max(float(hi), mid) + z * self.residual_sd
        top = 1.0  # accuracy and R² cannot exceed 1
        return {"n": float(n), "expected": min(mid, top), "low": lo, "high": min(hi, top)}

    def to_dict(self, *, ahead: Sequence[float] = (2.0,)) -> dict[str, object]:
        """JSON-ready: the points, the fit and predictions at ``ahead`` times the labelled sample."""
        doc: dict[str, object] = asdict(self)
        doc["predict"] = (
            [{"labels_x": k, **self.predict(k * self.n_labelled)} for k in ahead] if self.usable else []
        )
        return doc


def _law(n: float | np.ndarray, a: float, b: float, c: float) -> float | np.ndarray:
    return a - b * np.power(np.asarray(n, dtype=float), -c)


def _fit(n: np.ndarray, y: np.ndarray) -> dict[str, float] | None:
    from scipy.optimize import curve_fit

    order = np.argsort(n)
    n, y = n[order], y[order]
    top = max(float(y.max()), 1e-3)
    guess = (min(1.0, top + 0.05), max(1e-3, (top - float(y.min())) * float(n.min()) ** 0.5), 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(
                _law, n, y, p0=guess, bounds=([0.0, 0.0, 1e-3], [1.0, np.inf, 2.0]), maxfev=20000
            )
    except (RuntimeError, ValueError):
        return None
    return dict(zip("abc", (float(v) for v in params), strict=True))


def _probe_score(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, task: str
) -> float:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task == "classification":
        scaler = StandardScaler().fit(train_x)
        train_s, test_s = scaler.transform(train_x), scaler.transform(test_x)
        if len(train_s) < train_s.shape[1]:
            # Fewer items than dimensions: an L2-penalised linear model's weights lie in the span of the
            # training items (the representer theorem), so fitting on their coordinates in that span
            # gives the same predictions, in n instead of D dimensions (20x faster at 96 x 1280).
            basis = np.linalg.svd(train_s, full_matrices=False)[2].T
            train_s, test_s = train_s @ basis, test_s @ basis
        model = LogisticRegression(C=1.0, max_iter=1000).fit(train_s, train_y)
        return float((model.predict(test_s) == test_y).mean())
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    model.fit(train_x, train_y)
    residual = float(((model.predict(test_x) - test_y) ** 2).sum())
    total = float(((test_y - test_y.mean()) ** 2).sum())
    return 1.0 - residual / total if total > 0 else 0.0


def _split(labels: np.ndarray, task: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A stratified (classification) holdout of :data:`HOLDOUT`; the training part in a random order
    whose prefixes are stratified too (classes interleaved), so nested subsamples keep proportions."""
    n = len(labels)
    if task != "classification":
        perm = rng.permutation(n)
        cut = max(1, round(HOLDOUT * n))
        return perm[cut:], perm[:cut]
    train_parts, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        cut = max(1, round(HOLDOUT * len(members)))
        test.extend(members[:cut])
        train_parts.append(members[cut:])
    # interleave classes by rank within their class, so every prefix keeps the class proportions
    keyed = [(i / len(part), j, idx) for j, part in enumerate(train_parts) for i, idx in enumerate(part)]
    train = np.array([idx for _, _, idx in sorted(keyed)], dtype=np.int64)
    return train, np.asarray(test, dtype=np.int64)


def needed_items() -> int:
    """Labelled items per class a learning curve needs (the smallest subsample keeps MIN_PER_CLASS)."""
    return math.ceil(MIN_PER_CLASS / (min(FRACTIONS) * (1 - HOLDOUT)))


def learning_curve(
    features: np.ndarray,
    labels: np.ndarray | None,
    task: str,
    *,
    fractions: Sequence[float] = FRACTIONS,
    repeats: int = REPEATS,
    seed: int = 0,
) -> LearningCurve:
    """The learning curve of a linear probe on ``features`` (see the module doc); ``.note`` says why
    there is none (unlabelled data, too few items per class)."""
    metric = "accuracy" if task == "classification" else "r2"
    curve = LearningCurve(metric=metric, n_labelled=len(features))
    if labels is None or task == "unlabelled":
        curve.note = "unlabelled data: no learning curve (it needs labels)"
        return curve
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if task == "classification":
        smallest = int(np.bincount(np.unique(y, return_inverse=True)[1]).min())
        need = needed_items()
        if smallest < need:
            curve.note = (
                f"too few labelled items for a learning curve: the smallest class has {smallest}; "
                f"it needs {need} per class (so that {min(fractions):.0%} of them still holds "
                f"{MIN_PER_CLASS} per class)"
            )
            return curve
    elif len(y) < 30:
        curve.note = f"too few labelled items for a learning curve: {len(y)}; it needs 30"
        return curve
    rng = np.random.default_rng(seed)
    table: dict[int, list[float]] = {}
    per_repeat: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(repeats):
        train, test = _split(y, task, rng)
        ns, scores = [], []
        for f in fractions:
            k = max(2, round(f * len(train)))
            idx = train[:k]
            if task == "classification" and len(np.unique(y[idx])) < 2:
                continue
            score = _probe_score(x[idx], y[idx], x[test], y[test], task)
            ns.append(k)
            scores.append(score)
            table.setdefault(k, []).append(score)
        per_repeat.append((np.asarray(ns, float), np.asarray(scores, float)))
    curve.points = [
        {"n": float(k), "mean": float(np.mean(v)), "sd": float(np.std(v))} for k, v in sorted(table.items())
    ]
    all_n = np.concatenate([n for n, _ in per_repeat])
    all_y = np.concatenate([s for _, s in per_repeat])
    pooled = _fit(all_n, all_y)
    if pooled is None:
        curve.note = (
            "the learning curve could not be fitted (the accuracies do not follow a saturating curve)"
        )
        return curve
    curve.params = pooled
    curve.residual_sd = float(np.std(all_y - _law(all_n, **pooled)))
    curve.repeat_params = [p for n, s in per_repeat if len(n) >= 3 and (p := _fit(n, s)) is not None]
    return curve
