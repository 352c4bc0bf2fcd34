"""``recommend`` end to end on tiny models: ranking, cache reuse, skips, run records, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import save_tiny_bert, write_image_folder
from tlreg.advisor import recommend
from tlreg.advisor.cache import CacheCorruptWarning, FeatureCache
from tlreg.advisor.embed import forward as features_module  # cached.py imports it on a miss
from tlreg.advisor.errors import DatasetError, NoCandidatesError
from tlreg.advisor.rank import DEFAULT_ESTIMATORS
from tlreg.advisor.verdicts import VERDICT_ESTIMATORS
from tlreg.registry import ModelSpec, Registry, RunStore
from tlreg.registry.errors import UnknownModelError

DEFAULT = list(DEFAULT_ESTIMATORS["classification"])


def test_ranks_candidates_with_baselines_and_records_the_run(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    result = recommend(image_folder, registry=registry, workers=0)
    assert sorted(r.ref for r in result.ranking) == sorted(tiny_image_models)
    tie = result.ranking[0].combined == result.ranking[1].combined  # a split vote: ranks show it as a tie
    assert [r.rank for r in result.ranking] == ([1, 1] if tie else [1, 2])
    assert [r.tied for r in result.ranking] == [tie, tie]
    assert result.best.ref == result.ranking[0].ref and result.best.ref in result.reason
    assert {b.baseline_of for b in result.baselines} == {*tiny_image_models, "*"}
    assert "raw pixels (16x16)" in {b.ref for b in result.baselines}
    assert result.estimators == DEFAULT
    assert all(np.isfinite(list(r.scores.values())).all() for r in result.ranking)
    assert result.ranking[0].combined >= result.ranking[1].combined

    doc = result.to_dict()
    assert {"run_id", "best", "ranking", "warnings", "skipped"} <= set(doc)
    assert doc["best"]["ref"] == result.best.ref
    assert set(doc["ranking"][0]) >= {"rank", "ref", "scores", "params"}

    run, candidates, scores, final = RunStore(registry.engine).get(result.run_id)
    assert run.status == "done" and run.n_samples == 18 and len(run.sample_ids) == 18
    assert len(candidates) == 5 and final.best_ref == result.best.ref
    assert {s.estimator for s in scores} == {
        *DEFAULT,
        *VERDICT_ESTIMATORS["classification"],
    }  # ranked, judged


def test_a_second_run_does_no_forward_pass(
    registry: Registry, image_folder: Path, tiny_image_models: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = recommend(image_folder, registry=registry, workers=0)
    assert not any(r.from_cache for r in first.ranking)

    def no_forward(*args: object, **kwargs: object) -> None:
        raise AssertionError("a forward pass ran although every feature was cached")

    monkeypatch.setattr(features_module, "embed_into", no_forward)
    second = recommend(image_folder, registry=registry, workers=0)
    assert all(r.from_cache for r in second.ranking + second.baselines)
    assert [r.ref for r in second.ranking] == [r.ref for r in first.ranking]
    for a, b in zip(first.ranking, second.ranking, strict=True):
        assert a.scores == pytest.approx(b.scores)


def test_the_record_says_which_device_the_models_ran_on(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    # the device is resolved (which imports torch) when a model runs: a run served from the cache used none
    runs = RunStore(registry.engine)
    devices = []
    for _ in range(2):
        result = recommend(image_folder, registry=registry, workers=0, bootstrap=0, history=False)
        run, _, _, final = runs.get(result.run_id)
        assert run.environment["device"] == "auto"  # as asked
        devices.append(final.detail["device"])
    assert devices[0] in ("cpu", "cuda", "mps") and devices[1] is None


def test_a_corrupt_cache_entry_is_recomputed(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    recommend(image_folder, registry=registry, workers=0, baselines=False)
    cache = FeatureCache()
    entry = next(cache.entries())
    (entry.path / "features.npy").write_bytes(b"garbage")
    with pytest.warns(CacheCorruptWarning):
        again = recommend(image_folder, registry=registry, workers=0, baselines=False)
    assert sum(not r.from_cache for r in again.ranking) == 1


def test_dataloader_workers_give_the_same_features(
    registry: Registry, image_folder: Path, tiny_image_models: list[str], tmp_path: Path
) -> None:
    in_process = recommend(
        image_folder, registry=registry, workers=0, baselines=False, cache=FeatureCache(tmp_path / "c0")
    )
    workers = recommend(
        image_folder, registry=registry, workers=2, baselines=False, cache=FeatureCache(tmp_path / "c2")
    )
    for a, b in zip(in_process.ranking, workers.ranking, strict=True):
        assert a.scores == pytest.approx(b.scores, rel=1e-5)


def test_filters_and_top(registry: Registry, image_folder: Path, tiny_image_models: list[str]) -> None:
    vit = next(r for r in tiny_image_models if "test_vit" in r)
    only = recommend(image_folder, registry=registry, models=["*test_vit*"], workers=0, baselines=False)
    assert [r.ref for r in only.ranking] == [vit]
    top = recommend(image_folder, registry=registry, top=1, workers=0, baselines=False)
    assert len(top.ranking) == 1
    with pytest.raises(UnknownModelError, match="Did you mean"):
        recommend(image_folder, registry=registry, models=[vit + "x"], workers=0)
    with pytest.raises(NoCandidatesError):
        recommend(image_folder, registry=registry, max_params=10, workers=0)


def test_a_model_that_cannot_load_is_skipped_with_its_reason(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    registry.add(
        ModelSpec(
            ref="timm:test_efficientnet.r160_in1k",
            source="timm",
            architecture="test_efficientnet",
            modality="image",
            num_classes=1000,
            params=1,
            feature_dim=256,
            extra={"hf_hub_id": "timm/test_efficientnet.r160_in1k"},
        )
    )
    result = recommend(image_folder, registry=registry, workers=0, baselines=False)
    assert [s["ref"] for s in result.skipped] == ["timm:test_efficientnet.r160_in1k"]
    assert "HF_HUB_OFFLINE" in result.skipped[0]["reason"]
    assert len(result.ranking) == 2


def test_no_candidate_at_all_is_exit_code_3_and_a_failed_run(registry: Registry, image_folder: Path) -> None:
    with pytest.raises(NoCandidatesError) as info:
        recommend(image_folder, registry=registry)
    assert info.value.exit_code == 3 and "tlreg registry import bundled" in str(info.value)
    registry.add(
        ModelSpec(
            ref="timm:test_efficientnet.r160_in1k",
            source="timm",
            architecture="test_efficientnet",
            modality="image",
            num_classes=1000,
            extra={"hf_hub_id": "timm/test_efficientnet.r160_in1k"},
        )
    )
    with pytest.raises(NoCandidatesError, match="None of the candidate models can be loaded now: 1 not in"):
        recommend(image_folder, registry=registry, workers=0)  # known before any run starts
    assert RunStore(registry.engine).list() == []
    with pytest.raises(NoCandidatesError, match="could be evaluated"):
        recommend(image_folder, registry=registry, workers=0, include_unavailable=True)
    [run] = RunStore(registry.engine).list()
    assert run.status == "failed" and "NoCandidatesError" in run.failure


def test_bad_data_leaves_nothing_behind(
    registry: Registry, tmp_path: Path, tiny_image_models: list[str]
) -> None:
    with pytest.raises(DatasetError):
        recommend(tmp_path / "missing", registry=registry)
    one_class = write_image_folder(tmp_path / "one", classes=1)
    with pytest.raises(DatasetError, match="class"):
        recommend(one_class, registry=registry)
    assert RunStore(registry.engine).list() == []
    assert list(FeatureCache().entries()) == []


def test_text_regression_and_unlabelled(registry: Registry, tmp_path: Path) -> None:
    registry.add_ref(str(save_tiny_bert(tmp_path / "bert")))
    words = [
        "cat sat mat",
        "dog sat rug",
        "stock market fell",
        "market rose",
        "team won goal",
        "team lost ball",
        "bake bread oven",
        "oven bread",
    ] * 3
    frame = pd.DataFrame({"text": words, "label": ["a", "a", "b", "b", "c", "c", "d", "d"] * 3})
    frame.to_csv(tmp_path / "t.csv", index=False)
    result = recommend(tmp_path / "t.csv", registry=registry)
    assert result.data["modality"] == "text" and result.estimators == DEFAULT
    assert "leep" not in result.ranking[0].scores  # no source head: LEEP does not apply

    frame.assign(label=np.linspace(0.0, 1.0, len(frame)) ** 2).to_csv(tmp_path / "r.csv", index=False)
    reg = recommend(tmp_path / "r.csv", registry=registry)
    assert reg.data["task"] == "regression" and reg.estimators == ["logme"]

    (tmp_path / "u.txt").write_text("\n".join(words))
    unl = recommend(tmp_path / "u.txt", registry=registry)
    assert unl.data["task"] == "unlabelled" and unl.estimators == ["rankme"]
    assert np.isfinite(unl.ranking[0].scores["rankme"])


def test_top_shows_k_but_the_record_keeps_every_row(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    result = recommend(image_folder, registry=registry, workers=0, top=1, bootstrap=0)
    assert len(result.ranking) == 1
    _, _, _, final = RunStore(registry.engine).get(result.run_id)
    assert sum(1 for row in final.ranking if row["baseline_of"] is None) == 2


def test_weights_edited_in_place_are_a_new_revision_not_stale_features(
    registry: Registry, image_folder: Path, tmp_path: Path
) -> None:
    import timm
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    model = timm.create_model("test_resnet", num_classes=3)
    save_file(model.state_dict(), str(path))
    ref = registry.add_ref(str(path), arch="test_resnet")[0].ref
    first = recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=0)
    save_file({k: v * 0.5 if v.is_floating_point() else v for k, v in model.state_dict().items()}, str(path))
    second = recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=0)
    assert not second.ranking[0].from_cache
    assert (
        second.ranking[0].revision != first.ranking[0].revision == registry.events(ref)[0].detail["revision"]
    )
    assert registry.get(ref).revision == second.ranking[0].revision


@pytest.fixture
def refusing_estimator():
    """An estimator (registered as a plugin would be) that refuses features wider than ``limit[0]``."""
    from tlreg.advisor.errors import EstimatorError
    from tlreg.advisor.estimators import register, unregister

    limit = [0]

    @register("test_refuses_wide", paper="a test", cost="nothing")
    def refuses(features: np.ndarray, labels: np.ndarray, *, source_probs: object = None) -> float:
        if np.asarray(features).shape[1] > limit[0]:
            raise EstimatorError(f"test_refuses_wide: {np.asarray(features).shape[1]} features is too many")
        return float(np.asarray(features).std())

    yield limit
    unregister("test_refuses_wide")


def test_nothing_scored_is_no_pick_exit_3_and_a_failed_run(
    registry: Registry, image_folder: Path, tiny_image_models: list[str], refusing_estimator: list[int]
) -> None:
    """Every score '-' used to give a pick with P(best) 1.00 and a run recorded 'done'."""
    with pytest.raises(NoCandidatesError, match="No candidate could be scored: test_refuses_wide") as info:
        recommend(image_folder, registry=registry, workers=0, estimators=["test_refuses_wide"], bootstrap=5)
    assert info.value.exit_code == 3
    [run] = RunStore(registry.engine).list()
    assert run.status == "failed" and "NoCandidatesError" in run.failure


def test_a_candidate_no_estimator_scored_is_not_ranked(
    registry: Registry, image_folder: Path, tiny_image_models: list[str], refusing_estimator: list[int]
) -> None:
    dims = {ref: registry.get(ref).feature_dim for ref in tiny_image_models}
    narrow, wide = sorted(dims, key=dims.__getitem__)
    refusing_estimator[0] = dims[narrow]  # scores the narrow model only
    result = recommend(
        image_folder, registry=registry, workers=0, estimators=["test_refuses_wide"], bootstrap=5
    )
    assert [r.ref for r in result.ranking] == [narrow]
    assert [s["ref"] for s in result.skipped] == [wide] and "no estimator could score it" in result.skipped[
        0
    ]["reason"]
    assert result.ranking[0].p_best is None  # nothing to be more or less likely than
    assert wide not in {b.ref for b in result.baselines}


def test_one_sample_per_class_stops_before_any_forward_pass(
    registry: Registry, tmp_path: Path, tiny_image_models: list[str]
) -> None:
    singletons = write_image_folder(tmp_path / "singletons", classes=4, per_class=1)
    with pytest.raises(DatasetError, match="every class has 1 sample; at least 2 per class are needed"):
        recommend(singletons, registry=registry, workers=0)
    with pytest.raises(DatasetError, match="--per-class 2 or more"):
        recommend(write_image_folder(tmp_path / "three"), registry=registry, workers=0, per_class=1)
    assert RunStore(registry.engine).list() == [] and list(FeatureCache().entries()) == []


def test_identical_models_tie_and_share_the_confidence(
    registry: Registry, image_folder: Path, tmp_path: Path
) -> None:
    """Two copies of one model: a tie, said as such, not a win by the tie-break rule."""
    import shutil

    from helpers import save_tiny_timm

    first = save_tiny_timm(tmp_path / "twin-a", arch="test_resnet", num_classes=5, seed=0)
    shutil.copytree(first, tmp_path / "twin-b")
    refs = [registry.add_ref(str(p))[0].ref for p in (first, tmp_path / "twin-b")]
    result = recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=10)
    assert [r.rank for r in result.ranking] == [1, 1] and all(r.tied for r in result.ranking)
    assert [r.p_best for r in result.ranking] == [0.5, 0.5]
    assert all(r.rank_interval == (1, 1) for r in result.ranking)
    assert result.best.ref == sorted(refs)[0]  # same size: the name decides, and the answer says so
    assert "tie for first" in result.reason and "the cheaper model" in result.reason
    assert result.confidence["tied"] == sorted(refs)
