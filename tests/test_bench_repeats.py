"""The builds' seed-noise job (``zoo_build.repeat_finetune``, run by both benchmarks' builds) on a real
tiny model: saved as the build saves its zoo (``timm.models.save_for_hf``), registered through tlreg's
registry, fine-tuned for a few steps. A repeat is cached atomically and read back on a resumed build
without training again; another seed is another file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import zoo_build as zb  # noqa: E402
import zoo_train  # noqa: E402
from tlreg.advisor.data import fingerprint, load_dataset, sample  # noqa: E402
from tlreg.registry import Registry  # noqa: E402

BUDGET = zoo_train.Budget(steps=3, batch_size=8, lr=1e-3, weight_decay=0.0, warmup=1)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Registry, str, zb.Target]:
    model, args = zoo_train.create("resnet", num_classes=10, seed=0)
    folder = zoo_train.save_model(
        model, tmp_path / "models" / "resnet-x", input_px=32, model_args=args, meta={"source": "x"}
    )
    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    record, _ = registry.add_ref(str(folder))
    rng = np.random.default_rng(0)
    splits = []
    for split, n in (("train", 24), ("test", 12)):
        x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        y = np.arange(n) % 3
        ds = sample(load_dataset(zb.image_folder(tmp_path / "target" / split, ["a", "b", "c"], x, y)))
        splits += [ds, fingerprint(ds)]
    train, train_fp, test, test_fp = splits
    return registry, record.ref, zb.Target("tiny", train, test, train_fp, test_fp)


def test_a_repeat_is_a_real_fine_tune_cached_once_per_seed(tmp_path: Path, setup) -> None:
    registry, ref, target = setup
    work = tmp_path / "work"

    def repeat(extra: int, watch: zb.Stopwatch) -> dict:
        return zb.repeat_finetune(
            work, registry, ref, "resnet-x", target, BUDGET, seed=100 + extra, extra=extra, watch=watch
        )

    first_watch = zb.Stopwatch()
    first = repeat(1, first_watch)
    assert 0.0 <= first["accuracy"] <= 1.0 and first["extra"] == 1 and first["seed"] == 101
    assert first["model"] == "resnet-x" and first["target"] == "tiny"
    assert "finetune" in first_watch.spent  # trained here
    path = zb.result_file(work, target, "resnet-x", "repeat1", BUDGET)
    assert path.is_file() and not list(path.parent.glob("*.tmp*"))  # nothing half-written beside it

    resumed = zb.Stopwatch()
    assert repeat(1, resumed) == first and resumed.spent == {}  # a resumed build reads, does not train
    other = repeat(2, zb.Stopwatch())
    assert other["extra"] == 2 and zb.result_file(work, target, "resnet-x", "repeat2", BUDGET).is_file()
    # a different budget is a different result: the cache never hands one budget's accuracy to another
    assert zb.result_file(work, target, "resnet-x", "repeat1", zoo_train.Budget(4, 8, 1e-3, 0.0, 1)) != path


def test_a_builds_ledger_outlives_changes_of_the_seed_noise_knobs_only(tmp_path: Path) -> None:
    """The time ledger is one per configuration, but the seed-noise stage only adds work after every
    other stage: changing its knobs keeps the earlier stages' seconds (they were lost twice before)."""
    import dataclasses

    import zoo_run

    cfg = zb.BuildConfig()
    same = zoo_run.Ledger.for_build(tmp_path, cfg).path
    for knob in zoo_run.NOISE_KNOBS:
        assert knob in cfg.to_dict()
    noisier = dataclasses.replace(cfg, repeat_top=5, extra_seeds=(1, 2), noisy_pp=1.0, truth_sd_pp=0.5)
    assert zoo_run.Ledger.for_build(tmp_path, noisier).path == same
    other_budget = dataclasses.replace(cfg, finetune=zoo_train.Budget(60, 32, 1e-3, 0.01, 10))
    assert zoo_run.Ledger.for_build(tmp_path, other_budget).path != same
    assert zoo_run.Ledger.for_build(tmp_path, zb.quick_config()).path != same
    # the Hub-like build's ledger too: its sd rule (added while a build was under way) keeps its key
    import hub_build

    hub = hub_build.HubConfig()
    assert all(knob in hub.to_dict() for knob in zoo_run.NOISE_KNOBS)
    hub_ledger = zoo_run.Ledger.for_build(tmp_path, hub).path
    for changed in (dict(truth_sd_pp=None), dict(max_seeds=4), dict(noisy_seeds=6)):
        assert zoo_run.Ledger.for_build(tmp_path, dataclasses.replace(hub, **changed)).path == hub_ledger
    assert zoo_run.Ledger.for_build(tmp_path, cfg, "ledger-plan").path != same


def test_the_benchmarks_json_writes_are_atomic_and_keep_their_formats(tmp_path: Path) -> None:
    """bench/jsonio.write_json, every benchmark document's one writer: the committed documents keep
    their layouts (indented in insertion order, sorted for the builds' caches, compact for per-image
    predictions), and a document that cannot be written leaves neither a file nor a temporary."""
    import json

    import jsonio

    doc = {"b": [1, 2], "a": {"x": 0.5}}
    path = tmp_path / "deep" / "doc.json"
    jsonio.write_json(path, doc)
    assert path.read_text() == json.dumps(doc, indent=1) + "\n" and jsonio.read_json(path) == doc
    jsonio.write_json(path, doc, sort_keys=True)
    assert path.read_text().index('"a"') < path.read_text().index('"b"')
    jsonio.write_json(path, doc, compact=True)
    assert path.read_text() == '{"b":[1,2],"a":{"x":0.5}}\n'
    zoo_train.write_json(path, doc)  # the builds' caches: sorted keys
    assert path.read_text() == json.dumps(doc, indent=1, sort_keys=True) + "\n"

    with pytest.raises(TypeError):
        jsonio.write_json(tmp_path / "bad.json", {"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["doc.json"]


def test_the_builds_train_in_the_channels_last_layout_and_save_as_before(tmp_path: Path) -> None:
    """zoo_train.train/predict hand every convolution a channels-last batch (about 1.7x faster on CPU,
    bench/layout.py); the weights keep their layout, so the build's save_for_hf (safetensors) still
    saves them; with the layout off (the measurement's other side) the same seed trains alike."""
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(24, 3, 32, 32)), dtype=torch.float32)
    y = torch.arange(24) % 10
    budget = zoo_train.Budget(steps=10, batch_size=8, lr=1e-3, weight_decay=0.0, warmup=1)
    runs = {}
    for channels_last in (True, False):
        model, args = zoo_train.create("resnet", num_classes=10, seed=0)
        seen: list[bool] = []
        for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
            conv.register_forward_pre_hook(
                # (a 1x1 map is contiguous in both layouts: only larger maps tell)
                lambda _m, a, seen=seen: (
                    seen.append(a[0].is_contiguous(memory_format=torch.channels_last))
                    if a[0].shape[-1] > 1
                    else None
                )
            )
        loss = zoo_train.train(model, x, y, budget, seed=0, channels_last=channels_last)
        zoo_train.predict(model, x, channels_last=channels_last)
        assert seen and all(s == channels_last for s in seen)
        assert all(p.is_contiguous() for p in model.parameters())
        runs[channels_last] = loss
        if channels_last:
            zoo_train.save_model(model, tmp_path / "saved", input_px=32, model_args=args, meta={})
    assert runs[True] == pytest.approx(runs[False], rel=1e-3)
