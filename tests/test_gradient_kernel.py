"""Gradient evidence (bench/gradient_kernel.py): LGC / LFC against direct re-derivations, their
invariances and degenerate inputs, and the evaluation against the committed Hub-like truth."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gradient_kernel as gk  # noqa: E402
from helpers import bench_report  # noqa: E402


def naive_alignment(k1: np.ndarray, k2: np.ndarray) -> float:
    """Cortes et al. (2012), eq. for centred alignment, written out: Kc = H K H with H = I − 11ᵀ/n."""
    n = len(k1)
    h = np.eye(n) - np.ones((n, n)) / n
    a, b = h @ k1 @ h, h @ k2 @ h
    inner = sum(a[i, j] * b[i, j] for i in range(n) for j in range(n))
    return (
        inner
        / math.sqrt(sum(a[i, j] ** 2 for i in range(n) for j in range(n)))
        / math.sqrt(sum(b[i, j] ** 2 for i in range(n) for j in range(n)))
    )


def test_alignment_matches_the_formula_and_its_invariances() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 4))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 1])
    k, lab = x @ x.T, gk.label_kernel(y)
    got = gk.centred_alignment(k, lab)
    assert got == pytest.approx(naive_alignment(k, lab), rel=1e-10)
    perm = rng.permutation(9)  # sample order
    assert gk.centred_alignment(k[perm][:, perm], gk.label_kernel(y[perm])) == pytest.approx(got, rel=1e-10)
    renamed = np.array([2, 0, 1])[y]  # class names permuted
    assert gk.centred_alignment(k, gk.label_kernel(renamed)) == pytest.approx(got, rel=1e-10)
    assert gk.centred_alignment(7.5 * k, lab) == pytest.approx(got, rel=1e-10)  # the kernel's scale
    assert gk.centred_alignment(lab, lab) == pytest.approx(1.0)


def test_alignment_is_undefined_on_degenerate_input() -> None:
    k = np.random.default_rng(1).normal(size=(5, 5))
    assert math.isnan(gk.centred_alignment(k @ k.T, gk.label_kernel(np.zeros(5, int))))  # one class
    assert math.isnan(gk.centred_alignment(np.ones((5, 5)), gk.label_kernel(np.arange(5) % 2)))


def test_lfc_scores_separable_features_higher() -> None:
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 10)
    centres = rng.normal(size=(3, 8)) * 4
    separable, noise = centres[y] + rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    lab = gk.label_kernel(y)
    assert (
        gk.centred_alignment(separable @ separable.T, lab) > gk.centred_alignment(noise @ noise.T, lab) + 0.3
    )


class Pooled(nn.Module):
    """A small conv net whose forward returns pooled features, with batch norm (fixed in eval mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 4, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 5),
        )
        self.frozen = nn.Parameter(torch.ones(2), requires_grad=False)  # not a weight fine-tuning moves

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def naive_gradient_kernel(module: nn.Module, x: torch.Tensor, directions: torch.Tensor) -> np.ndarray:
    """One backward pass per (sample, direction), the gradients flattened and dotted."""
    module.eval()
    weights = [p for p in module.parameters() if p.requires_grad]
    gram = np.zeros((len(x), len(x)))
    for u in directions:
        rows = []
        for xi in x:
            out = (module(xi[None])[0] * u).sum()
            grads = torch.autograd.grad(out, weights)
            rows.append(torch.cat([g.reshape(-1) for g in grads]).double().numpy())
        jac = np.stack(rows)
        gram += jac @ jac.T
    return gram


def test_gradient_kernel_matches_per_sample_backward_passes() -> None:
    torch.manual_seed(0)
    module = Pooled()
    with torch.no_grad():  # batch-norm statistics that are not the identity
        module.body[1].running_mean.uniform_(-0.5, 0.5)
        module.body[1].running_var.uniform_(0.5, 2.0)
    x, dirs = torch.randn(7, 3, 6, 6), torch.randn(2, 5)
    got = gk.gradient_kernel(module, x, dirs, chunk=3)  # a partial last chunk
    np.testing.assert_allclose(got, naive_gradient_kernel(module, x, dirs), rtol=1e-4, atol=1e-6)
    # eval mode: a sample's gradient does not depend on the other samples of its chunk
    alone = gk.gradient_kernel(module, x[:1], dirs)
    assert alone[0, 0] == pytest.approx(got[0, 0], rel=1e-4)


