"""LogME against a naive re-derivation, the direct matrix evidence, and its torch twin."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _estimator_data import make_classification, rng_for
from tlreg.advisor.estimators import score
from tlreg.advisor.estimators.logme import evidence, fixed_point, projections


def naive_logme(
    features: np.ndarray, columns: list[np.ndarray], *, tol: float = 1e-6, max_iter: int = 100
) -> float:
    """The paper's algorithm as it reads: SVD of FᵀF, then per target column the scalar fixed point."""
    n, d = features.shape
    v, s, _ = np.linalg.svd(features.T @ features)
    cutoff = s.max() * max(n, d) * np.finfo(np.float64).eps
    sigma = [float(value) for value in s if value > cutoff]
    k = len(sigma)
    u = features @ v[:, :k] / np.sqrt(np.array(sigma))
    total = 0.0
    for y in columns:
        x2 = [float(value) ** 2 for value in u.T @ y]
        res_out = max(float(y @ y) - sum(x2), 0.0)

        def stats(t: float, x2: list[float] = x2, res_out: float = res_out) -> tuple[float, float, float]:
            gamma = sum(si / (si + t) for si in sigma)
            m2 = sum(si * xi / (si + t) ** 2 for si, xi in zip(sigma, x2, strict=True))
            res2 = sum(xi * (t / (si + t)) ** 2 for si, xi in zip(sigma, x2, strict=True)) + res_out
            return gamma, m2, res2

        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            t = alpha / beta
            gamma, m2, res2 = stats(t)
            alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= tol:
                break
        _, m2, res2 = stats(alpha / beta)
        log_det = sum(math.log(alpha + beta * si) for si in sigma) + (d - k) * math.log(alpha)
        value = (
            d / 2 * math.log(alpha)
            + n / 2 * math.log(beta)
            - log_det / 2
            - beta / 2 * res2
            - alpha / 2 * m2
            - n / 2 * math.log(2 * math.pi)
        )
        total += value / n
    return total / len(columns)


def direct_evidence(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """The evidence from its definition with explicit matrices: A = αI + βFᵀF, m = βA⁻¹Fᵀy."""
    n, d = features.shape
    a = alpha * np.eye(d) + beta * features.T @ features
    m = beta * np.linalg.solve(a, features.T @ y)
    _, log_det = np.linalg.slogdet(a)
    value = (
        d / 2 * math.log(alpha)
        + n / 2 * math.log(beta)
        - log_det / 2
        - beta / 2 * float(((features @ m - y) ** 2).sum())
        - alpha / 2 * float(m @ m)
        - n / 2 * math.log(2 * math.pi)
    )
    return value / n


def one_hot_columns(labels: np.ndarray) -> list[np.ndarray]:
    return [(labels == c).astype(np.float64) for c in np.unique(labels)]


@pytest.mark.parametrize(("n", "d", "c"), [(30, 5, 3), (60, 8, 4), (12, 40, 3)])
def test_matches_naive_algorithm(n: int, d: int, c: int) -> None:
    features, labels = make_classification(1, n=n, d=d, c=c)
    expected = naive_logme(features, one_hot_columns(labels))
    assert score("logme", features, labels) == pytest.approx(expected, rel=1e-6)


def test_wide_features_use_the_small_gram_and_agree() -> None:
    """N < D: the N x N Gram path must give the D x D path's value (D - N zero eigenvalues count as log α)."""
    features, labels = make_classification(2, n=20, d=64, c=2)
    assert score("logme", features, labels) == pytest.approx(
        naive_logme(features, one_hot_columns(labels)), rel=1e-6
    )


def test_regression_targets_mean_over_columns() -> None:
    features, _ = make_classification(3, n=40, d=6)
    rng = rng_for(3)
    targets = features @ rng.normal(size=(6, 2)) + rng.normal(size=(40, 2))
    expected = naive_logme(features, [targets[:, 0], targets[:, 1]])
    assert score("logme", features, targets, task="regression") == pytest.approx(expected, rel=1e-6)
    single = naive_logme(features, [targets[:, 0]])
    assert score("logme", features, targets[:, 0], task="regression") == pytest.approx(single, rel=1e-6)


def test_closed_forms_equal_the_direct_evidence_at_a_maximum() -> None:
    """The spectral m², residual and log|A| equal the matrix definitions, and (α, β) maximise the evidence."""
    features, labels = make_classification(4, n=50, d=7, c=3)
    sigma, x2, res_out = projections(features, None, labels, 3)
    alpha, beta = fixed_point(sigma, x2, res_out, 50, tol=1e-10, max_iter=500)
    spectral = evidence(sigma, x2, res_out, alpha, beta, 50, 7)
    for c in range(3):
        y = (labels == c).astype(np.float64)
        best = direct_evidence(features, y, alpha[c], beta[c])
        assert spectral[c] == pytest.approx(best, rel=1e-9)
        for da, db in [(1.05, 1.0), (0.95, 1.0), (1.0, 1.05), (1.0, 0.95)]:
            assert direct_evidence(features, y, alpha[c] * da, beta[c] * db) < best


def test_vectorised_columns_stop_independently() -> None:
    """A column that converges early keeps its value while the others iterate."""
    features, labels = make_classification(5, n=60, d=5, c=3, separation=3.0)
    sigma, x2, res_out = projections(features, None, labels, 3)
    alpha, beta = fixed_point(sigma, x2, res_out, 60, tol=1e-6, max_iter=100)
    for c in range(3):
        a1, b1 = fixed_point(sigma, x2[:, [c]], res_out[[c]], 60, tol=1e-6, max_iter=100)
        assert (alpha[c], beta[c]) == (a1[0], b1[0])


def test_torch_path_agrees_with_numpy() -> None:
    features, labels = make_classification(6, n=80, d=10, c=4)
    numpy_value = score("logme", features, labels)
    assert score("logme", features, labels, device="cpu") == pytest.approx(numpy_value, rel=1e-5)
    wide, wide_labels = make_classification(7, n=15, d=30, c=3)
    assert score("logme", wide, wide_labels, device="cpu") == pytest.approx(
        score("logme", wide, wide_labels), rel=1e-5
    )
    targets = features[:, :2] + 0.1
    assert score("logme", features, targets, task="regression", device="cpu") == pytest.approx(
        score("logme", features, targets, task="regression"), rel=1e-5
    )


def test_better_features_have_more_evidence() -> None:
    values = [score("logme", *make_classification(8, n=90, d=6, separation=s)) for s in (0.1, 1.0, 3.0)]
    assert values[0] < values[1] < values[2]
