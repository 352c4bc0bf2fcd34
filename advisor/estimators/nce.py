"""NCE: negative conditional entropy of the target labels given the source model's predicted class."""

from __future__ import annotations

from typing import Any

import numpy as np

from .registry import register
from .validation import check_labels, check_source_probs, count_samples


@register(
    "nce",
    paper="Tran, Nguyen & Hassner, Transferability and Hardness of Supervised Classification Tasks, "
    "ICCV 2019",
    needs_source_probs=True,
    uses_features=False,
    cost="O(N K); features unused",
)
def nce(features: Any, labels: Any, *, source_probs: Any = None) -> float:
    r"""Negative conditional entropy :math:`-H(Y \mid Z)` of target labels given source labels.

    The source label of sample i is the source model's prediction :math:`z_i = \arg\max_k θ_k(x_i)`
    (ties go to the lowest index). With the empirical joint :math:`\hat P(y, z) = |\{i : y_i = y,
    z_i = z\}| / N`:

    .. math::
        \mathrm{NCE} = -H(Y \mid Z) = \sum_{y, z} \hat P(y, z) \log \frac{\hat P(y, z)}{\hat P(z)}.

    It is 0 when the source prediction determines the target label, and -log C at worst. The
    features are not used (only their count is checked against the labels).

    Shape:
        - features: (N, D) or None; unused.
        - labels: (N,) class labels, any values.
        - source_probs: (N, K), rows summing to 1; only their argmax is used.
        - score: scalar <= 0, higher is better.
    """
    n = count_samples(features, labels, estimator="nce")
    y, n_classes = check_labels(labels, n, estimator="nce")
    probs = check_source_probs(source_probs, n, estimator="nce")
    z = probs.argmax(axis=1)
    k = probs.shape[1]
    joint = np.bincount(y * k + z, minlength=n_classes * k).reshape(n_classes, k) / n
    marginal = joint.sum(axis=0)
    nonzero = joint > 0
    conditional = joint[nonzero] / np.broadcast_to(marginal, joint.shape)[nonzero]
    return float((joint[nonzero] * np.log(conditional)).sum())
