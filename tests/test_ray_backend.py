"""The Ray backend on a real local Ray cluster: the same answer, cache and record as the local backend.

One cluster (2 CPUs) serves the whole module. Ray's own processes talk over loopback, the node's
address and Unix sockets; they are separate processes, so the in-process socket guard of conftest
does not apply to them, and this process only speaks to them through Ray's gRPC core.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import save_tiny_timm
from tlreg.advisor import recommend
from tlreg.advisor.cache import FeatureCache
from tlreg.registry import ModelSpec, Registry, RunStore
from tlreg.registry.errors import BadInputError, TlregError

ray = pytest.importorskip(
    "ray", reason='Ray backend tests skipped: ray is not installed (pip install "tlreg[ray]")'
)

from tlreg.advisor.embed.ray_driver import RayBackend, actor_plan  # noqa: E402  (needs ray)

FAST = {"workers": 0, "bootstrap": 5, "history": False}


class Notes:
    """A reporter that keeps what it was told (the Ray backend says how many jobs it sent out)."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.embedded: list[str] = []

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def done(self, label: str, *, seconds: float, samples_per_s: float | None) -> None:
        self.embedded.append(label)

    def note(self, message: str) -> None:
        self.notes.append(message)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray cluster with 2 CPUs for the module; token auth off (no ~/.ray/auth_token)."""
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def test_actor_plan_never_asks_for_what_the_cluster_lacks() -> None:
    assert actor_plan({"CPU": 16.0, "GPU": 4.0}, 10) == (4, {"num_gpus": 1, "num_cpus": 1}, "cuda")
    assert actor_plan({"CPU": 16.0, "GPU": 4.0}, 3) == (3, {"num_gpus": 1, "num_cpus": 1}, "cuda")
    assert actor_plan({"CPU": 1.0, "GPU": 2.0}, 5) == (2, {"num_gpus": 1, "num_cpus": 0}, "cuda")
    assert actor_plan({"CPU": 2.0}, 5) == (2, {"num_cpus": 1}, "cpu")  # no GPU: no GPU request
    assert actor_plan({"CPU": 8.0, "GPU": 0.0}, 3) == (3, {"num_cpus": 1}, "cpu")
    with pytest.raises(TlregError, match="neither a GPU nor a CPU"):
        actor_plan({"memory": 1e9}, 3)


def test_without_ray_the_error_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does when it is not installed
    with pytest.raises(BadInputError, match=r'pip install "tlreg\[ray\]"'):
        RayBackend()


@pytest.mark.slow
def test_the_command_starts_and_stops_its_own_local_cluster(
    image_folder: Path, tmp_path: Path, isolated_home: Path
) -> None:
    """``tlreg recommend --backend ray`` with no cluster running: a local one for the run, stdout only
    the JSON (Ray's logs stay out of it), no token file in the home directory, nothing left running."""
    folder = save_tiny_timm(tmp_path / "m", arch="test_resnet", num_classes=5)
    ref = Registry().add_ref(str(folder))[0].ref
    env = {**os.environ, "HOME": str(isolated_home), "RAY_AUTH_MODE": ""}
    env.pop("RAY_AUTH_MODE")
    exe = shutil.which("tlreg")
    done = subprocess.run(
        [
            exe,
            "recommend",
            str(image_folder),
            "--json",
            "--backend",
            "ray",
            "--no-baselines",
            "--workers",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    assert doc["ranking"][0]["ref"] == ref and doc["ranking"][0]["from_cache"] is False
    assert "started a local Ray cluster" in done.stderr
    assert not (isolated_home / ".ray" / "auth_token").exists()


def test_an_address_with_no_cluster_behind_it_is_one_clear_error(
    image_folder: Path, tiny_image_models: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if ray.is_initialized() or Path("/tmp/ray/ray_current_cluster").exists():
        pytest.skip("a Ray cluster is running on this machine: `auto` would find it")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(
        TlregError, match=r"Cannot connect to the Ray cluster at 'auto'.*--ray-address"
    ) as info:
        recommend(image_folder, backend="ray", ray_address="auto", workers=0)
    assert "\n" not in str(info.value)


def _models(registry: Registry, tmp_path: Path) -> tuple[list[str], list[str]]:
    """Two tiny timm models, and three that fail: one in the driver (its weights file is gone), two in
    the actors (a corrupt config.json; a Hub model that is not in the offline cache)."""
    refs = []
    for arch, seed in (("test_resnet", 0), ("test_vit", 1)):
        folder = save_tiny_timm(tmp_path / f"m-{arch}", arch=arch, num_classes=5, seed=seed)
        refs.append(registry.add_ref(str(folder))[0].ref)
    bad_config = save_tiny_timm(tmp_path / "m-bad-config", arch="test_resnet", num_classes=5, seed=3)
    no_weights = save_tiny_timm(tmp_path / "m-no-weights", arch="test_resnet", num_classes=5, seed=4)
    broken = [registry.add_ref(str(bad_config))[0].ref, registry.add_ref(str(no_weights))[0].ref]
    (bad_config / "config.json").write_text("{not json")
    (no_weights / "model.safetensors").unlink()
    offline = ModelSpec(
        ref="timm:test_efficientnet.r160_in1k",
        source="timm",
        architecture="test_efficientnet",
        modality="image",
        num_classes=1000,
        extra={"hf_hub_id": "timm/test_efficientnet.r160_in1k"},
    )
    broken.append(registry.add(offline)[0].ref)
    return refs, broken


def test_ray_gives_the_local_answer_cache_and_record(
    ray_cluster: None, registry: Registry, image_folder: Path, tmp_path: Path
) -> None:
    refs, broken = _models(registry, tmp_path)
    tried = {**FAST, "include_unavailable": True}  # the uncached Hub model is tried, and fails in an actor
    local = recommend(image_folder, registry=registry, cache=FeatureCache(tmp_path / "c-local"), **tried)
    notes = Notes()
    on_ray = recommend(
        image_folder,
        registry=registry,
        cache=FeatureCache(tmp_path / "c-ray"),
        reporter=notes,
        backend="ray",
        **tried,
    )
    # 10 jobs (5 models, each with its random-init baseline); one model failed in the driver already
    assert any("embedding 8 of 10 jobs on 2 CPU actor(s)" in n for n in notes.notes), notes.notes

    # the answer: same ranking, same scores, same baselines, the broken model skipped the same way
    assert [r.ref for r in on_ray.ranking] == [r.ref for r in local.ranking] and len(local.ranking) == 2
    assert set(r.ref for r in local.ranking) == set(refs)
    for a, b in zip(on_ray.ranking + on_ray.baselines, local.ranking + local.baselines, strict=True):
        assert a.ref == b.ref and a.revision == b.revision and set(a.scores) == set(b.scores)
        for name in b.scores:
            # NaN: not scored (the raw inputs have no source head for NCE), on both sides alike
            same = pytest.approx(b.scores[name], rel=1e-5, abs=1e-5, nan_ok=True)
            assert a.scores[name] == same, (a.ref, name)
        assert a.from_cache is False and a.feature_dim == b.feature_dim
    assert on_ray.skipped == local.skipped and sorted(s["ref"] for s in local.skipped) == sorted(broken)
    reasons = " ".join(s["reason"] for s in on_ray.skipped)  # errors rebuilt from the actors' messages
    assert "config.json" in reasons and "HF_HUB_OFFLINE" in reasons and "has no weights file" in reasons
    assert on_ray.best.ref == local.best.ref

    # the cache: the same entries (none for the broken model's baseline), the same features
    keys = {e.key: e for e in FeatureCache(tmp_path / "c-local").entries()}
    ray_keys = {e.key: e for e in FeatureCache(tmp_path / "c-ray").entries()}
    assert set(ray_keys) == set(keys) and len(keys) == 5  # 2 models, 2 random-init baselines, raw pixels
    for key, entry in keys.items():
        assert ray_keys[key].meta["label"] == entry.meta["label"]
        mine, theirs = (
            FeatureCache(tmp_path / "c-ray").load(key),
            FeatureCache(tmp_path / "c-local").load(key),
        )
        np.testing.assert_allclose(mine.features, theirs.features, rtol=1e-5, atol=1e-5)
        assert (mine.probs is None) == (theirs.probs is None)

    # the run record: complete, and the same rows as the local run's
    store = RunStore(registry.engine)
    run, candidates, scores, result = store.get(on_ray.run_id)
    _, local_candidates, local_scores, _ = store.get(local.run_id)
    assert run.status == "done" and run.options["backend"] == "ray" and result.best_ref == local.best.ref
    row = lambda c: (c.ref, c.revision, c.cache_key, c.baseline_of, c.status, c.reason, c.from_cache)  # noqa: E731
    assert [row(c) for c in candidates] == [row(c) for c in local_candidates]
    assert [(s.ref, s.estimator, s.error) for s in scores] == [
        (s.ref, s.estimator, s.error) for s in local_scores
    ]
    assert [r["ref"] for r in result.ranking] == [r.ref for r in local.ranking + local.baselines]

    # a second run on the models that worked is served from the cache: no job reaches the cluster
    notes = Notes()
    again = recommend(
        image_folder,
        models=refs,
        registry=registry,
        cache=FeatureCache(tmp_path / "c-ray"),
        reporter=notes,
        backend="ray",
        **FAST,
    )
    assert not any(n.startswith("Ray:") for n in notes.notes) and notes.embedded == []
    assert all(r.from_cache for r in again.ranking + again.baselines if r.baseline_of != "*")
    assert [r.ref for r in again.ranking] == [r.ref for r in on_ray.ranking]
    for a, b in zip(again.ranking, on_ray.ranking, strict=True):
        assert a.scores == pytest.approx(b.scores, rel=1e-12)
    assert RunStore(registry.engine).get(again.run_id)[0].status == "done"


def test_a_revision_found_by_an_actor_is_pinned_in_the_registry(
    ray_cluster: None, registry: Registry, image_folder: Path, tmp_path: Path
) -> None:
    """Weights edited in place: the actor loads the new ones, the driver records the new revision."""
    folder = save_tiny_timm(tmp_path / "m", arch="test_resnet", num_classes=5, seed=0)
    ref = registry.add_ref(str(folder))[0].ref
    old = registry.get(ref).revision
    save_tiny_timm(folder, arch="test_resnet", num_classes=5, seed=9)
    result = recommend(image_folder, registry=registry, backend="ray", baselines=False, **FAST)
    new = registry.get(ref).revision
    assert new != old and result.ranking[0].revision == new
    assert [(e.action, e.detail) for e in registry.events(ref)][-1] == ("revision", {"old": old, "new": new})
