"""Every estimator against a naive re-derivation of its paper's formula, written here independently.

The naive versions use loops, ``np.cov``, ``np.linalg.pinv`` and scikit-learn's PCA / LDA where the
paper does, and share no code with ``tlreg.advisor.estimators``.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import pytest
import scipy.linalg
from _estimator_data import make_classification, source_probs_for
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.mixture import GaussianMixture
from tlreg.advisor.estimators import prepared, score


@pytest.fixture
def small() -> tuple[np.ndarray, np.ndarray]:
    """N=30, D=5, C=3."""
    return make_classification(11, n=30, d=5, c=3)


@pytest.fixture
def medium() -> tuple[np.ndarray, np.ndarray]:
    """N=120, D=8, C=4, moderately separated."""
    return make_classification(12, n=120, d=8, c=4, separation=0.7)


def naive_leep(probs: np.ndarray, labels: np.ndarray) -> float:
    n, k = probs.shape
    classes = sorted(set(labels.tolist()))
    joint = {
        (y, z): sum(probs[i, z] for i in range(n) if labels[i] == y) / n for y in classes for z in range(k)
    }
    marginal = {z: sum(joint[(y, z)] for y in classes) for z in range(k)}
    total = 0.0
    for i in range(n):
        total += math.log(
            sum(joint[(labels[i], z)] / marginal[z] * probs[i, z] for z in range(k) if marginal[z] > 0)
        )
    return total / n


def naive_nce(probs: np.ndarray, labels: np.ndarray) -> float:
    z = [int(np.argmax(row)) for row in probs]
    n = len(z)
    pairs = Counter(zip(labels.tolist(), z, strict=True))
    sources = Counter(z)
    return sum(count / n * math.log(count / sources[zz]) for (_, zz), count in pairs.items())


def naive_lda_probs(x: np.ndarray, labels: np.ndarray, shrinkage: float) -> np.ndarray:
    """SFDA's regularised FDA written out: class covariances, shrinkage, generalised eigenproblem."""
    classes = np.unique(labels)
    d = x.shape[1]
    priors = np.array([np.mean(labels == c) for c in classes])
    means = np.array([x[labels == c].mean(axis=0) for c in classes])
    sw = sum(
        p * np.cov(x[labels == c].T, bias=True).reshape(d, d) for p, c in zip(priors, classes, strict=True)
    )
    shrunk_sw = (1 - shrinkage) * sw + shrinkage * np.trace(sw) / d * np.eye(d)
    st = np.cov(x.T, bias=True).reshape(d, d)
    shrunk_st = (1 - shrinkage) * st + shrinkage * np.trace(st) / d * np.eye(d)
    evals, evecs = scipy.linalg.eigh(shrunk_st - shrunk_sw, shrunk_sw)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = means @ evecs @ evecs.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    logits = x @ coef.T + intercept
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


def sfda_shrinkage(x: np.ndarray, labels: np.ndarray) -> float:
    classes = np.unique(labels)
    d = x.shape[1]
    sw = sum(np.mean(labels == c) * np.cov(x[labels == c].T, bias=True).reshape(d, d) for c in classes)
    return max(math.exp(-5 * np.linalg.eigvalsh(sw).max()), 1e-10)


def naive_sfda(x: np.ndarray, labels: np.ndarray) -> float:
    original = x.copy()
    shrinkage = sfda_shrinkage(x, labels)
    probs = naive_lda_probs(x, labels, shrinkage)
    soft = np.exp(probs) / np.exp(probs).sum(axis=1, keepdims=True)
    classes = list(np.unique(labels))
    means = {c: x[labels == c].mean(axis=0) for c in classes}
    mixed = np.empty_like(x)
    for i in range(len(labels)):
        c = labels[i]
        other = sum(means[o] for o in classes if o != c) / (len(classes) - 1)
        p = soft[i, classes.index(c)]
        mixed[i] = p * x[i] + (1 - p) * other
    probs2 = naive_lda_probs(mixed, labels, shrinkage)
    assert np.array_equal(x, original)
    return float(np.mean([probs2[i, classes.index(labels[i])] for i in range(len(labels))]))


