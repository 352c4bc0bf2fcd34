"""``recommend(trials=k)`` / ``--trials K``: short fine-tunes of the top candidates decide the pick.

Tiny timm models saved as folders and the real fine-tuning code: each trial is checked against the
same fine-tune run through ``tlreg.advisor.finetune``, the re-ordering and the ranks against a direct
derivation, the second run against the answer cache, and the Why, the warnings, the JSON and the
record against what the trials measured."""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import save_tiny_bert, save_tiny_timm, write_image_folder
from sqlmodel import Session
from test_runs import invoke
from tlreg.advisor import defaults, finetune, recommend
from tlreg.advisor import trials as tr
from tlreg.advisor.answer import Standings, warn_if_undecided
from tlreg.advisor.audit.compare import export_run
from tlreg.advisor.audit.records import load_run
from tlreg.advisor.confidence import Confidence
from tlreg.advisor.result import RankingRow
from tlreg.advisor.why import PickFacts, explain
from tlreg.registry import ModelRecord, Registry
from tlreg.registry.errors import BadInputError
from tlreg.registry.runs import RunResult

FAST = {"workers": 0, "baselines": False, "bootstrap": 0}
#: ... and one-epoch trials, where what is tested is not the trial's length (a third of the training)
SHORT = {**FAST, "trial_epochs": 1}
#: the module (``handoff.finetune`` the package attribute is the function)
ft_module = importlib.import_module("tlreg.advisor.handoff.finetune")


@pytest.fixture
def three(registry: Registry, tmp_path: Path) -> list[str]:
    refs = []
    for arch, seed in (("test_resnet", 0), ("test_vit", 1), ("test_efficientnet", 2)):
        folder = save_tiny_timm(tmp_path / f"m-{arch}", arch=arch, num_classes=3, seed=seed)
        refs.append(registry.add_ref(str(folder))[0].ref)
    return refs


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images", classes=3, per_class=10)


def _as_tlreg_finetune(row: RankingRow, images: Path, registry: Registry, tmp_path: Path, *, seed: int):
    """`tlreg finetune --model REF` with a trial's recipe and ``seed``: what that trial must equal."""
    return finetune(
        model=row.ref,
        data=images,
        out=tmp_path / f"ft{seed}-{row.ref[-8:]}",
        registry=registry,
        record=False,
        workers=0,
        **{**tr.recipe(seed, row.trial["train"]), "epochs": row.trial["epochs"]},
    )


def test_the_recipe_is_three_epochs_or_enough_epochs_for_the_minimum_steps() -> None:
    batch, least = defaults.FINETUNE_BATCH_SIZE, defaults.TRIAL_MIN_STEPS
    assert batch == 32 and least == 25 and defaults.TRIAL_EPOCHS == 3
    # both benchmarks' trial sizes: three epochs (75 and 114 steps), the recipe they measured
    assert tr.recipe(0, 800) == {**defaults.TRIAL_RECIPE, "epochs": 3, "seed": 0}
    assert tr.recipe(3, 1200)["epochs"] == 3 and tr.recipe(3, 1200)["seed"] == 3
    assert tr.recipe(0, 100)["epochs"] == 19  # 4 steps an epoch: 19 epochs reach 76 >= 3 x 25
    assert tr.recipe(0, 24)["epochs"] == 75 and tr.recipe(0, 0)["epochs"] == 3
    # --trial-epochs 1: the one-epoch trials measured first (at least 25 steps)
    assert tr.recipe(0, 800, 1)["epochs"] == 1 and tr.recipe(0, 100, 1)["epochs"] == 7


def _trial(ref: str, correct: int, val: int = 20) -> tr.Trial:
    return tr.Trial(ref, correct / val, val, 80, 1, 1.0)


def test_reorder_puts_the_tried_first_by_accuracy_ties_to_the_estimators_order() -> None:
    ranked = ["a", "b", "c", "d", "e"]
    trials = {"a": _trial("a", 10), "b": _trial("b", 15), "c": _trial("c", 10)}
    assert tr.reorder(ranked, trials) == ["b", "a", "c", "d", "e"]
    assert tr.reorder(ranked, {}) == ranked
    assert tr.reorder(ranked, {"d": _trial("d", 1)}) == ["d", "a", "b", "c", "e"]  # a failed top trial


