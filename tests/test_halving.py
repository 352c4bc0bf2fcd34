"""Successive halving (``recommend --budget auto``): the stages, the decisions, the reuse of every
embedded item, and what the answer and the run record say about the candidates it dropped."""

from __future__ import annotations

import itertools
import json
from html import escape
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import save_tiny_timm, write_image_folder
from tlreg.advisor import recommend
from tlreg.advisor.audit.records import load_run
from tlreg.advisor.audit.report import render_report
from tlreg.advisor.audit.verify import verify_run
from tlreg.advisor.halving import AUTO_FROM, KEEP_AT_LEAST, decide, halve, stage_indices, stage_order
from tlreg.advisor.progress import Silent
from tlreg.cli.main import cli
from tlreg.registry import Registry
from tlreg.registry.errors import BadInputError


def test_stages_are_nested_stratified_and_end_with_the_whole_sample() -> None:
    labels = np.repeat(np.arange(4), 32)
    stages = stage_indices(labels, "classification", len(labels), seed=0)
    assert [len(s) for s in stages] == [32, 64, 128]
    assert all(set(a) <= set(b) for a, b in itertools.pairwise(stages))
    assert list(stages[-1]) == list(range(128))
    for s in stages:  # every class in the same share
        assert len(set(np.bincount(labels[s]))) == 1
    assert [len(s) for s in stage_indices(labels, "classification", 128, seed=1)] == [32, 64, 128]
    assert not np.array_equal(stage_indices(labels, "classification", 128, seed=1)[0], stages[0])
    order = stage_order(stages, 1)  # increment by increment: the first stage, then what the second adds
    assert list(order[:32]) == list(stages[0]) and sorted(order) == list(stages[1])


def test_a_sample_too_small_to_split_is_one_stage() -> None:
    labels = np.repeat(np.arange(3), 12)  # a quarter or a half of 12 per class is under 8 per class
    assert [len(s) for s in stage_indices(labels, "classification", 36, seed=0)] == [36]
    labels = np.repeat(np.arange(3), 16)  # a half holds 8 per class, a quarter 4: two stages
    assert [len(s) for s in stage_indices(labels, "classification", 48, seed=0)] == [24, 48]
    assert [len(s) for s in stage_indices(None, "unlabelled", 100, seed=0)] == [50, 100]
    assert [len(s) for s in stage_indices(None, "unlabelled", 200, seed=0)] == [50, 100, 200]


def _separable(n_per_class: int, noise: float, *, seed: int, classes: int = 4, dim: int = 8) -> np.ndarray:
    """Classes around the same centres whatever the seed (which draws the noise): a close race."""
    centres = np.random.default_rng(1234).normal(size=(classes, dim)) * 3
    rng = np.random.default_rng(seed)
    return np.concatenate([centres[c] + noise * rng.normal(size=(n_per_class, dim)) for c in range(classes)])


def test_clear_losers_leave_and_close_races_stay() -> None:
    labels = np.repeat(np.arange(4), 10)
    features = {f"good{i}": (_separable(10, 0.5, seed=i), None) for i in range(4)}
    features |= {f"noise{i}": (np.random.default_rng(10 + i).normal(size=(40, 8)), None) for i in range(6)}
    decision = decide(features, labels, "classification", ["logme"], {}, rounds=30, seed=0)
    assert {d["ref"] for d in decision["dropped"]} == {f"noise{i}" for i in range(6)}
    assert set(decision["kept"]) == {f"good{i}" for i in range(4)}
    assert all("cannot reach the top" in d["reason"] for d in decision["dropped"])


def test_the_best_always_survive_even_when_every_candidate_is_alike() -> None:
    labels = np.repeat(np.arange(3), 8)
    same = np.random.default_rng(0).normal(size=(24, 6))
    features = {f"m{i}": (same.copy(), None) for i in range(8)}
    decision = decide(features, labels, "classification", ["logme"], {}, rounds=30, seed=0)
    assert len(decision["kept"]) >= KEEP_AT_LEAST  # ties: all share rank 1, so all stay
    no_rounds = decide(features, labels, "classification", ["logme"], {}, rounds=0, seed=0)
    assert len(no_rounds["kept"]) == 4  # without resampling: the top half


def test_candidates_no_estimator_could_score_stay() -> None:
    labels = np.repeat(np.arange(2), 6)
    features = {f"good{i}": (_separable(6, 0.3, seed=i, classes=2), None) for i in range(4)}
    features["nan"] = (np.full((12, 8), np.nan), None)
    features |= {f"noise{i}": (np.random.default_rng(i).normal(size=(12, 8)), None) for i in range(4)}
    decision = decide(features, labels, "classification", ["logme"], {}, rounds=20, seed=0)
    assert "nan" in decision["kept"]


def test_halve_asks_only_for_the_survivors() -> None:
    labels = np.repeat(np.arange(4), 32)
    stages = stage_indices(labels, "classification", 128, seed=0)
    full = {f"good{i}": _separable(32, 0.4, seed=i) for i in range(3)}
    full |= {f"noise{i}": np.random.default_rng(i).normal(size=(128, 8)) for i in range(9)}
    asked: list[tuple[int, list[str]]] = []

    def features_on(refs: list[str], k: int) -> dict:
        asked.append((k, list(refs)))
        order = stage_order(stages, k)
        return {r: (full[r][order], None) for r in refs}

    alive, done = halve(
        list(full), stages, features_on, labels, "classification", ["logme"], {}, rounds=30, seed=0
    )
    assert asked[0] == (0, list(full))
    assert all(set(refs) < set(full) for _, refs in asked[1:])
    assert set(alive) >= {"good0", "good1", "good2"} and len(alive) < len(full)
    assert [s.samples for s in done] == [32, 64]
    assert all(d["reason"].startswith("dropped at 32 samples") for d in done[0].dropped)


