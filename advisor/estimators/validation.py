"""Input checks shared by every estimator, run before any maths (scikit-learn's ``check_array`` style).

Every problem raises :class:`~tlreg.advisor.errors.EstimatorError` with one line saying what is
wrong and what to do. Choices made here, once for all estimators:

- Features become float64 ``[N, D]`` (a copy only when the input is not float64 already): the
  scores compare models by small differences, and float32 Gram matrices lose them.
- Class labels of any kind (strings, gaps such as ``{3, 7, 100}``, integral floats) are remapped to
  ``0..C-1`` with ``np.unique(..., return_inverse=True)``, so every score is invariant to renaming.
  Since classes are counted from the labels, "fewer samples than classes" shows up as ``N <= C``
  (every class a singleton), which is refused.
- Wide features (D large against N) are refused only by the estimators that cannot cope: those
  inverting a D x D within-class or total scatter (H-score, SFDA, ETran's LDA and SVD parts) need
  ``D <= N - C``, or the inverse is ill-posed and every model gets the same score. LogME works on
  the N x N Gram; PCA-based scores (NLEEP, GBC, NCTI) reduce D first; Ledoit-Wolf shrinkage copes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from tlreg.advisor.errors import EstimatorError

#: Rows of ``source_probs`` must sum to 1 within this tolerance.
PROBABILITY_TOLERANCE = 1e-3


def check_features(features: Any, *, estimator: str) -> NDArray[np.float64]:
    """Features as a finite float64 ``[N, D]`` array with at least one non-constant column."""
    if features is None:
        raise EstimatorError(
            f"{estimator}: features are missing; pass the model's features as an [N, D] array."
        )
    array = np.asarray(features)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise EstimatorError(
            f"{estimator}: features must be numeric, got dtype {array.dtype}; pass the "
            "extracted features as a float array."
        )
    if array.ndim != 2:
        raise EstimatorError(
            f"{estimator}: features must be 2-D [N, D], got shape {array.shape}; use "
            "reshape(N, -1) to flatten each sample's features."
        )
    n, d = array.shape
    if n < 2 or d < 1:
        raise EstimatorError(
            f"{estimator}: features have shape {array.shape}; need at least 2 samples and 1 feature."
        )
    array = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        bad_rows = int((~finite).any(axis=1).sum())
        raise EstimatorError(
            f"{estimator}: features contain NaN or infinite values in {bad_rows} of {n} rows; "
            "drop or impute those samples (or check the extractor for overflow) before scoring."
        )
    if not (np.ptp(array, axis=0) > 0).any():
        raise EstimatorError(
            f"{estimator}: every feature is constant across the {n} samples (zero variance); "
            "the model gives the same output for every input, check the feature extraction."
        )
    return array


def check_labels(
    labels: Any, n_samples: int, *, estimator: str, min_class_size: int = 1
) -> tuple[NDArray[np.int64], int]:
    """Class labels remapped to ``0..C-1`` (``np.unique``), with the class count ``C``.

    Refuses a single class, ``N <= C``, and classes smaller than ``min_class_size`` (for estimators
    that estimate a per-class variance).
    """
    if labels is None:
        raise EstimatorError(
            f"{estimator}: labels are missing; this estimator needs one class label per sample."
        )
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise EstimatorError(
            f"{estimator}: labels must be 1-D [N], got shape {array.shape}; pass one class "
            "label per sample (for several regression targets use task='regression')."
        )
    if array.shape[0] != n_samples:
        raise EstimatorError(
            f"{estimator}: {array.shape[0]} labels for {n_samples} feature rows; pass one label "
            "per sample, in the same order."
        )
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise EstimatorError(
                f"{estimator}: labels contain NaN or infinite values; drop the unlabelled samples."
            )
        if not np.array_equal(array, np.round(array)):
            raise EstimatorError(
                f"{estimator}: labels are non-integer floats, which look like regression targets; "
                "pass task='regression' to an estimator that supports it, or class labels."
            )
    try:
        classes, inverse = np.unique(array, return_inverse=True)
    except TypeError as error:
        raise EstimatorError(
            f"{estimator}: labels cannot be sorted into classes ({error}); use one type (str or "
            "int) for every label."
        ) from None
    n_classes = int(classes.shape[0])
    if n_classes < 2:
        raise EstimatorError(
            f"{estimator}: every label is {classes[0]!r}, a single class; transferability needs at "
            "least two classes, check the label column."
        )
    if n_samples <= n_classes:
        raise EstimatorError(
            f"{estimator}: {n_samples} samples for {n_classes} classes; need more samples than "
            "classes (each class a single sample says nothing about the features)."
        )
    counts = np.bincount(inverse, minlength=n_classes)
    if min_class_size > 1 and counts.min() < min_class_size:
        small = [repr(c.item() if hasattr(c, "item") else c) for c in classes[counts < min_class_size][:5]]
        raise EstimatorError(
            f"{estimator}: classes {', '.join(small)} have fewer than {min_class_size} samples; "
            f"{estimator} needs {min_class_size} per class to estimate a class variance, drop or "
            "merge those classes."
        )
    return inverse.astype(np.int64).reshape(-1), n_classes


def check_targets(targets: Any, n_samples: int, *, estimator: str) -> NDArray[np.float64]:
    """Regression targets as a finite float64 ``[N, T]`` array (``[N]`` becomes ``[N, 1]``)."""
    if targets is None:
        raise EstimatorError(
            f"{estimator}: regression targets are missing; pass an [N] or [N, T] float array."
        )
    array = np.asarray(targets)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise EstimatorError(
            f"{estimator}: regression targets must be numeric, got dtype {array.dtype}; for "
            "class labels use task='classification'."
        )
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != n_samples or array.shape[1] < 1:
        raise EstimatorError(
            f"{estimator}: regression targets have shape {array.shape} for {n_samples} samples; "
            "pass [N] or [N, T]."
        )
    array = np.asarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        raise EstimatorError(
            f"{estimator}: regression targets contain NaN or infinite values; drop those samples."
        )
    return array


def check_source_probs(source_probs: Any, n_samples: int, *, estimator: str) -> NDArray[np.float64]:
    """The source model's class probabilities as float64 ``[N, K]``, rows summing to 1."""
    if source_probs is None:
        raise EstimatorError(
            f"{estimator}: source_probs are missing; pass the source model's softmax output on "
            "the target samples, shape [N, K]."
        )
    array = np.asarray(source_probs)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise EstimatorError(f"{estimator}: source_probs must be numeric, got dtype {array.dtype}.")
    if array.ndim != 2 or array.shape[0] != n_samples or array.shape[1] < 1:
        raise EstimatorError(
            f"{estimator}: source_probs have shape {array.shape} but there are {n_samples} "
            "samples; pass the source model's softmax output, shape [N, K]."
        )
    array = np.asarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        raise EstimatorError(
            f"{estimator}: source_probs contain NaN or infinite values; recompute the softmax "
            "(subtract the row maximum from the logits first)."
        )
    if (array < 0).any():
        raise EstimatorError(
            f"{estimator}: source_probs contain negative values; pass probabilities (softmax of "
            "the logits), not the logits."
        )
    sums = array.sum(axis=1)
    worst = float(np.abs(sums - 1.0).max())
    if worst > PROBABILITY_TOLERANCE:
        raise EstimatorError(
            f"{estimator}: source_probs rows must sum to 1 (tolerance {PROBABILITY_TOLERANCE:g}); "
            f"one row is off by {worst:.3g}; pass softmax probabilities, not logits or scores."
        )
    return array