def test_too_close_is_one_standard_error_of_two_proportions() -> None:
    def naive(a: int, b: int, n: int) -> bool:
        p = (a + b) / (2 * n)
        return abs(a - b) / n <= math.sqrt(2 * p * (1 - p) / n)

    for a, b in ((4, 2), (15, 10), (18, 10), (10, 10), (0, 20), (20, 19)):
        assert tr.too_close(_trial("x", a), _trial("y", b)) == naive(a, b, 20), (a, b)
    assert tr.too_close(_trial("x", 200, 200), _trial("y", 0, 200)) is False


def test_repeated_trials_count_their_shared_validation_items_once() -> None:
    """Two splits of 1,000 items, 200 validated each, share about 20 % of their validation items: the
    variance of the mean is (1 + 0.2) times that of 400 independent items."""
    a = tr.Trial("a", 215 / 400, 400, 800, 1, 1.0, repeats=2)
    b = tr.Trial("b", 200 / 400, 400, 800, 1, 1.0, repeats=2)
    assert tr.effective_items(a) == pytest.approx(400 / 1.2)
    assert tr.effective_items(_trial("x", 10)) == 20  # one split: every item once
    p = (215 + 200) / 800
    independent = math.sqrt(p * (1 - p) * 2 / 400)
    corrected = math.sqrt(p * (1 - p) * 2 / (400 / 1.2))
    assert independent < 15 / 400 <= corrected  # separable only if the items were independent
    assert tr.too_close(a, b) is True


def test_trials_decide_the_pick_and_match_tlreg_finetune(
    registry: Registry, images: Path, three: list[str], tmp_path: Path
) -> None:
    result = recommend(images, registry=registry, trials=2, **FAST)
    plain = recommend(images, registry=registry, **FAST)
    estimators_top2 = [r.ref for r in plain.ranking[:2]]
    tried = [r for r in result.ranking if r.trial]
    assert sorted(r.ref for r in tried) == sorted(estimators_top2)
    assert [r.ref for r in result.ranking[:2]] == [r.ref for r in tried]  # the tried come first
    accs = [r.trial["val_acc"] for r in tried]
    assert accs == sorted(accs, reverse=True)
    if accs[0] == accs[1]:  # a tie keeps the estimators' order, and shows as one
        assert [r.ref for r in tried] == estimators_top2 and tried[0].rank == tried[1].rank == 1
    else:
        assert [r.rank for r in tried] == [1, 2]
    assert result.ranking[2].ref == plain.ranking[2].ref and result.ranking[2].rank == 3
    assert result.best.ref == result.ranking[0].ref
    assert result.confidence["decided_by"] == "trials" and plain.confidence["decided_by"] == "estimators"
    assert result.confidence["trials"]["recipe"] == tr.recipe(0, tried[0].trial["train"])

    # each trial is what `tlreg finetune --model REF --mode full --epochs E --lr 1e-3 --patience 0` trains
    for row in tried:
        assert row.trial["epochs"] == tr.recipe(0, row.trial["train"])["epochs"]
        done = _as_tlreg_finetune(row, images, registry, tmp_path, seed=0)
        assert done.best_val_acc == pytest.approx(row.trial["val_acc"], abs=1e-12)
        assert done.data["val"] == row.trial["val"] and done.data["train"] == row.trial["train"]

    best = tried[0].trial
    assert result.reason.startswith(
        f"{result.best.ref} is picked by short fine-tunes of the estimators' top 2"
    )
    assert f"({best['correct']}/{best['val']})" in result.reason
    stored = load_run(result.run_id, registry=registry)
    assert stored.result.detail["confidence"]["decided_by"] == "trials"
    assert [r.get("trial") for r in stored.result.ranking[:2]] == [r.trial for r in tried]
    assert stored.run.options["trials"] == 2

    # the record's other views: runs show, the CSV and Markdown exports
    rows = list(csv.DictReader(io.StringIO(export_run(result.run_id, "csv", registry=registry))))
    by_ref = {r["ref"]: r["trial_val_acc"] for r in rows}
    assert all(float(by_ref[r.ref]) == r.trial["val_acc"] for r in tried)
    assert by_ref[result.ranking[2].ref] == ""
    md = export_run(result.run_id, "md", registry=registry)
    assert "| combined | trial | P(best) |" in md
    shown = invoke("runs", "show", result.run_id)
    assert shown.exit_code == 0 and "est. P(best)" in shown.stdout and "trial" in shown.stdout


