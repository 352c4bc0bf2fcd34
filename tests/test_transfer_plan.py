"""The transfer plan and learning curve in ``recommend``: on the pick, on every row with
``plan="all"``, in the run record, ``runs verify``, ``runs diff``, the report and ``finetune``'s
default mode; and the bad inputs: too few items per class, regression, unlabelled data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import save_tiny_bert, write_image_folder
from tlreg.advisor import recommend
from tlreg.advisor.audit.compare import diff_runs, verify_run
from tlreg.advisor.audit.records import load_run
from tlreg.advisor.audit.report import render_report
from tlreg.advisor.handoff import finetune
from tlreg.cli.main import cli
from tlreg.registry import Registry
from tlreg.registry.errors import BadInputError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Enough items per class for a learning curve (10: an eighth of the training part holds one)."""
    return write_image_folder(tmp_path / "images", classes=3, per_class=12)


def test_the_pick_gets_a_plan_and_a_learning_curve(
    registry: Registry, folder: Path, tiny_image_models: list[str]
) -> None:
    result = recommend(folder, registry=registry, workers=0, bootstrap=0)
    pick, other = result.ranking
    assert pick.plan["mode"] in ("linear", "partial", "full") and pick.plan["why"]
    curve = pick.learning_curve
    assert curve["metric"] == "accuracy" and [p["n"] for p in curve["points"]] == sorted(
        p["n"] for p in curve["points"]
    )
    assert len(curve["points"]) == 4 and curve["n_labelled"] == 36
    (ahead,) = curve["predict"]
    assert (
        ahead["labels_x"] == 2
        and ahead["n"] == 72
        and ahead["low"] <= ahead["expected"] <= ahead["high"] <= 1
    )
    assert other.plan is None and other.learning_curve is None  # only the pick by default
    doc = result.to_dict()["ranking"][0]
    assert {"mode", "unfreeze", "why"} <= set(doc["plan"]) and {"points", "predict"} <= set(
        doc["learning_curve"]
    )

    every = recommend(folder, registry=registry, workers=0, bootstrap=0, plan="all")
    assert all(r.plan and r.learning_curve for r in every.ranking)
    none = recommend(folder, registry=registry, workers=0, bootstrap=0, plan="none")
    assert all(r.plan is None and r.learning_curve is None for r in none.ranking)
    with pytest.raises(BadInputError, match="Unknown --plan 'some'"):
        recommend(folder, registry=registry, workers=0, plan="some")


def test_the_plan_is_recorded_verified_diffed_and_reported(
    registry: Registry, folder: Path, tiny_image_models: list[str]
) -> None:
    a = recommend(folder, registry=registry, workers=0, bootstrap=0)
    record = load_run(a.run_id, registry=registry)
    assert record.plans() == {a.best.ref: a.best.plan["mode"]}
    checked = verify_run(a.run_id, registry=registry)
    assert checked.reproduced and [p["ref"] for p in checked.plans] == [a.best.ref]
    assert all(p["ok"] and p["curve_recorded"] == p["curve_now"] for p in checked.plans)

    b = recommend(folder, registry=registry, workers=0, bootstrap=0, plan="none")
    d = diff_runs(a.run_id, b.run_id, registry=registry)
    assert d.plans == [{"ref": a.best.ref, "a": a.best.plan["mode"], "b": None}] and d.changed
    shown = CliRunner().invoke(cli, ["runs", "diff", a.run_id, b.run_id])
    assert f"plan        {a.best.ref}: {a.best.plan['mode']} -> (none)" in shown.stdout

    page = render_report(record)
    assert "How to transfer it" in page and 'id="curve-0"' in page and "2× labels" in page


def test_too_few_items_per_class_say_how_many_a_curve_needs(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    result = recommend(image_folder, registry=registry, workers=0, bootstrap=0)  # 6 per class
    pick = result.best
    assert pick.plan is not None and pick.learning_curve["predict"] == []
    assert "it needs 10 per class" in pick.learning_curve["note"]


def test_regression_gets_a_curve_in_r2_and_unlabelled_data_no_plan(
    registry: Registry, tmp_path: Path
) -> None:
    registry.add_ref(str(save_tiny_bert(tmp_path / "bert")))
    rng = np.random.default_rng(0)
    words = ["cat sat mat", "dog sat rug", "stock market fell", "market rose", "team won goal", "bake bread"]
    texts = [" ".join(rng.choice(words, 2)) for _ in range(60)]
    target = [len(t) / 40 for t in texts]
    pd.DataFrame({"text": texts, "label": target}).to_csv(tmp_path / "r.csv", index=False)
    reg = recommend(tmp_path / "r.csv", registry=registry, bootstrap=0)
    assert reg.data["task"] == "regression" and reg.best.learning_curve["metric"] == "r2"
    assert reg.best.plan is not None

    (tmp_path / "u.txt").write_text("\n".join(texts))
    unl = recommend(tmp_path / "u.txt", registry=registry, bootstrap=0)
    assert unl.best.plan is None and "unlabelled" in unl.best.learning_curve["note"]


def test_finetune_takes_the_plans_mode_unless_mode_is_given(
    registry: Registry, folder: Path, tiny_image_models: list[str], tmp_path: Path
) -> None:
    run = recommend(folder, registry=registry, workers=0, bootstrap=0, baselines=False)
    planned = run.best.plan["mode"]
    done = finetune(run.run_id, out=tmp_path / "ft", registry=registry, epochs=1, workers=0)
    assert done.mode == planned
    given = finetune(run.run_id, out=tmp_path / "ft2", registry=registry, mode="linear", epochs=1)
    assert given.mode == "linear"


def test_the_figures_the_plan_quotes_are_the_committed_benchmarks() -> None:
    """The plan's reason quotes the Hub-like transfer-plan truth: each figure is re-derived here from
    ``data/bench/transfer_plan.json`` (a rebuilt truth that moves one fails this until the text follows)."""
    import json

    from tlreg.advisor import plan

    committed = Path(__file__).resolve().parents[1] / "data" / "bench" / "transfer_plan.json"
    doc = json.loads(committed.read_text())
    pairs = [p["accuracies"] for p in doc["pairs"]]
    loss = {mode: [100 * (max(a.values()) - a[mode]) for a in pairs] for mode in ("full", "linear")}
    assert round(max(loss["full"]), 1) == plan.FULL_WITHIN_PP
    assert round(sum(loss["linear"]) / len(pairs)) == plan.LINEAR_BEHIND_PP
    cheap = [100 * (a["full"] - a["linear"]) for a in pairs if a["linear"] >= plan.CHEAP_LINEAR]
    assert (round(min(cheap), 1), round(max(cheap), 1)) == plan.CHEAP_LINEAR_COST_PP
    assert doc["modes_chosen"] == {"full": len(pairs)} and plan.LINEAR_ENOUGH is None
