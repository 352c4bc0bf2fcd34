"""bench/halving.py: the replay of both budgets on synthetic features, and the committed figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import halving as bh  # noqa: E402


def test_the_replay_counts_what_recommend_would_embed() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 40)
    centres = rng.normal(size=(4, 16)) * 3
    good = {f"good{i}": centres[labels] + (0.5 + 0.2 * i) * rng.normal(size=(160, 16)) for i in range(3)}
    noise = {f"noise{i}": rng.normal(size=(160, 16)) for i in range(12)}
    probs = rng.dirichlet(np.ones(5), size=160)  # a source head's predictions, for NCE
    features = {m: (f, probs) for m, f in {**good, **noise}.items()}
    out = bh.replay(features, labels, dict.fromkeys(features, 1.0))
    assert out["full"][:3] == ["good0", "good1", "good2"]
    assert out["auto"][0] == "good0" and set(out["survivors"]) == set(good)
    assert sorted(out["auto"]) == sorted(features)  # every candidate ordered: survivors, then the dropped
    # the first stage (40 items) for everyone, each later increment only for who is left
    assert out["passes_auto"]["noise0"] == 40 and out["passes_auto"]["good0"] == 160
    assert sum(out["passes_full"].values()) == 160 * 15
    assert out["stages"][0] == {"samples": 40, "candidates": 15, "dropped": 12}


def test_the_replay_ranks_on_every_default_estimator_and_refuses_a_model_without_its_head() -> None:
    """The defaults include NCE, which needs the source head's predictions: a replay that dropped
    them ranked on H-score and LogME alone while saying it used all three."""
    from tlreg.advisor.rank import DEFAULT_ESTIMATORS, combine, order
    from tlreg.advisor.scoring import as_dict, score_features

    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 30)
    # features alike; the source heads differ: NCE alone separates the models
    feats = rng.normal(size=(90, 8))
    heads = {
        "aligned": np.eye(3)[labels] * 0.6 + rng.dirichlet(np.ones(3), size=90) * 0.4,  # follows the target
        "noisy": rng.dirichlet(np.ones(3), size=90),
    }
    candidates = {m: (feats, p) for m, p in heads.items()}
    names = list(DEFAULT_ESTIMATORS["classification"])
    assert "nce" in names
    scores = {m: as_dict(score_features(feats, p, labels, "classification", names)) for m, p in heads.items()}
    expected = order(combine(scores, names), {"aligned": 2.0, "noisy": 1.0})
    assert expected == ["aligned", "noisy"]
    assert bh.ranking(candidates, labels, {"aligned": 2.0, "noisy": 1.0}) == expected
    assert bh.full_scores(candidates, labels)["aligned"]["nce"] == scores["aligned"]["nce"]
    with pytest.raises(SystemExit, match="noisy: no nce"):
        bh.ranking({**candidates, "noisy": (feats, None)}, labels, {"aligned": 2.0, "noisy": 1.0})


def test_the_committed_figures_meet_the_issue_goal_and_report() -> None:
    doc = json.loads((ROOT / "data" / "bench" / "halving.json").read_text())
    hub = doc["hub"]
    assert hub["candidates"] >= 20 and len(hub["per_target"]) == 8
    assert hub["embed_time_ratio"] >= 3.0
    assert hub["mean_regret_auto"] <= hub["mean_regret_full"] + hub["seed_noise_pp"]
    text = bh.report_hub(hub)
    assert f"{hub['embed_time_ratio']:.1f}x less" in text and "photos" in text
