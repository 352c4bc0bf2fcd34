"""``tlreg recommend`` and ``tlreg cache`` from the command line: outputs, exit codes, pipelines."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from PIL import Image
from tlreg.advisor import recommend as api_recommend
from tlreg.advisor.cache import FeatureCache
from tlreg.cli.main import cli
from tlreg.cli.output import note
from tlreg.registry import Registry


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_table_on_stdout_notes_on_stderr(image_folder: Path, tiny_image_models: list[str]) -> None:
    result = run("recommend", str(image_folder), "--workers", "0")
    assert result.exit_code == 0, result.output
    assert "Recommended:" in result.stdout and "Run id:" in result.stdout
    assert all(ref in result.stdout for ref in tiny_image_models)
    assert "embedded" in result.stderr and "embedded" not in result.stdout


def test_json_is_the_python_api_document(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    result = run(
        "recommend",
        str(image_folder),
        "--json",
        "--workers",
        "0",
        "--estimator",
        "logme",
        "--estimator",
        "knn",
    )
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    api = api_recommend(image_folder, registry=registry, estimators=["logme", "knn"], workers=0).to_dict()
    assert set(doc) == set(api)
    assert [r["ref"] for r in doc["ranking"]] == [r["ref"] for r in api["ranking"]]
    assert doc["ranking"][0]["scores"] == pytest.approx(api["ranking"][0]["scores"])
    assert doc["best"]["ref"] == doc["ranking"][0]["ref"] and doc["run_id"] != api["run_id"]


def test_exit_codes(image_folder: Path, tmp_path: Path) -> None:
    no_models = run("recommend", str(image_folder))
    assert no_models.exit_code == 3 and "tlreg registry import bundled" in no_models.stderr
    missing = run("recommend", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and str(tmp_path / "nowhere") in missing.stderr
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr and missing.stdout == ""
    bad_estimator = run("recommend", str(image_folder), "--estimator", "logmee")
    assert bad_estimator.exit_code == 2


def test_cache_list_prune_clear(image_folder: Path, tiny_image_models: list[str]) -> None:
    assert run("recommend", str(image_folder), "--workers", "0", "--no-baselines").exit_code == 0
    entries = json.loads(run("cache", "list", "--json").stdout)
    assert len(entries) == 2 and {e["ref"] for e in entries} == set(tiny_image_models)
    assert run("cache", "prune").exit_code == 2
    assert run("cache", "prune", "--older-than", "1").exit_code == 0
    assert len(json.loads(run("cache", "list", "--json").stdout)) == 2
    assert run("cache", "clear", "--yes").exit_code == 0
    assert json.loads(run("cache", "list", "--json").stdout) == []


@pytest.mark.slow
def test_installed_command_in_a_pipeline(image_folder: Path, tiny_image_models: list[str]) -> None:
    exe = shutil.which("tlreg")
    done = subprocess.run(
        [exe, "recommend", str(image_folder), "--json", "--workers", "0", "--no-baselines"],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["best"]["ref"] in tiny_image_models
    assert "\x1b[" not in done.stderr  # no colour, no progress bar: stderr is not a terminal


WHERE = re.compile(r"\.py:\d+")  # Python's form: "path/cache.py:86: CacheCorruptWarning: ..."


def _corrupt_one_entry() -> Path:
    entry = sorted(FeatureCache().entries(), key=lambda e: e.key)[0]
    (entry.path / "features.npy").write_bytes(b"not the array that was written")
    return entry.path


def _warning_lines(stderr: str) -> list[str]:
    assert not WHERE.search(stderr) and "warnings.warn(" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def test_python_warnings_are_one_line_naming_the_file(
    image_folder: Path, tiny_image_models: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CacheCorruptWarning came out as Python's two lines (file:line and the source line), and Pillow's
    DecompressionBombWarning never said which image."""
    args = ["recommend", str(image_folder), "--workers", "0", "--no-baselines", "--bootstrap", "0"]
    assert run(*args).exit_code == 0
    folder = _corrupt_one_entry()
    again = run(*args)
    assert again.exit_code == 0, again.output
    [line] = [w for w in _warning_lines(again.stderr) if "corrupt" in w]
    assert str(folder) in line and "is corrupt" in line and "recomputing it" in line

    # Pillow's own limit, lowered below a 200x200 image (not below the 160x160 crop of the models)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30_000)
    big = image_folder / "class1" / "big.png"
    Image.new("RGB", (200, 200), (0, 200, 0)).save(big)
    bomb = run(*args)
    assert bomb.exit_code == 0, bomb.output
    [line] = [w for w in _warning_lines(bomb.stderr) if "decompression" in w]
    assert str(big) in line and "40,000 pixels" in line and "decompression-bomb limit of 30,000" in line
    quiet = run("--quiet", *args)  # quiet is for progress and notes: warnings still show
    assert quiet.exit_code == 0 and "embedded" not in quiet.stderr
    assert quiet.stderr.splitlines() == _warning_lines(quiet.stderr) and "decompression" in quiet.stderr


