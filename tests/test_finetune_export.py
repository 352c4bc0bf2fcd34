"""``finetune(export=...)``: self-contained scripts for the user's own trainer, each run for a step."""

from __future__ import annotations

import csv
import os
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from _finetune_helpers import save_small_timm, save_text_model, write_topics
from click.testing import CliRunner
from tlreg.advisor import finetune
from tlreg.advisor.handoff.export import TEMPLATES, render
from tlreg.cli.finetune_cmd import finetune as finetune_cmd
from tlreg.cli.state import State
from tlreg.registry import Registry
from tlreg.registry.errors import BadInputError


@pytest.fixture
def image_model(registry: Registry, tmp_path: Path) -> str:
    return registry.add_ref(str(save_small_timm(tmp_path / "resnet32")))[0].ref


@pytest.fixture
def text_model(registry: Registry, tmp_path: Path) -> str:
    return registry.add_ref(str(save_text_model(tmp_path / "bert")))[0].ref


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_each_template_renders_to_python_with_its_settings(kind: str) -> None:
    text = render(kind, {"classes": ["a", "b"], "lr": 0.5}, header="first line\nsecond line")
    assert text.startswith("# first line\n# second line\n")
    assert "DEFAULTS: dict[str, Any] = {'classes': ['a', 'b'], 'lr': 0.5}" in text
    compile(text, kind, "exec")
    assert "import tlreg" not in text and "from tlreg" not in text


def test_the_timm_export_writes_train_py_arguments_and_tlregs_split(
    registry: Registry, image_folder: Path, image_model: str, tmp_path: Path
) -> None:
    out = tmp_path / "timm"
    result = finetune(
        model=image_model, data=image_folder, out=out, export="timm", lr=3e-4, epochs=7, registry=registry
    )
    assert result.history == [] and str(out / "train_timm.py") in result.exported

    args = shlex.split((out / "timm_train_args.txt").read_text().splitlines()[-1])
    value = lambda flag, n=1: args[args.index(flag) + 1 : args.index(flag) + 1 + n]  # noqa: E731
    assert args[:2] == ["python", "train.py"] and "--pretrained" in args
    assert value("--model") == [f"local-dir:{out / 'backbone'}"] and value("--num-classes") == ["3"]
    assert value("--input-size", 3) == ["3", "32", "32"] and value("--mean", 3) == ["0.5", "0.5", "0.5"]
    assert value("--lr") == ["0.0003"] and value("--epochs") == ["7"] and value("--opt") == ["adamw"]
    assert value("--class-map") == [str(out / "data" / "class_map.txt")]
    assert (out / "data" / "class_map.txt").read_text().split() == ["class0", "class1", "class2"]

    train, val = rows(out / "data" / "train.csv"), rows(out / "data" / "val.csv")
    assert len(train) + len(val) == 18 and len(val) == 3
    for split, listed in (("train", train), ("validation", val)):
        links = sorted((out / "data" / split).rglob("*.png"))
        assert sorted(str(p.resolve()) for p in links) == sorted(r["image"] for r in listed)
        assert all(link.parent.name == Path(link.resolve()).parent.name for link in links)
    # the same split as tlreg's own fine-tune with the same seed
    trained = finetune(model=image_model, data=image_folder, out=tmp_path / "ft", epochs=1, registry=registry)
    assert sorted(r["image"] for r in val) == sorted(
        str((image_folder / i).resolve()) for i in trained.data["val_ids"]
    )

    backbone = timm.create_model(f"local-dir:{out / 'backbone'}", pretrained=True)
    original = registry.load(image_model).module.state_dict()
    assert all(torch.equal(v, original[k]) for k, v in backbone.state_dict().items())
    assert backbone.num_classes == 0  # the source head is dropped; scripts build a new one