def test_a_second_run_takes_the_trials_from_the_answer_cache(
    registry: Registry, images: Path, three: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = recommend(images, registry=registry, trials=2, **SHORT)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached trial trained again")

    monkeypatch.setattr(ft_module, "short_finetune", no_training)
    second = recommend(images, registry=registry, trials=2, **SHORT)
    assert [(r.ref, r.trial["val_acc"]) for r in second.ranking if r.trial] == [
        (r.ref, r.trial["val_acc"]) for r in first.ranking if r.trial
    ]
    assert all(r.trial["from_cache"] for r in second.ranking if r.trial)
    with pytest.raises(AssertionError, match="trained again"):  # reuse_answers=False: verify's way
        recommend(images, registry=registry, trials=2, reuse_answers=False, **SHORT)


def test_a_model_that_cannot_be_fine_tuned_is_said_and_ranks_after_the_tried(
    registry: Registry, images: Path, three: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = recommend(images, registry=registry, **FAST)
    first = plain.ranking[0].ref
    real = ft_module.short_finetune

    def refuse_the_first(record: ModelRecord, *args: object, **kwargs: object) -> object:
        if record.ref == first:
            raise BadInputError(f"{record.ref}: cannot be fine-tuned here")
        return real(record, *args, **kwargs)

    monkeypatch.setattr(ft_module, "short_finetune", refuse_the_first)
    result = recommend(images, registry=registry, trials=2, **SHORT)
    assert result.ranking[0].ref == plain.ranking[1].ref and result.ranking[0].trial is not None
    assert result.ranking[1].ref == first and result.ranking[1].trial is None
    assert any(f"--trials: {first} could not be fine-tuned" in w for w in result.warnings)
    # the Why and the JSON count the K asked for, and name the one that failed
    assert "short fine-tunes of the estimators' top 2 " in result.reason
    assert f"({first} could not be fine-tuned)" in result.reason
    assert result.confidence["trials"]["k"] == 2 and result.confidence["trials"]["failed"] == [first]


def test_the_why_and_the_warnings_say_what_the_trials_decided() -> None:
    """The Why and the warning from trials alone (no training): a pick the estimators ranked 3rd, a
    runner-up a validation item behind (within one standard error), a pick also the estimators' first."""
    ranked = ["pkg:a", "pkg:b", "pkg:c"]
    scores = {r: {"logme": 1.0 - i} for i, r in enumerate(ranked)}
    combined = {r: 1.0 - i for i, r in enumerate(ranked)}
    trials = {"pkg:c": _trial("pkg:c", 16), "pkg:a": _trial("pkg:a", 15), "pkg:b": _trial("pkg:b", 4)}
    order = tr.reorder(ranked, trials)
    assert order == ["pkg:c", "pkg:a", "pkg:b"]
    text = explain(ranked, scores, combined, ["logme"], PickFacts(trials=trials, order=order))
    assert text.startswith(
        "pkg:c is picked by short fine-tunes of the estimators' top 3: 1 epoch on 80 items, 0.800 "
        "validation accuracy (16/20) against 0.750 for pkg:a; the trials do not tell them apart"
    )
    assert "The estimators ranked it 3rd (their first: pkg:a)." in text and "ranks first" not in text

    clear = {"pkg:a": _trial("pkg:a", 18), "pkg:b": _trial("pkg:b", 4)}
    text = explain(
        ranked, scores, combined, ["logme"], PickFacts(trials=clear, order=tr.reorder(ranked, clear))
    )
    assert "against 0.200 for pkg:b." in text and "It is also the estimators' first." in text
    assert "do not tell" not in text

    def rows(order: list[str]) -> list[RankingRow]:
        return [
            RankingRow(i + 1, r, None, {}, combined[r], None, None, None, 0.0, False)
            for i, r in enumerate(order)
        ]

    standing = Standings(
        ["logme"], combined, {}, {}, ranked, ["pkg:a"], {r: i + 1 for i, r in enumerate(ranked)}, "zscore"
    )
    conf = Confidence.from_dict(
        {"p_best": {}, "rank_interval": {}, "rounds": 0, "beats_runner_up": None, "round_scores": []}
    )
    warns: list[str] = []
    warn_if_undecided(standing, conf, warns, ranking=rows(order), trials=trials)
    assert warns == [
        "The trials do not tell pkg:c and pkg:a apart: 16/20 and 15/20 validation items right, within one "
        "standard error; either is a sound start."
    ]
    warns.clear()
    warn_if_undecided(standing, conf, warns, ranking=rows(tr.reorder(ranked, clear)), trials=clear)
    assert warns == []


def test_regression_data_runs_no_trials(registry: Registry, tmp_path: Path) -> None:
    registry.add_ref(str(save_tiny_bert(tmp_path / "bert")))
    registry.add_ref(str(save_tiny_bert(tmp_path / "bert2", seed=1)))
    words = ["cat sat mat", "dog sat rug", "stock market fell", "market rose"] * 4
    frame = pd.DataFrame({"text": words, "label": np.linspace(0.0, 1.0, len(words))})
    frame.to_csv(tmp_path / "r.csv", index=False)
    result = recommend(tmp_path / "r.csv", registry=registry, trials=2, **FAST)
    assert not any(r.trial for r in result.ranking) and result.confidence["decided_by"] == "estimators"
    assert any("--trials: a fine-tune trains a classifier" in w for w in result.warnings)


def test_trials_option_has_a_cli_twin_and_refuses_a_negative(
    registry: Registry, images: Path, three: list[str]
) -> None:
    shown = invoke(
        "recommend",
        str(images),
        "--trials",
        "2",
        "--trial-epochs",
        "1",
        "--workers",
        "0",
        "--no-baselines",
        "--json",
    )
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    recipe = doc["confidence"]["trials"]["recipe"]
    tried = next(r["trial"] for r in doc["ranking"] if r.get("trial"))
    assert recipe == tr.recipe(0, tried["train"], 1) and tried["epochs"] == recipe["epochs"]
    assert (
        doc["confidence"]["decided_by"] == "trials" and sum(1 for r in doc["ranking"] if r.get("trial")) == 2
    )
    assert "trial 2/2:" in shown.stderr  # progress on stderr, the result alone on stdout
    table = invoke(
        "recommend", str(images), "--trials", "2", "--trial-epochs", "1", "--workers", "0", "--no-baselines"
    )
    assert table.exit_code == 0 and "est. P(best)" in table.stdout and "trial" in table.stdout
    bad = invoke("recommend", str(images), "--trials", "-1")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    with pytest.raises(BadInputError, match="--trials must be 0"):
        recommend(images, registry=registry, trials=-1, **FAST)
    bad = invoke("recommend", str(images), "--trials", "2", "--trial-epochs", "0")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    with pytest.raises(BadInputError, match="--trial-epochs must be 1"):
        recommend(images, registry=registry, trials=2, trial_epochs=0, **FAST)


def test_a_run_with_trials_verifies_by_training_them_again(
    registry: Registry, images: Path, three: list[str]
) -> None:
    """``tlreg runs verify`` recomputes without the answer cache: the trials train again, on the same
    items with the same seed, and reproduce the recorded accuracies and order (CPU: bit for bit)."""
    from tlreg.advisor.audit.compare import verify_run

    result = recommend(images, registry=registry, trials=2, **SHORT)
    v = verify_run(result.run_id, registry=registry, workers=0)
    assert v.reproduced, v.reasons
    assert [r.trial["val_acc"] for r in result.ranking if r.trial]  # what verify trained again

    with Session(registry.engine) as session:  # a recorded trial that another machine got otherwise
        stored = session.get(RunResult, result.run_id)
        ranking = [dict(r) for r in stored.ranking]
        tried = next(r for r in ranking if r.get("trial"))
        tried["trial"] = {**tried["trial"], "val_acc": tried["trial"]["val_acc"] + 0.05}
        stored.ranking = ranking
        session.add(stored)
        session.commit()
    v = verify_run(result.run_id, registry=registry, workers=0)
    assert not v.reproduced and any(r.startswith(f"the trial of {tried['ref']} reached") for r in v.reasons)


def test_a_run_recorded_before_trial_epochs_verifies_with_one_epoch_trials(
    registry: Registry, images: Path, three: list[str]
) -> None:
    """A run recorded before --trial-epochs existed trained one-epoch trials: verify recomputes it that
    way and says the default is now longer, rather than call the run irreproducible."""
    from tlreg.advisor.audit.compare import verify_run
    from tlreg.registry.runs import Run

    result = recommend(images, registry=registry, trials=2, **SHORT)
    with Session(registry.engine) as session:
        run = session.get(Run, result.run_id)
        run.options = {k: v for k, v in run.options.items() if k != "trial_epochs"}
        session.add(run)
        session.commit()
    v = verify_run(result.run_id, registry=registry, workers=0)
    assert v.reproduced, v.reasons
    assert any("trial length (1 epoch); the default is now 3" in n for n in v.notes)


def test_text_candidates_are_tried_too(registry: Registry, tmp_path: Path) -> None:
    """Two tiny sentence-transformers folders on a text table: each trial is the text fine-tune."""
    for seed in (0, 1):
        registry.add_ref(str(save_tiny_bert(tmp_path / f"bert{seed}", seed=seed)))
    words = ["cat sat mat", "dog sat rug", "stock market fell", "market rose", "team won goal", "team lost"]
    frame = pd.DataFrame({"text": words * 4, "label": ["a", "a", "b", "b", "c", "c"] * 4})
    frame.to_csv(tmp_path / "t.csv", index=False)
    result = recommend(tmp_path / "t.csv", registry=registry, trials=2, **SHORT)
    assert result.confidence["decided_by"] == "trials"
    assert all(r.trial and r.trial["val"] == 6 and r.trial["train"] == 18 for r in result.ranking)
    assert result.ranking[0].trial["val_acc"] >= result.ranking[1].trial["val_acc"]


def test_repeated_trials_average_splits_and_reuse_the_first(
    registry: Registry, images: Path, three: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``trial_repeats=2``: each candidate is tried on the splits of seeds 0 and 1 and ranked by the
    mean, each split being `tlreg finetune --seed S`; a run with one repeat before it leaves only the
    second split to train."""
    once = recommend(images, registry=registry, trials=2, **SHORT)
    real, calls = ft_module.short_finetune, []

    def counted(record: ModelRecord, data: object, given: dict, **kwargs: object) -> object:
        calls.append((record.ref, given["seed"]))
        return real(record, data, given, **kwargs)

    monkeypatch.setattr(ft_module, "short_finetune", counted)
    twice = recommend(images, registry=registry, trials=2, trial_repeats=2, **SHORT)
    tried = [r for r in twice.ranking if r.trial]
    assert sorted(calls) == sorted((r.ref, 1) for r in tried)  # seed 0's split came from the cache
    first = {r.ref: r.trial for r in once.ranking if r.trial}
    for row in tried:
        again = _as_tlreg_finetune(row, images, registry, tmp_path, seed=1)
        assert row.trial["val_acc"] == pytest.approx((first[row.ref]["val_acc"] + again.best_val_acc) / 2)
        assert row.trial["val"] == 2 * first[row.ref]["val"] and row.trial["repeats"] == 2
    accs = [r.trial["val_acc"] for r in tried]
    assert accs == sorted(accs, reverse=True)
    assert twice.confidence["trials"]["repeats"] == 2 and once.confidence["trials"]["repeats"] == 1
    assert "each on 2 splits" in twice.reason and "mean validation accuracy" in twice.reason
    assert "each on" not in once.reason
    bad = invoke("recommend", str(images), "--trials", "2", "--trial-repeats", "0")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    with pytest.raises(BadInputError, match="--trial-repeats must be 1"):
        recommend(images, registry=registry, trials=2, trial_repeats=0, **FAST)