def test_notes_are_printed_as_given_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Notes went through rich markup: "[b]" vanished and "[/data]" raised MarkupError."""
    message = "warning: /data/[b]/class [/data] :smile: " + "x" * 200
    note(message)
    assert capsys.readouterr().err == message + "\n"


@pytest.mark.slow
def test_installed_command_prints_warnings_as_one_line(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    api_recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=0)
    folder = _corrupt_one_entry()
    done = subprocess.run(
        [
            shutil.which("tlreg"),
            "recommend",
            str(image_folder),
            "--workers",
            "0",
            "--no-baselines",
            "--bootstrap",
            "0",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    [line] = [w for w in _warning_lines(done.stderr) if "corrupt" in w]
    assert line.startswith(f"warning: Feature cache entry {folder} is corrupt")


def test_the_flags_defaults_are_the_python_apis() -> None:
    """Every flag of ``recommend`` and ``finetune`` defaults to what the Python API does without it
    (both read ``advisor/defaults.py``), and ``--backend`` offers exactly the backends there are."""
    from tlreg.advisor import defaults
    from tlreg.advisor.embed.backends import TABLE
    from tlreg.advisor.handoff.inputs import Options as FinetuneOptions
    from tlreg.advisor.recommend import Options
    from tlreg.cli.finetune_cmd import finetune
    from tlreg.cli.recommend_cmd import recommend

    api, ctx = Options(), click.Context(recommend)
    unset = getattr(click.core, "UNSET", None)  # click 8.3+: an option without a default
    checked = []
    for param in recommend.params:
        default = param.get_default(ctx)
        if param.name not in vars(api) or param.multiple or default is None or default is unset:
            continue
        expected = (
            defaults.DEVICE if param.name == "device" and api.device is None else getattr(api, param.name)
        )
        assert default == expected, param.name
        checked.append(param.name)
    assert {"seed", "batch_size", "bootstrap", "backend", "baselines", "history", "device"} <= set(checked)
    assert set(next(p for p in recommend.params if p.name == "backend").type.choices) == set(TABLE)

    tuned = FinetuneOptions.resolve({})
    flags = {p.name: p for p in finetune.params}
    assert (
        list(flags["mode"].type.choices) == list(defaults.MODE_DEFAULTS)
        and tuned.mode == defaults.FINETUNE_MODE
    )
    assert list(flags["export"].type.choices) == list(defaults.EXPORTS)
    for name in ("unfreeze", "batch_size", "val_split", "seed", "patience", "weight_decay"):
        assert f"[default: {getattr(tuned, name)}]" in flags[name].help, name
    assert f"linear {tuned.epochs}" in flags["epochs"].help and f"linear {tuned.lr:g}" in flags["lr"].help