def test_the_timm_export_is_for_timm_models(registry: Registry, text_model: str, tmp_path: Path) -> None:
    data = write_topics(tmp_path / "topics.csv")
    with pytest.raises(BadInputError, match="transformers model, not a timm one"):
        finetune(model=text_model, data=data, out=tmp_path / "x", export="timm", registry=registry)


def test_the_cli_lists_what_it_exported(
    registry: Registry, image_folder: Path, image_model: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        finetune_cmd,
        [
            "--model",
            image_model,
            "--data",
            str(image_folder),
            "--out",
            str(tmp_path / "e"),
            "--export",
            "script",
        ],
        obj=State(),
    )
    assert result.exit_code == 0, result.output
    assert "Exported" in result.stdout and str(tmp_path / "e" / "train.py") in result.stdout


def export(registry: Registry, tmp_path: Path, name: str, ref: str, data: Path, kind: str, mode: str) -> Path:
    finetune(model=ref, data=data, out=tmp_path / name, export=kind, mode=mode, unfreeze=1, registry=registry)
    return tmp_path / name / {"script": "train.py", "timm": "train_timm.py", "hf": "train_hf.py"}[kind]


@pytest.mark.slow
def test_each_kind_of_export_trains_one_step_in_a_subprocess(
    registry: Registry, image_folder: Path, image_model: str, text_model: str, tmp_path: Path
) -> None:
    topics = write_topics(tmp_path / "topics.csv")
    scripts = {
        "script": export(registry, tmp_path, "script", image_model, image_folder, "script", "partial"),
        "timm": export(registry, tmp_path, "timm", image_model, image_folder, "timm", "full"),
        "hf": export(registry, tmp_path, "hf", text_model, topics, "hf", "partial"),
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    running = {
        name: subprocess.Popen(  # from another folder, isolated (-I): the scripts stand alone
            [sys.executable, "-I", str(script), "--max-steps", "1", *(["--cpu"] if name == "hf" else [])],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, script in scripts.items()
    }
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}:\n{stdout}\n{stderr[-3000:]}"
        assert "epoch 1" in stdout or "eval_accuracy" in stdout, f"{name}: {stdout}"

    assert (tmp_path / "script" / "output" / "best.pt").is_file()
    trained = timm.create_model(f"local-dir:{tmp_path / 'timm' / 'output'}", pretrained=True)
    assert trained.num_classes == 3 and trained.pretrained_cfg["label_names"] == [
        "class0",
        "class1",
        "class2",
    ]
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tmp_path / "hf" / "output" / "best")
    assert sorted(config.id2label.values()) == ["money", "pets", "sport"]


def test_the_scripts_other_model_families_train_one_step(
    registry: Registry,
    image_folder: Path,
    image_model: str,
    text_model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The text branch of train.py and a timm model under the HF Trainer (transformers' timm wrapper),
    run in this process (``runpy``) to spare two interpreter start-ups."""
    topics = write_topics(tmp_path / "topics.csv")
    text_script = export(registry, tmp_path, "text", text_model, topics, "script", "full")
    timm_hf_script = export(registry, tmp_path, "timm-hf", image_model, image_folder, "hf", "linear")
    for script, extra in ((text_script, []), (timm_hf_script, ["--cpu"])):
        monkeypatch.setattr(sys, "argv", [str(script), "--max-steps", "1", *extra])
        runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    assert "epoch 1/" in printed and "eval_accuracy" in printed
    assert (tmp_path / "text" / "output" / "best.json").is_file()
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(tmp_path / "timm-hf" / "output" / "best")
    head = dict(model.named_parameters())["timm_model.fc.weight"]
    assert model.config.num_labels == 3 and head.shape == (3, 96)
    start = safetensors.torch.load_file(str(tmp_path / "timm-hf" / "backbone" / "model.safetensors"))
    stem = dict(model.named_parameters())["timm_model.conv1.0.weight"]
    assert torch.equal(stem.detach(), start["conv1.0.weight"])  # linear mode: the backbone stayed frozen
