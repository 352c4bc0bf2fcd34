"""LogME's algorithm in torch, for a GPU: the same Gram, eigendecomposition and fixed point as
:mod:`.logme`, in float64 on ``device``. Imported only when ``logme(..., device=...)`` asks for it."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from tlreg.advisor.errors import EstimatorError


def logme_torch(
    features: NDArray[np.float64],
    targets: NDArray[np.float64] | None,
    labels: NDArray[np.int64] | None,
    n_classes: int,
    *,
    device: str,
    tol: float,
    max_iter: int,
    epsilon: float,
) -> float:
    """LogME of validated inputs on a torch ``device``; see :func:`tlreg.advisor.estimators.logme.logme`."""
    import torch

    try:
        dev = torch.device(device)
        f = torch.as_tensor(features, dtype=torch.float64).to(dev)
    except (RuntimeError, AssertionError) as error:
        raise EstimatorError(
            f"logme: device {device!r} is not usable here ({error}); use device=None for numpy."
        ) from None
    n, d = f.shape
    feature_side = n >= d
    gram = f.T @ f if feature_side else f @ f.T
    values, vectors = torch.linalg.eigh(gram)
    values, vectors = values.flip(0).clamp_min(0.0), vectors.flip(1)
    cutoff = float(values.max()) * max(n, d) * float(np.finfo(np.float64).eps)
    keep = values > cutoff
    sigma, vectors = values[keep], vectors[:, keep]
    if targets is None:
        y = torch.as_tensor(labels, device=dev)
        y_energy = torch.bincount(y, minlength=n_classes).to(torch.float64)
        rows = f if feature_side else vectors
        sums = torch.zeros(n_classes, rows.shape[1], dtype=torch.float64, device=dev).index_add_(0, y, rows)
        proj = sums.T  # [D or k, C]
    else:
        t_all = torch.as_tensor(targets, dtype=torch.float64).to(dev)
        y_energy = (t_all**2).sum(dim=0)
        proj = (f.T @ t_all) if feature_side else (vectors.T @ t_all)
    x = (vectors.T @ proj) / sigma.sqrt()[:, None] if feature_side else proj
    x2 = x**2
    res_out = (y_energy - x2.sum(dim=0)).clamp_min(0.0)

    s = sigma[:, None]
    columns = x2.shape[1]
    alpha = torch.ones(columns, dtype=torch.float64, device=dev)
    beta = torch.ones(columns, dtype=torch.float64, device=dev)
    active = torch.arange(columns, device=dev)
    for _ in range(max_iter):
        if active.numel() == 0:
            break
        t = alpha[active] / beta[active]
        xa = x2[:, active]
        denom = s + t
        gamma = (s / denom).sum(dim=0)
        m2 = (s * xa / denom**2).sum(dim=0)
        res2 = (xa * (t / denom) ** 2).sum(dim=0) + res_out[active]
        new_alpha, new_beta = gamma / (m2 + epsilon), (n - gamma) / (res2 + epsilon)
        alpha[active], beta[active] = new_alpha, new_beta
        active = active[(new_alpha / new_beta - t).abs() / t > tol]

    t = alpha / beta
    denom = s + t
    m2 = (s * x2 / denom**2).sum(dim=0)
    res2 = (x2 * (t / denom) ** 2).sum(dim=0) + res_out
    log_det = torch.log(alpha + beta * s).sum(dim=0) + (d - sigma.shape[0]) * torch.log(alpha)
    value = (
        d / 2 * torch.log(alpha)
        + n / 2 * torch.log(beta)
        - 0.5 * log_det
        - beta / 2 * res2
        - alpha / 2 * m2
        - n / 2 * math.log(2 * math.pi)
    ) / n
    return float(value.mean().cpu())
