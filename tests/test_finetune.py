"""``finetune``: every mode trains and reloads, resume replays exactly, outcomes are recorded, and bad
input (unknown run, other classes, out of memory, a full disk) stops cleanly."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import click
import numpy as np
import pytest
import safetensors.torch
import timm
import torch
from _finetune_helpers import Recorder, save_small_timm, save_text_model, val_items, write_topics
from click.testing import CliRunner
from helpers import write_image_folder
from tlreg.advisor import finetune, recommend
from tlreg.advisor.embed import forward as features_module  # cached.py imports it on a miss
from tlreg.advisor.errors import ClassMismatchError, DiskFullError, NoBlocksError, TrainingOutOfMemoryError
from tlreg.advisor.handoff.model import find_blocks, plan
from tlreg.advisor.handoff.saved_model import ModelToSave, load_finetuned, save_model
from tlreg.cli.finetune_cmd import finetune as finetune_cmd
from tlreg.cli.main import TlregGroup
from tlreg.cli.state import State
from tlreg.registry import OutcomeStore, Registry
from tlreg.registry.errors import BadInputError
from tlreg.registry.timm_models import timm_meta_model
from torch import nn

FAST = {"workers": 0, "batch_size": 8}


@pytest.fixture
def small_resnet(registry: Registry, tmp_path: Path) -> str:
    return registry.add_ref(str(save_small_timm(tmp_path / "resnet32")))[0].ref


@pytest.fixture
def small_vit(registry: Registry, tmp_path: Path) -> str:
    return registry.add_ref(str(save_small_timm(tmp_path / "vit32", arch="test_vit", seed=1)))[0].ref


@pytest.fixture
def run_id(registry: Registry, image_folder: Path, tiny_image_models: list[str]) -> str:
    return recommend(image_folder, registry=registry, workers=0, baselines=False).run_id


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(folder / "model.safetensors"))


# --- modes ----------------------------------------------------------------------------------------


def test_linear_mode_from_a_run_reuses_the_cached_features_and_is_recorded(
    registry: Registry, image_folder: Path, run_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_forward(*args: object, **kwargs: object) -> None:
        raise AssertionError("linear mode embedded the data although recommend had cached its features")

    monkeypatch.setattr(features_module, "embed_into", no_forward)
    out = tmp_path / "ft"
    result = finetune(run_id, out=out, registry=registry, mode="linear", epochs=20, **FAST)

    assert result.mode == "linear" and result.model_format == "linear" and result.run_id == run_id
    assert result.best_val_acc > 1 / 3 + 0.3  # 3 colour classes: chance is 1/3
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert {p.name for p in out.iterdir()} == {"model", "metrics.json", "command.txt", "checkpoint.pt"}
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(result.to_dict()))
    command = (out / "command.txt").read_text()
    assert f"tlreg finetune {run_id} --model {result.ref}" in command and "finetune('" in command

    info = json.loads((out / "model" / "tlreg_finetune.json").read_text())
    assert info["base_ref"] == result.ref and info["base_revision"] == result.revision
    assert info["classes"] == ["class0", "class1", "class2"]
    items, truth = val_items(result, image_folder)
    predicted = load_finetuned(out, registry=registry).predict(items)
    assert np.mean([p == t for p, t in zip(predicted, truth, strict=True)]) == pytest.approx(
        result.best_val_acc
    )

    (outcome,) = OutcomeStore(registry.engine).outcomes(run_id=run_id)
    assert (outcome.ref, outcome.revision, outcome.mode) == (result.ref, result.revision, "linear")
    assert outcome.fingerprint == result.data["fingerprint"] and outcome.id == result.outcome_id
    assert outcome.val_accuracy == pytest.approx(result.best_val_acc)
    assert outcome.budget["epochs"] == 20 and outcome.budget["epochs_run"] == len(result.history)
    assert outcome.output_dir == str(out.resolve())


@pytest.mark.parametrize(("mode", "fixture"), [("partial", "small_resnet"), ("full", "small_vit")])
def test_partial_and_full_train_the_backbone_and_reload_with_timm(
    registry: Registry,
    image_folder: Path,
    tmp_path: Path,
    mode: str,
    fixture: str,
    request: pytest.FixtureRequest,
) -> None:
    ref = request.getfixturevalue(fixture)
    start = timm.create_model(ref, pretrained=True)  # local-dir:FOLDER is timm's own syntax
    out = tmp_path / mode
    result = finetune(
        model=ref,
        data=image_folder,
        out=out,
        mode=mode,
        unfreeze=1,
        epochs=3,
        lr=1e-3,
        registry=registry,
        **FAST,
    )
    assert result.model_format == "timm" and result.best_val_acc > 1 / 3 + 0.3

    model = timm.create_model(f"local-dir:{out / 'model'}", pretrained=True).eval()
    assert model.num_classes == 3 and model.pretrained_cfg["label_names"] == ["class0", "class1", "class2"]
    items, truth = val_items(result, image_folder)
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model))
    from PIL import Image

    with torch.no_grad():
        logits = model(torch.stack([transform(Image.open(p).convert("RGB")) for p in items]))
    correct = [result.data["classes"][i] == t for i, t in zip(logits.argmax(1).tolist(), truth, strict=True)]
    assert np.mean(correct) == pytest.approx(result.best_val_acc)

    before, after = start.state_dict(), weights(out / "model")
    if mode == "partial":  # the stem and layer1..3 are frozen; layer4 (the last block) trained
        assert torch.equal(before["conv1.0.weight"], after["conv1.0.weight"])
        assert torch.equal(before["layer3.0.conv1.weight"], after["layer3.0.conv1.weight"])
        assert not torch.equal(before["layer4.0.conv1.weight"], after["layer4.0.conv1.weight"])
    else:
        assert not torch.equal(before["patch_embed.proj.weight"], after["patch_embed.proj.weight"])


def test_text_models_train_and_reload_as_a_registrable_folder(registry: Registry, tmp_path: Path) -> None:
    ref = registry.add_ref(str(save_text_model(tmp_path / "bert")))[0].ref
    data = write_topics(tmp_path / "topics.csv")
    out = tmp_path / "ft"
    result = finetune(
        model=ref, data=data, out=out, mode="full", epochs=6, lr=1e-3, registry=registry, **FAST
    )
    assert result.model_format == "backbone+head" and result.best_val_acc > 1 / 3 + 0.3
    import pandas as pd

    frame = pd.read_csv(data)
    rows = [int(i.removeprefix("row:")) for i in result.data["val_ids"]]
    predicted = load_finetuned(out / "model").predict(frame["text"].iloc[rows].tolist())
    assert np.mean(np.asarray(predicted) == frame["label"].iloc[rows].to_numpy()) == pytest.approx(
        result.best_val_acc
    )
    # the saved folder is a sentence-transformers folder: the registry takes it as a new candidate
    record, status = registry.add_ref(str(out / "model"))
    assert status == "added" and record.modality == "text" and record.preprocessing["pooling"] == "mean"


def test_transformers_image_models_keep_their_own_classifier(
    registry: Registry, image_folder: Path, tiny_vit_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForImageClassification

    ref = registry.add_ref(str(tiny_vit_dir))[0].ref
    out = tmp_path / "ft"
    result = finetune(
        model=ref, data=image_folder, out=out, mode="partial", epochs=2, lr=1e-3, registry=registry, **FAST
    )
    assert result.model_format == "transformers"
    model = AutoModelForImageClassification.from_pretrained(out / "model")
    assert model.config.id2label == {0: "class0", 1: "class1", 2: "class2"}
    items, truth = val_items(result, image_folder)
    predicted = load_finetuned(out).predict(items)
    assert np.mean([p == t for p, t in zip(predicted, truth, strict=True)]) == pytest.approx(
        result.best_val_acc
    )


# --- the block rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "first", "count"),
    [
        ("resnet18", "layer1", 4),
        ("vit_tiny_patch16_224", "blocks.0", 12),
        ("efficientnet_b0", "blocks.0", 7),
        ("convnext_atto", "stages.0", 4),
        ("swin_tiny_patch4_window7_224", "layers.0", 4),
        ("regnetx_002", "s1", 4),
    ],
)
def test_blocks_are_found_in_timm_architectures(arch: str, first: str, count: int) -> None:
    blocks = find_blocks(timm_meta_model(arch))
    assert blocks is not None and blocks[0][0] == first and len(blocks) == count


def test_blocks_are_found_in_transformers_models() -> None:
    from transformers import BertConfig, BertModel, ViTConfig, ViTForImageClassification

    bert = BertModel(
        BertConfig(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32)
    )
    assert [n for n, _ in find_blocks(bert)] == ["encoder.layer.0", "encoder.layer.1", "encoder.layer.2"]
    vit = ViTForImageClassification(
        ViTConfig(
            hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, image_size=32
        )
    )
    chosen = plan(vit, "partial", unfreeze=1)  # transformers 4 names them vit.encoder.layer, 5 vit.layers
    assert chosen.blocks in (["vit.encoder.layer.0", "vit.encoder.layer.1"], ["vit.layers.0", "vit.layers.1"])
    assert chosen.unfrozen_blocks == chosen.blocks[-1:]
    block0 = [n for n in chosen.trainable if n.startswith(f"{chosen.blocks[0]}.")]
    assert (
        "vit.layernorm.weight" in chosen.trainable and "classifier.weight" in chosen.trainable and not block0
    )


def test_a_model_without_blocks_is_refused_for_partial_mode() -> None:
    flat = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    assert find_blocks(flat) is None
    with pytest.raises(NoBlocksError, match=r"no block sequence.*--mode full"):
        plan(flat, "partial", ref="my-model")
    assert plan(flat, "full").trainable_params == sum(p.numel() for p in flat.parameters())


# --- resume -------------------------------------------------------------------------------------------


def test_an_interrupted_fine_tune_resumes_to_the_same_result(
    registry: Registry, image_folder: Path, small_vit: str, tmp_path: Path
) -> None:
    options = {
        "model": small_vit,
        "data": image_folder,
        "mode": "full",
        "epochs": 4,
        "lr": 1e-3,
        "patience": 0,
    }
    whole = finetune(out=tmp_path / "whole", registry=registry, **options, **FAST)

    def interrupt(stats) -> None:
        if stats.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(out=tmp_path / "cut", registry=registry, reporter=Recorder(interrupt), **options, **FAST)
    assert not (tmp_path / "cut" / "metrics.json").exists()
    with pytest.raises(BadInputError, match=r"already holds a fine-tune.*--resume"):
        finetune(out=tmp_path / "cut", registry=registry, **options, **FAST)
    with pytest.raises(BadInputError, match=r"--lr 0\.5 differs"):
        finetune(out=tmp_path / "cut", resume=True, lr=0.5, registry=registry)

    resumed = finetune(out=tmp_path / "cut", resume=True, registry=registry, workers=0)
    assert resumed.resumed_at_epoch == 2 and len(resumed.history) == 4
    strip = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert strip(resumed.history) == strip(whole.history)
    a, b = weights(tmp_path / "whole" / "model"), weights(tmp_path / "cut" / "model")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(OutcomeStore(registry.engine).outcomes(ref=small_vit)) == 2  # one per finished fine-tune

    reporter = Recorder()
    again = finetune(out=tmp_path / "cut", resume=True, registry=registry, reporter=reporter)
    assert again.to_dict() == json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert any("already finished" in n for n in reporter.notes) and reporter.epochs == []
    assert len(OutcomeStore(registry.engine).outcomes(ref=small_vit)) == 2


def test_resume_needs_a_checkpoint(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"no checkpoint\.pt to resume from"):
        finetune(out=tmp_path / "nothing", resume=True, registry=registry)


# --- out of memory, full disk -------------------------------------------------------------------------


def oom_above(limit: int):
    """A global forward pre-hook: any module fed a batch larger than ``limit`` runs 'out of memory'."""

    def hook(module: nn.Module, args: tuple) -> None:
        if args and isinstance(args[0], torch.Tensor) and args[0].ndim >= 2 and len(args[0]) > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate a batch of {len(args[0])}")

    return torch.nn.modules.module.register_module_forward_pre_hook(hook)


def test_out_of_memory_halves_the_batch_and_gives_the_same_model(
    registry: Registry, image_folder: Path, small_resnet: str, tmp_path: Path
) -> None:
    options = {"model": small_resnet, "data": image_folder, "epochs": 3, "batch_size": 16, "workers": 0}
    plain = finetune(out=tmp_path / "plain", registry=registry, **options)
    reporter = Recorder()
    handle = oom_above(4)
    try:
        squeezed = finetune(out=tmp_path / "oom", registry=registry, reporter=reporter, **options)
    finally:
        handle.remove()
    assert [n for n in reporter.notes if "out of memory" in n] == [
        "out of memory on cpu with batches of 15: halving the batch size to 8 (gradients are accumulated, "
        "so each step still sees 16 samples)",
        "out of memory on cpu with batches of 8: halving the batch size to 4 (gradients are accumulated, "
        "so each step still sees 16 samples)",
    ]
    assert [h["micro_batch"] for h in squeezed.history] == [4, 4, 4]
    assert [h["val_acc"] for h in squeezed.history] == [h["val_acc"] for h in plain.history]
    a = safetensors.torch.load_file(str(tmp_path / "plain" / "model" / "head.safetensors"))
    b = safetensors.torch.load_file(str(tmp_path / "oom" / "model" / "head.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)

    handle = oom_above(0)
    try:
        with pytest.raises(TrainingOutOfMemoryError, match="even with one sample per batch"):
            finetune(out=tmp_path / "hopeless", registry=registry, **options)
    finally:
        handle.remove()


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch):
    """``arm(folder)``: from then on, writes to files under ``folder`` hit a full disk part-way."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell which file a descriptor writes to")
    real_write = os.write
    armed: list[str] = []

    def write(fd: int, data: bytes) -> int:
        if armed and os.readlink(f"/proc/self/fd/{fd}").startswith(armed[0]):
            if len(data) > 1:
                return real_write(fd, memoryview(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)

    def arm(folder: Path) -> None:
        armed.append(str(folder))

    arm.free_space = armed.clear  # type: ignore[attr-defined]
    return arm


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_full_disk_leaves_the_previous_best_and_checkpoint_whole(
    registry: Registry, image_folder: Path, small_resnet: str, tmp_path: Path, full_disk
) -> None:
    out = tmp_path / "ft"
    saved: dict[str, bytes] = {}

    def fill_disk(stats) -> None:
        if stats.epoch == 1:
            saved.update(snapshot(out))
            full_disk(out)

    options = {"model": small_resnet, "data": image_folder, "epochs": 4, "patience": 0, "workers": 0}
    with pytest.raises(DiskFullError, match=r"No space left.*nothing was overwritten.*--resume") as caught:
        finetune(out=out, registry=registry, reporter=Recorder(fill_disk), **options)
    assert caught.value.exit_code == 1 and isinstance(caught.value, OSError)
    assert snapshot(out) == saved  # the epoch-1 model and checkpoint, byte for byte, and no temporary file


def test_a_full_disk_before_the_first_checkpoint_says_to_run_again_not_to_resume(
    registry: Registry, image_folder: Path, small_resnet: str, tmp_path: Path, full_disk
) -> None:
    out = tmp_path / "ft"
    options = {"model": small_resnet, "data": image_folder, "epochs": 2, "workers": 0}
    full_disk(out)
    with pytest.raises(DiskFullError, match="No space left") as caught:
        finetune(out=out, registry=registry, **options)
    assert "--resume" not in str(caught.value) and "run the same command again" in str(caught.value)
    assert not (out / "checkpoint.pt").exists()
    full_disk.free_space()
    result = finetune(out=out, registry=registry, **options)  # what the message said to do
    assert len(result.history) == 2


def test_a_full_disk_during_a_model_save_keeps_the_saved_model(
    registry: Registry, small_vit: str, tmp_path: Path, full_disk
) -> None:
    extractor = registry.load(small_vit)
    spec = ModelToSave(
        extractor, nn.Linear(extractor.feature_dim, 2), ["a", "b"], "full", small_vit, None, {}, "image"
    )
    save_model(tmp_path / "model", spec, epoch=1, val_acc=0.5)
    before = snapshot(tmp_path)
    full_disk(tmp_path)
    with torch.no_grad():
        spec.head.weight.add_(1.0)
    with pytest.raises(OSError) as caught:
        save_model(tmp_path / "model", spec, epoch=2, val_acc=0.9)
    assert caught.value.errno == errno.ENOSPC
    assert snapshot(tmp_path) == before


# --- a run's sample, and what the outputs let others read --------------------------------------------


def test_a_run_on_a_sample_fine_tunes_on_that_sample_from_the_cache_and_links_the_outcome(
    registry: Registry, tiny_image_models: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_image_folder(tmp_path / "data", classes=3, per_class=6)
    run = recommend(
        data, registry=registry, models=tiny_image_models[:1], max_samples=9, workers=0, baselines=False
    )

    def no_forward(*args: object, **kwargs: object) -> None:
        raise AssertionError("linear mode embedded the data although recommend had cached the run's sample")

    with monkeypatch.context() as patched:
        patched.setattr(features_module, "embed_into", no_forward)
        reporter = Recorder()
        result = finetune(
            run.run_id, out=tmp_path / "ft", registry=registry, reporter=reporter, mode="linear", epochs=2
        )
    assert result.data["samples"] == 9 and result.data["fingerprint"] == run.data["fingerprint"]
    [note] = [n for n in reporter.notes if "sample" in n]
    assert f"run {run.run_id}'s sample: 9 of the 18 items" in note and "--full-data" in note
    (outcome,) = OutcomeStore(registry.engine).outcomes(run_id=run.run_id)
    assert outcome.fingerprint == run.data["fingerprint"]  # the run and its outcome name the same data
    again = finetune(out=tmp_path / "ft", resume=True, registry=registry)  # resumes on the same sample
    assert again.data == result.data

    args = [run.run_id, "--out", str(tmp_path / "all"), "--full-data", "--epochs", "2", "--workers", "0"]
    whole = CliRunner().invoke(finetune_cmd, [*args, "--json"], obj=State())
    assert whole.exit_code == 0, whole.output
    doc = json.loads(whole.stdout)
    assert doc["data"]["samples"] == 18 and doc["data"]["fingerprint"] != run.data["fingerprint"]
    assert "--full-data" in (tmp_path / "all" / "command.txt").read_text()
    assert len(OutcomeStore(registry.engine).outcomes(run_id=run.run_id)) == 2


def test_fine_tune_outputs_follow_the_umask(
    registry: Registry, image_folder: Path, small_resnet: str, tmp_path: Path
) -> None:
    old = os.umask(0o022)
    try:
        finetune(
            model=small_resnet, data=image_folder, out=tmp_path / "ft", registry=registry, epochs=1, workers=0
        )
    finally:
        os.umask(old)
    for path in (tmp_path / "ft").rglob("*"):
        expected = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


# --- bad input ------------------------------------------------------------------------------------------


def test_data_with_other_classes_than_the_run_is_refused(
    run_id: str, registry: Registry, tmp_path: Path
) -> None:
    other = write_image_folder(tmp_path / "other", classes=3)
    (other / "class2").rename(other / "zebra")
    with pytest.raises(
        ClassMismatchError, match="not in the run: zebra; missing from the data: class2"
    ) as caught:
        finetune(run_id, data=other, out=tmp_path / "ft", registry=registry)
    assert caught.value.exit_code == 2


@click.group(cls=TlregGroup)
@click.pass_context
def tlreg(ctx: click.Context) -> None:
    """The ``tlreg`` group as cli/main.py builds it (its error handling), with the finetune command."""
    ctx.obj = State()


tlreg.add_command(finetune_cmd)


def test_the_cli_runs_and_fails_with_one_line(run_id: str, image_folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        finetune_cmd,
        [run_id, "--out", str(tmp_path / "ft"), "--epochs", "2", "--workers", "0", "--json"],
        obj=State(),
    )
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc == json.loads((tmp_path / "ft" / "metrics.json").read_text()) and doc["run_id"] == run_id
    assert "epoch 1: train loss" in ok.stderr and "epoch 2: train loss" in ok.stderr

    table = runner.invoke(
        finetune_cmd, [run_id, "--out", str(tmp_path / "t"), "--epochs", "1"], obj=State(quiet=True)
    )
    assert table.exit_code == 0 and "Best validation accuracy" in table.stdout and table.stderr == ""

    typo = run_id[:-1] + ("0" if run_id[-1] != "0" else "1")
    for args, needle in [
        ([typo, "--out", str(tmp_path / "x")], run_id),
        (["--out", str(tmp_path / "x")], "give a RUN_ID"),
        ([run_id, "--out", str(tmp_path / "x"), "--data", str(tmp_path / "nowhere")], "nowhere"),
    ]:
        bad = runner.invoke(tlreg, ["finetune", *args])
        assert bad.exit_code == 2, bad.output
        assert needle in bad.stderr and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_the_reload_hint_is_the_one_the_readme_gives(run_id: str, tmp_path: Path) -> None:
    """After a linear fine-tune the CLI named ``tlreg.advisor.handoff.finetuned.load_finetuned('OUT/model')``
    while the README says ``tlreg.advisor.handoff.load_finetuned("OUT")``; both now say the README's."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert 'tlreg.advisor.handoff.load_finetuned("OUT")' in readme
    out = tmp_path / "ft"
    table = CliRunner().invoke(
        finetune_cmd,
        [run_id, "--out", str(out), "--mode", "linear", "--epochs", "1", "--workers", "0"],
        obj=State(quiet=True),
    )
    assert table.exit_code == 0, table.output
    assert f'(reload: tlreg.advisor.handoff.load_finetuned("{out}"))' in table.stdout
    import tlreg.advisor.handoff

    assert tlreg.advisor.handoff.load_finetuned(str(out)).classes  # the hinted call works as printed