def test_leep_matches_naive(small: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = small
    probs = source_probs_for(features, 1, k=6)
    assert score("leep", features, labels, source_probs=probs) == pytest.approx(
        naive_leep(probs, labels), rel=1e-9
    )


def test_nce_matches_naive(small: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = small
    probs = source_probs_for(features, 2, k=6)
    assert score("nce", features, labels, source_probs=probs) == pytest.approx(
        naive_nce(probs, labels), rel=1e-9
    )


def test_nleep_matches_naive(medium: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = medium
    order = np.lexsort(features.T[::-1])
    x, y = features[order], labels[order]
    reduced = PCA(n_components=0.8, svd_solver="full").fit_transform(x)
    gmm = GaussianMixture(n_components=5 * 4, covariance_type="diag", random_state=0).fit(reduced)
    expected = naive_leep(gmm.predict_proba(reduced), y)
    assert score("nleep", features, labels) == pytest.approx(expected, rel=1e-6)


def test_nleep_on_a_resample_keeps_the_whole_sample_mixture(medium: tuple[np.ndarray, np.ndarray]) -> None:
    """The resampling rounds reuse one mixture fitted to the whole sample: a round's score is LEEP of
    that mixture's posteriors on the round's rows, with P(y | m) estimated from those rows alone."""
    features, labels = medium
    order = np.lexsort(features.T[::-1])
    reduced = PCA(n_components=0.8, svd_solver="full").fit_transform(features[order])
    gmm = GaussianMixture(n_components=5 * 4, covariance_type="diag", random_state=0).fit(reduced)
    posteriors = np.empty((len(labels), gmm.n_components))
    posteriors[order] = gmm.predict_proba(reduced)
    scorer = prepared("nleep", features, labels)
    rows = np.sort(np.random.default_rng(3).choice(len(labels), size=90, replace=False))
    assert scorer(rows) == pytest.approx(naive_leep(posteriors[rows], labels[rows]), rel=1e-6)
    assert scorer(np.arange(len(labels))) == score("nleep", features, labels)


def test_nleep_is_silent_on_a_sample_with_fewer_distinct_rows_than_components() -> None:
    """10 components (5 per class) on 8 distinct rows: k-means warned (ConvergenceWarning on stderr, in
    the middle of ``tlreg recommend``'s output) although the score is well defined."""
    rows = np.repeat(np.eye(4), 2, axis=0) + np.arange(8)[:, None] * 1e-3
    features, labels = np.vstack([rows, rows]), np.tile([0, 1], 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isfinite(score("nleep", features, labels))


def test_knn_matches_naive(medium: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = medium
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    sims = unit @ unit.T
    correct = 0
    for i in range(len(labels)):
        others = sorted((j for j in range(len(labels)) if j != i), key=lambda j: -sims[i, j])[:10]
        votes = Counter(labels[j] for j in others)
        top = max(votes.values())
        tied = [c for c, v in votes.items() if v == top]
        pred = max(tied, key=lambda c: sum(sims[i, j] for j in others if labels[j] == c))
        correct += pred == labels[i]
    assert score("knn", features, labels) == pytest.approx(correct / len(labels), abs=1e-12)


def test_hscore_matches_naive(small: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = small
    g = np.zeros_like(features)
    for c in np.unique(labels):
        g[labels == c] = features[labels == c].mean(axis=0)
    expected = np.trace(np.linalg.pinv(np.cov(features, rowvar=False)) @ np.cov(g, rowvar=False))
    assert score("hscore", features, labels) == pytest.approx(expected, rel=1e-8)


def test_hscore_shrinkage_matches_naive_on_wide_features() -> None:
    """D > N takes the N x N Gram route (Woodbury); the D x D formula must give the same value."""
    rng = np.random.default_rng(7)
    labels = np.arange(24) % 3
    features = rng.normal(size=(24, 60)) + rng.normal(size=(3, 60))[labels]
    test_hscore_shrinkage_matches_naive((features, labels))


def test_hscore_shrinkage_matches_naive(small: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = small
    centred = features - features.mean(axis=0)
    lw = LedoitWolf().fit(centred)
    g = np.zeros_like(centred)
    for c in np.unique(labels):
        g[labels == c] = centred[labels == c].mean(axis=0)
    covg = g.T @ g / len(labels)
    expected = np.trace(np.linalg.inv(lw.covariance_) @ ((1 - lw.shrinkage_) * covg))
    assert score("hscore_shrinkage", features, labels) == pytest.approx(expected, rel=1e-8)


def test_transrate_matches_naive(small: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = small
    eps = 1e-4

    def rate(z: np.ndarray) -> float:
        n, d = z.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps))[1]

    z = features - features.mean(axis=0)
    classes = np.unique(labels)
    expected = rate(z) - sum(rate(z[labels == c]) for c in classes) / len(classes)
    assert score("transrate", features, labels) == pytest.approx(expected, rel=1e-9)


def naive_gbc(features: np.ndarray, labels: np.ndarray, dims: int) -> float:
    reduced = PCA(n_components=dims, svd_solver="full").fit_transform(features)
    classes = np.unique(labels)
    stats = {c: (reduced[labels == c].mean(axis=0), reduced[labels == c].var(axis=0)) for c in classes}
    total = 0.0
    for i in classes:
        for j in classes:
            if i == j:
                continue
            (mi, vi), (mj, vj) = stats[i], stats[j]
            v = (vi + vj) / 2
            db = sum(
                (mi[k] - mj[k]) ** 2 / v[k] / 8 + 0.5 * math.log(v[k] / math.sqrt(vi[k] * vj[k]))
                for k in range(len(v))
            )
            total += math.exp(-db)
    return -total


def test_gbc_matches_naive(medium: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = medium
    assert score("gbc", features, labels) == pytest.approx(naive_gbc(features, labels, 8), rel=1e-8)


def test_gbc_on_wide_features_takes_pca_through_the_small_gram() -> None:
    """N < D: PCA from the N x N Gram, capped at N - 1 components."""
    features, labels = make_classification(14, n=24, d=60, c=3, separation=0.5)
    assert score("gbc", features, labels) == pytest.approx(naive_gbc(features, labels, 23), rel=1e-6)


def test_sfda_matches_naive_and_leaves_input_alone(medium: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = medium
    before = features.copy()
    value = score("sfda", features, labels)
    assert np.array_equal(features, before)
    assert value == pytest.approx(naive_sfda(features, labels), rel=1e-7)


def test_sfda_shrinkage_matters_on_small_scale_features(medium: tuple[np.ndarray, np.ndarray]) -> None:
    """Scaled-down features make λ = exp(-5 σ_max) large: the regularised path is exercised, not the floor."""
    features, labels = medium
    small_scale = features * 0.05
    assert sfda_shrinkage(small_scale, labels) > 0.5
    assert score("sfda", small_scale, labels) == pytest.approx(naive_sfda(small_scale, labels), rel=1e-7)


def test_etran_components_match_naive(medium: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = medium
    energy = np.mean([math.log(sum(math.exp(v) for v in row)) for row in features])
    assert score("etran_energy", features, labels) == pytest.approx(energy, rel=1e-10)
    assert score("etran_energy", features, None, task="unlabelled") == pytest.approx(energy, rel=1e-10)
    tail = sorted(math.log(sum(math.exp(v) for v in row)) for row in features)[:12]
    assert score("etran_energy", features, labels, tail_fraction=0.1) == pytest.approx(
        np.mean(tail), rel=1e-10
    )

    probs = naive_lda_probs(features, labels, sfda_shrinkage(features, labels))
    lda = float(np.mean(probs[np.arange(len(labels)), labels]))
    assert score("etran_lda", features, labels) == pytest.approx(lda, rel=1e-7)

    onehot = np.eye(4)[labels]
    fitted = features @ np.linalg.lstsq(features, onehot, rcond=None)[0]
    svd = -float(np.mean((onehot - fitted) ** 2))
    assert score("etran_svd", features, labels) == pytest.approx(svd, rel=1e-7)
    targets = features[:, :2] * 2 + np.sin(features[:, 2:4])
    fitted_t = features @ np.linalg.lstsq(features, targets, rcond=None)[0]
    assert score("etran_svd", features, targets, task="regression") == pytest.approx(
        -float(np.mean((targets - fitted_t) ** 2)), rel=1e-7
    )
    assert score("etran", features, labels) == pytest.approx(energy + lda + svd, rel=1e-7)


def test_ncti_components_match_naive(medium: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = medium
    pca = PCA(n_components=8, svd_solver="full")
    reduced = pca.fit_transform(features)
    shrinkage = max(math.exp(-pca.explained_variance_[:32].sum()), 1e-10)
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage)
    low = lda.fit_transform(reduced, labels)
    low = low - low.mean(axis=0)
    seli = np.linalg.norm(low, ord="nuc")
    probs = lda.predict_proba(reduced)
    ncc = np.mean(probs[np.arange(len(labels)), labels])
    vc = -math.log(sum(np.linalg.norm(probs[labels == c], ord="nuc") for c in range(4)))
    assert score("ncti_seli", features, labels) == pytest.approx(seli, rel=1e-6)
    assert score("ncti_ncc", features, labels) == pytest.approx(ncc, rel=1e-7)
    assert score("ncti_vc", features, labels) == pytest.approx(vc, rel=1e-7)
    assert score("ncti", features, labels) == pytest.approx(seli + ncc + vc, rel=1e-6)


def test_rankme_matches_naive(small: tuple[np.ndarray, np.ndarray]) -> None:
    features, _ = small
    singular = np.linalg.svd(features, compute_uv=False)
    p = singular / singular.sum() + 1e-7
    expected = math.exp(-sum(pi * math.log(pi) for pi in p))
    assert score("rankme", features, None, task="unlabelled") == pytest.approx(expected, rel=1e-9)
    wide = np.random.default_rng(0).normal(size=(6, 20))
    singular = np.linalg.svd(wide, compute_uv=False)
    p = singular / singular.sum() + 1e-7
    assert score("rankme", wide, None, task="unlabelled") == pytest.approx(
        math.exp(-(p * np.log(p)).sum()), rel=1e-9
    )


def test_knn_never_builds_the_dense_similarity_matrix() -> None:
    """N > 20k: a dense N x N similarity would take 1.7 GB; FAISS searches in blocks instead."""
    import tracemalloc

    features, labels = make_classification(13, n=21_000, d=4, c=5, separation=2.0)
    tracemalloc.start()
    try:
        value = score("knn", features, labels)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.5 < value <= 1.0
    assert peak < 200 * 2**20, f"peak traced memory {peak / 2**20:.0f} MiB"