def test_measure_on_a_timm_model() -> None:
    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=0)
    y = np.repeat(np.arange(2), 6)
    x = torch.randn(12, 3, 32, 32) + torch.as_tensor(y, dtype=torch.float32)[:, None, None, None]
    got = gk.measure(model, x, y, directions=2, seed=0)
    assert set(got) == {"lgc", "lfc_sample"} and all(-1.0 <= v <= 1.0 for v in got.values())
    perm = np.random.default_rng(0).permutation(12)
    again = gk.measure(model, x[perm], y[perm], directions=2, seed=0)
    assert again == pytest.approx(got, rel=1e-4)  # sample order


def test_sample_is_one_draw_per_target() -> None:
    labels = np.arange(50) % 5
    a, b = gk.sample_indices(labels, 20, 3), gk.sample_indices(labels, 20, 3)
    assert list(a) == list(b) and len(set(a)) == 20 and list(a) == sorted(a)
    assert len(gk.sample_indices(labels, 80, 3)) == 50


def test_lfc_on_features_is_the_alignment_of_their_linear_kernel() -> None:
    rng = np.random.default_rng(3)
    f, y = rng.normal(size=(12, 5)).astype(np.float32), np.arange(12) % 3
    f64 = f.astype(np.float64)
    assert gk.lfc_of(f, y) == pytest.approx(naive_alignment(f64 @ f64.T, gk.label_kernel(y)), rel=1e-10)


def test_evaluation_of_the_committed_scores_agrees_with_both_benchmarks() -> None:
    results = json.loads(gk.HUB_RESULTS.read_text())
    first = json.loads(gk.FIRST_RESULTS.read_text())
    doc = json.loads(gk.SCORES.read_text())
    assert set(doc["scores"]) == set(results["targets"])
    assert all(set(by) == set(results["candidates"]) for by in doc["scores"].values())
    assert all(set(by) == set(first["models"]) for by in doc["first"].values())
    evaluation = gk.evaluate(results, first, doc)
    hub = json.loads(gk.HUB_EVALUATION.read_text())
    # the default and N-LEEP are judged exactly as bench/hub_quality.py judges them
    got = evaluation["hub"]
    assert got["mean_regret"]["combined (default)"] == pytest.approx(hub["mean_regret"]["combined"])
    assert got["worst_regret"]["combined (default)"] == pytest.approx(hub["worst_regret"]["combined"])
    assert got["mean_tau_w"]["nleep"] == pytest.approx(hub["mean_tau_w"]["nleep"])
    first_eval = json.loads((ROOT / "data" / "bench" / "transfer_quality.json").read_text())
    assert evaluation["first"]["mean_tau_w"]["combined (default)"] == pytest.approx(
        first_eval["mean_tau_w"]["combined"], abs=1e-4
    )
    assert "lfc" in evaluation["selection"]["pool"]
    assert 0 <= evaluation["selection"]["folds_with_lfc"] <= len(evaluation["selection"]["folds"]) == 15


def test_report_runs_from_the_committed_scores() -> None:
    out = bench_report("gradient_kernel.py")
    assert "combined + lgc" in out and "[name_match]" in out


def test_keep_first_recomputes_only_the_hub_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a Hub-like rebuild the first benchmark's build is unchanged (and its work folder may be
    gone): --keep-first carries its committed scores over and never opens its work folder."""
    committed = json.loads(gk.SCORES.read_text())
    scores = tmp_path / "hub_gradient_kernel.json"
    scores.write_text(json.dumps(committed))
    recomputed = {k: v for k, v in committed.items() if k != "first"}
    calls: list[Path] = []

    def compute(work: Path, results: dict, **_: object) -> dict:
        calls.append(work)
        return json.loads(json.dumps(recomputed))

    def compute_first(*_: object) -> dict:
        raise AssertionError("--keep-first must not open the first benchmark's work folder")

    monkeypatch.setattr(gk, "SCORES", scores)
    monkeypatch.setattr(gk, "compute", compute)
    monkeypatch.setattr(gk, "compute_first", compute_first)
    monkeypatch.setattr(sys, "argv", ["gradient_kernel.py", "--keep-first", "--work", str(tmp_path)])
    gk.main()
    assert calls == [tmp_path]
    assert json.loads(scores.read_text()) == committed