def check_width(n_features: int, n_samples: int, n_classes: int, *, estimator: str) -> None:
    """Refuse ``D > N - C``: a D x D within-class scatter of rank at most ``N - C`` is singular."""
    limit = n_samples - n_classes
    if n_features > limit:
        raise EstimatorError(
            f"{estimator}: {n_features} feature dimensions but only {limit} within-class degrees "
            f"of freedom (N - C = {n_samples} - {n_classes}); the scatter matrix is singular and "
            "every model would score alike; reduce the features with PCA or use more samples "
            "(or LogME, which copes)."
        )


def check_task(task: str, supported: tuple[str, ...], *, estimator: str) -> None:
    """Refuse a task the estimator does not implement (``score`` checks the metadata too)."""
    if task not in supported:
        raise EstimatorError(
            f"{estimator}: task {task!r} is not supported; use one of {', '.join(supported)}."
        )


def check_classification(
    features: Any, labels: Any, *, estimator: str, min_class_size: int = 1
) -> tuple[NDArray[np.float64], NDArray[np.int64], int]:
    """Features and remapped labels for a classification estimator: ``(F [N, D], y [N], C)``."""
    array = check_features(features, estimator=estimator)
    y, n_classes = check_labels(labels, array.shape[0], estimator=estimator, min_class_size=min_class_size)
    return array, y, n_classes


def count_samples(features: Any, labels: Any, *, estimator: str) -> int:
    """N for estimators that do not use the features (LEEP, NCE): from the features if given, else labels."""
    if features is not None:
        array = np.asarray(features)
        if array.ndim < 1:
            raise EstimatorError(f"{estimator}: features must be [N, D], got a scalar.")
        return int(array.shape[0])
    if labels is None:
        raise EstimatorError(
            f"{estimator}: labels are missing; this estimator needs one class label per sample."
        )
    return int(np.asarray(labels).reshape(-1).shape[0])