@pytest.fixture
def many_models(registry: Registry, tmp_path: Path) -> list[str]:
    """AUTO_FROM tiny timm models, each saved as a local folder from its own seed."""
    refs = []
    for seed in range(AUTO_FROM):
        arch = "test_resnet" if seed % 2 else "test_vit"
        folder = save_tiny_timm(tmp_path / f"m{seed:02d}", arch=arch, num_classes=3, seed=100 + seed)
        refs.append(registry.add_ref(str(folder))[0].ref)
    return refs


@pytest.fixture
def images96(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images", classes=3, per_class=32, size=16)


def test_auto_halves_records_who_was_dropped_and_reuses_every_item(
    registry: Registry, images96: Path, many_models: list[str]
) -> None:
    auto = recommend(images96, registry=registry, workers=0, bootstrap=20)
    budget = auto.budget
    assert budget["active"] and [s["samples"] for s in budget["stages"]] == [24, 48]
    dropped = {d["ref"] for d in budget["stages"][0]["dropped"]} | {
        d["ref"] for d in budget["stages"][1]["dropped"]
    }
    survivors = {r.ref for r in auto.ranking}
    assert dropped and survivors and dropped | survivors == set(many_models) and not dropped & survivors
    # the first stage embeds everyone on 12 items, each later one only what it adds, for the survivors
    s0, s1 = budget["stages"]
    expected = 24 * len(s0["candidates"]) + 24 * len(s1["candidates"]) + 48 * len(survivors)
    assert budget["forward_passes"] == expected + 96 * len(survivors)  # + the survivors' random inits
    assert budget["full_forward_passes"] == 96 * 2 * AUTO_FROM
    assert {b.baseline_of for b in auto.baselines} == survivors | {"*"}

    record = load_run(auto.run_id, registry=registry)
    rows = {c.ref: c for c in record.candidates if c.status == "dropped"}
    assert set(rows) == dropped and all("dropped at" in c.reason for c in rows.values())
    assert record.result.detail["budget"]["stages"] == budget["stages"]
    assert record.result.detail["device"] == "cpu"  # the stages' models ran, and the record says where
    verified = verify_run(auto.run_id, registry=registry)  # the same halving, the same answer
    assert verified.reproduced, verified.reasons
    page = render_report(record)
    assert "Dropped early" in page and all(escape(rows[r].reason) in page for r in dropped)

    # --budget full later: the survivors' whole-sample features were written, so only the others embed
    full = recommend(images96, registry=registry, workers=0, bootstrap=20, budget="full")
    assert not full.budget["active"]
    assert {r.ref for r in full.ranking if r.from_cache} == survivors
    assert full.budget["forward_passes"] == 96 * len(dropped) + 96 * len(dropped)


def test_a_rerun_after_an_interruption_resumes_from_the_embedded_increments(
    registry: Registry, images96: Path, many_models: list[str]
) -> None:
    class StopAfter(Silent):
        def __init__(self, models: int) -> None:
            self.left = models

        def start(self, label: str, total: int) -> None:
            if self.left == 0:
                raise KeyboardInterrupt
            self.left -= 1

    with pytest.raises(KeyboardInterrupt):
        recommend(images96, registry=registry, workers=0, bootstrap=20, reporter=StopAfter(5))
    resumed = recommend(images96, registry=registry, workers=0, bootstrap=20)
    whole = recommend(images96, registry=registry, workers=0, bootstrap=20, record=False)
    s0 = resumed.budget["stages"][0]
    assert resumed.budget["forward_passes"] < whole.budget["full_forward_passes"]
    assert resumed.budget["forward_passes"] == (
        24 * (len(s0["candidates"]) - 5)
        + 24 * len(resumed.budget["stages"][1]["candidates"])
        + 48 * len(resumed.ranking)
        + 96 * len(resumed.ranking)
    )
    assert whole.budget["forward_passes"] == 0 and [r.ref for r in whole.ranking] == [
        r.ref for r in resumed.ranking
    ]


def test_few_candidates_or_full_do_not_halve(
    registry: Registry, images96: Path, many_models: list[str]
) -> None:
    few = recommend(images96, registry=registry, workers=0, bootstrap=0, models=many_models[:3])
    assert not few.budget["active"] and "halving starts at" in few.budget["note"]
    with pytest.raises(BadInputError, match="Unknown --budget 'some'"):
        recommend(images96, registry=registry, budget="some")


def test_the_cli_says_what_the_budget_did(registry: Registry, images96: Path, many_models: list[str]) -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["recommend", str(images96), "--bootstrap", "20"])
    assert done.exit_code == 0, done.output
    assert "Budget (successive halving): candidates 12 on 24 ->" in done.output
    doc = runner.invoke(cli, ["recommend", str(images96), "--bootstrap", "20", "--json"])
    budget = json.loads(doc.stdout)["budget"]
    assert budget["active"] and budget["forward_passes"] == 0  # all cached now
    bad = runner.invoke(cli, ["recommend", str(images96), "--budget", "half"])
    assert bad.exit_code == 2 and "'half' is not one of 'auto', 'full'" in bad.output
