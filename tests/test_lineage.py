"""Lineage: a fine-tuned model comes back as a candidate with its parent, run and outcome, in every
fine-tune format; ``registry show`` and ``list --tree`` show the family; a cycle is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _finetune_helpers import save_small_timm, save_text_model, write_topics
from click.testing import CliRunner
from helpers import rgb_images
from tlreg.advisor import finetune, recommend
from tlreg.advisor.cache import FeatureCache
from tlreg.advisor.handoff.saved_model import load_finetuned
from tlreg.cli.main import cli
from tlreg.registry import ModelSpec, Registry
from tlreg.registry.errors import BadInputError, LineageCycleError

FAST = {"workers": 0, "batch_size": 8}


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def small_resnet(registry: Registry, tmp_path: Path) -> str:
    return registry.add_ref(str(save_small_timm(tmp_path / "resnet32")))[0].ref


def test_a_linear_fine_tune_registers_as_a_head_on_its_parents_features(
    registry: Registry, image_folder: Path, small_resnet: str, tmp_path: Path
) -> None:
    picked = recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=0)
    result = finetune(
        picked.run_id, out=tmp_path / "ft", registry=registry, register=True, mode="linear", epochs=10, **FAST
    )
    assert result.model_format == "linear" and result.registered

    child = registry.get(result.registered)
    parent = registry.get(small_resnet)
    assert child.ref == f"local-dir:{(tmp_path / 'ft' / 'model').resolve()}"
    assert (child.parent_ref, child.parent_revision) == (parent.ref, parent.revision)
    assert (child.finetune_run_id, child.finetune_outcome_id) == (picked.run_id, result.outcome_id)
    assert child.num_classes == 3 and child.feature_dim == parent.feature_dim and "finetuned" in child.tags
    assert child.extra["finetune"]["mode"] == "linear" and child.origin == "finetune"

    # as a candidate: the parent's penultimate features, and the fine-tune's head as the source head
    images = rgb_images(4, size=32)
    features, probs = registry.load(child.ref).embed(images)
    parent_features, parent_probs = registry.load(parent.ref).embed(images)
    np.testing.assert_allclose(features, parent_features, rtol=1e-5, atol=1e-6)
    assert probs.shape == (4, 3) and parent_probs.shape == (4, 5)
    expected = load_finetuned(tmp_path / "ft", registry=registry).predict_proba(images)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)

    # ranked beside its parent: the same features score the same; the head tells them apart for LEEP
    both = recommend(image_folder, registry=registry, estimators=["logme", "leep"], bootstrap=0, workers=0)
    scores = {r.ref: r.scores for r in both.ranking}
    assert scores[child.ref]["logme"] == pytest.approx(scores[parent.ref]["logme"], rel=1e-5)
    assert scores[child.ref]["leep"] != pytest.approx(scores[parent.ref]["leep"])

    family = registry.family(parent.ref)
    assert family["parent"] is None and [c["ref"] for c in family["children"]] == [child.ref]
    assert family["children"][0]["val_accuracy"] == pytest.approx(result.best_val_acc)
    assert family["children"][0]["run_id"] == picked.run_id
    mine = registry.family(child.ref)
    assert mine["parent"]["ref"] == parent.ref and mine["parent"]["registered"]
    assert mine["outcome"]["id"] == result.outcome_id and mine["outcome"]["mode"] == "linear"


def test_registry_add_of_a_fine_tune_folder_shows_the_family_and_the_tree(
    registry: Registry, image_folder: Path, small_resnet: str, tmp_path: Path
) -> None:
    out = tmp_path / "partial"
    result = finetune(
        model=small_resnet, data=image_folder, out=out, mode="partial", unfreeze=1, epochs=2, **FAST
    )
    added = run("registry", "add", str(out), "--json")  # OUT itself: its model/ is what is registered
    assert added.exit_code == 0, added.output
    model = json.loads(added.stdout)["model"]
    assert model["ref"] == f"local-dir:{(out / 'model').resolve()}" and model["parent_ref"] == small_resnet
    assert model["finetune_outcome_id"] == result.outcome_id and model["finetune_run_id"] is None
    assert model["num_classes"] == 3  # timm format: its own new classifier

    shown = json.loads(run("registry", "show", small_resnet, "--json").stdout)
    assert [c["ref"] for c in shown["family"]["children"]] == [model["ref"]]
    assert shown["family"]["children"][0]["mode"] == "partial"
    text = run("registry", "show", small_resnet).stdout
    assert "child" in text and f"{model['ref']} (partial, val acc {result.best_val_acc:.3f})" in text
    lines = run("registry", "show", model["ref"]).stdout.splitlines()
    assert any("parent " in line and "parent_ref" not in line and small_resnet in line for line in lines)

    forest = json.loads(run("registry", "list", "--tree", "--json").stdout)
    assert [n["ref"] for n in forest] == [small_resnet]
    assert [c["ref"] for c in forest[0]["children"]] == [model["ref"]]
    drawn = run("registry", "list", "--tree").stdout.splitlines()
    parent_line = next(i for i, line in enumerate(drawn) if small_resnet in line)
    child_line = next(i for i, line in enumerate(drawn) if model["ref"] in line)
    assert child_line > parent_line and drawn[child_line].index("local-dir:/") > drawn[parent_line].index(
        "local-dir:/"
    )
    assert "partial, val acc" in drawn[child_line]
    # only the children that match the filters: a child listed alone says whose it is
    alone = json.loads(run("registry", "list", "--tree", "--json", "--tag", "finetuned").stdout)
    assert [(n["ref"], n["parent_ref"]) for n in alone] == [(model["ref"], small_resnet)]


def test_a_text_fine_tune_registers_from_the_cli_with_its_head(registry: Registry, tmp_path: Path) -> None:
    ref = registry.add_ref(str(save_text_model(tmp_path / "bert")))[0].ref
    registry.set_alias("champion", ref)
    data = write_topics(tmp_path / "topics.csv")
    out = tmp_path / "ft"
    done = run(
        "finetune", "--model", "@champion", "--data", str(data), "--out", str(out), "--mode", "full",
        "--epochs", "3", "--lr", "1e-3", "--workers", "0", "--register", "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["ref"] == ref and doc["model_format"] == "backbone+head"
    child = registry.get(doc["registered"])
    assert child.parent_ref == ref and child.num_classes == 3 and child.task == "text-classification"
    features, probs = registry.load(child.ref).embed(["the cat sat", "the stock fell"])
    assert features.shape[1] == child.feature_dim and probs.shape == (2, 3)
    assert np.allclose(probs.sum(1), 1.0)
    again = run("finetune", "--model", ref, "--data", str(data), "--out", str(tmp_path / "x"), "--export",
                "script", "--register")  # fmt: skip
    assert again.exit_code == 2 and "--register needs a trained model" in again.stderr


def fake(ref: str, **fields: object) -> ModelSpec:
    return ModelSpec(
        ref=ref, source="timm", architecture="resnet18", modality="image", revision="a" * 40, **fields
    )


@pytest.mark.databases("sqlite", "postgresql")  # the store on both: see conftest.py
def test_a_cycle_in_lineage_is_refused_in_one_line(registry: Registry) -> None:
    registry.add(fake("timm:a"))
    registry.add(fake("timm:b", parent_ref="timm:a"))
    registry.add(fake("timm:c", parent_ref="timm:b"))
    with pytest.raises(
        LineageCycleError,
        match=r"timm:c cannot be the parent of timm:a.*timm:a <- timm:c <- timm:b <- timm:a",
    ):
        registry.set_parent("timm:a", "timm:c")
    with pytest.raises(LineageCycleError):
        registry.add(fake("timm:a", parent_ref="timm:b"))  # the same through add (a re-registered folder)
    assert registry.get("timm:a").parent_ref is None  # nothing written

    result = run("registry", "add", "timm:a", "--parent", "timm:a")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "Lineage cycle" in result.stderr
    assert "Traceback" not in result.stderr
    ok = run("registry", "add", "timm:c", "--parent", "timm:a", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["model"]["parent_ref"] == "timm:a"
    assert [e.action for e in registry.events("timm:c")] == ["add", "parent"]
    assert [n["ref"] for n in registry.tree()[0]["children"]] == ["timm:b", "timm:c"]


def test_a_linear_head_needs_its_parent_registered(
    registry: Registry, image_folder: Path, small_resnet: str, tmp_path: Path
) -> None:
    finetune(model=small_resnet, data=image_folder, out=tmp_path / "ft", epochs=2, registry=registry, **FAST)
    registry.remove(small_resnet)
    with pytest.raises(BadInputError, match="it was removed from the registry"):
        registry.add_ref(str(tmp_path / "ft" / "model"))
    assert registry.list() == []  # nothing half-written


def test_a_linear_fine_tune_is_ranked_the_same_on_ray(
    registry: Registry, image_folder: Path, small_resnet: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ray actor has no registry: the child carries its parent's entry, and loads the same way."""
    ray = pytest.importorskip("ray", reason="needs ray (pip install 'tlreg[ray]')")
    done = finetune(
        model=small_resnet, data=image_folder, out=tmp_path / "ft", epochs=3, register=True, **FAST
    )
    child = done.registered
    options = {"estimators": ["logme", "leep"], "bootstrap": 0, "workers": 0, "history": False}
    local = recommend(image_folder, registry=registry, cache=FeatureCache(tmp_path / "local"), **options)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = recommend(  # a cache of its own: every job goes to an actor
            image_folder, registry=registry, backend="ray", cache=FeatureCache(tmp_path / "ray"), **options
        )
    finally:
        ray.shutdown()
    assert remote.skipped == [] and {r.ref for r in remote.ranking} == {small_resnet, child}
    for a, b in zip(remote.ranking + remote.baselines, local.ranking + local.baselines, strict=True):
        assert a.ref == b.ref and a.scores == pytest.approx(b.scores, rel=1e-5, abs=1e-6, nan_ok=True)
