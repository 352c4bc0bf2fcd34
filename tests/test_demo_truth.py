"""bench/demo_truth.py: the demo digits' frozen-feature claims against a linear probe. The pieces are
checked here on synthetic features; the real run (the bundled Lites on 600 digits) is the README's."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import demo_truth as dt  # noqa: E402


def test_other_digits_are_none_of_the_demos_and_written_whole(tmp_path: Path) -> None:
    folder = dt.write_other_digits(tmp_path / "digits", 15, seed=0)
    files = sorted(folder.glob("*/*.png"))
    assert len(files) == 150 and {p.parent.name for p in files} == {str(d) for d in range(10)}
    assert not {int(p.stem) for p in files} & dt.demo_indices()
    assert len(dt.demo_indices()) == 120
    assert not (tmp_path / "digits.tmp").exists()
    assert dt.write_other_digits(tmp_path / "digits", 15, seed=1) == folder  # kept, not rewritten
    assert sorted(folder.glob("*/*.png")) == files


def synthetic(n_per_class: int = 30, dim: int = 16) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """Raw pixels separate the classes; every Lite's frozen features and random inits are noise."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), n_per_class)
    means = rng.normal(0, 3, size=(10, dim))
    feats = {"raw pixels": means[y] + rng.normal(0, 1, size=(len(y), dim))}
    own = {}
    for i, ref in enumerate(dt.MODELS):
        feats[ref] = np.random.default_rng(10 + i).normal(size=(len(y), dim))
        own[ref] = f"{ref} (random init)"
        feats[own[ref]] = np.random.default_rng(20 + i).normal(size=(len(y), dim))
    return feats, y, own


def test_claims_and_truth_are_counted_per_comparison() -> None:
    feats, y, own = synthetic()
    doc = dt.evaluate(feats, y, own, samples=2, seed=0)
    assert doc["pairs"] == 12 and doc["samples"] == 2
    by = {(c["model"], c["baseline"]): c for c in doc["comparisons"]}
    for ref in dt.MODELS:
        assert by[ref, "raw pixels"] == {"model": ref, "baseline": "raw pixels", "claimed": 2, "true": 2}
    assert doc["probe_accuracy"]["raw pixels"] > 0.9 > 0.3 > max(doc["probe_accuracy"][r] for r in dt.MODELS)
    noise_claims = sum(by[r, own[r]]["claimed"] for r in dt.MODELS)
    assert noise_claims <= 1  # noise against noise: the kNN probe rarely calls a decisive loss
    text = dt.report(doc)
    assert "precision" in text and "raw pixels" in text
