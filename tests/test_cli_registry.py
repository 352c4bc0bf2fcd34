"""The ``tlreg`` command line: registry commands, doctor, errors as one line, and the installed script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import put_in_hf_cache
from tlreg.cli.main import cli


def run(*args: str, **kwargs: object):
    return CliRunner().invoke(cli, list(args), **kwargs)


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("tlreg, version ")


def test_import_list_show_tag_remove_history_round_trip(hf_cache: Path, tiny_timm_dir: Path) -> None:
    put_in_hf_cache(hf_cache, "tlreg-test/tiny-timm", tiny_timm_dir)
    added = run("registry", "add", "hf:tlreg-test/tiny-timm", "--tag", "candidate", "--json")
    assert added.exit_code == 0, added.output
    doc = json.loads(added.stdout)
    assert doc["status"] == "added" and "candidate" in doc["model"]["tags"]

    listed = json.loads(run("registry", "list", "--json").stdout)
    assert [m["ref"] for m in listed] == ["hf:tlreg-test/tiny-timm"]
    shown = json.loads(run("registry", "show", "hf:tlreg-test/tiny-timm", "--json").stdout)
    assert shown["revision"] == listed[0]["revision"]

    assert run("registry", "tag", "hf:tlreg-test/tiny-timm", "prod", "--remove", "candidate").exit_code == 0
    assert json.loads(run("registry", "show", "hf:tlreg-test/tiny-timm", "--json").stdout)["tags"] == [
        "prod",
        "timm",
    ]
    assert run("registry", "remove", "hf:tlreg-test/tiny-timm").exit_code == 0
    history = json.loads(run("registry", "history", "hf:tlreg-test/tiny-timm", "--json").stdout)
    assert [e["action"] for e in history] == ["add", "tag", "untag", "remove"]


def test_tables_go_to_stdout_and_notes_to_stderr() -> None:
    result = run("registry", "import", "catalog", "--filter", "resnet18")
    assert result.exit_code == 0
    assert "timm:resnet18.a1_in1k" in result.stdout
    assert "1 added" in result.stderr and "added" not in result.stdout
    quiet = run("--quiet", "registry", "list")
    assert quiet.stderr == "" and "timm:resnet18.a1_in1k" in quiet.stdout


def test_import_json_lists_skips() -> None:
    result = run("registry", "import", "timm", "--filter", "test_vit*", "--limit", "2", "--json")
    doc = json.loads(result.stdout)
    assert len(doc["added"]) == 2 and doc["skipped"] == []


def test_an_unknown_ref_is_one_line_with_suggestions_and_exit_2() -> None:
    run("registry", "import", "catalog")
    result = run("registry", "show", "timm:resnet5.a1_in1k")
    assert result.exit_code == 2
    assert (
        result.stderr.count("\n") == 1
        and "Did you mean" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_debug_shows_the_traceback() -> None:
    result = run("--debug", "registry", "show", "timm:nothing")
    assert result.exit_code != 0 and result.exception is not None


def test_a_torch_warning_names_the_weights_file(tmp_path: Path) -> None:
    """torch's "Detected pickle protocol 4 in the checkpoint" came out in Python's form, naming no file."""
    import timm
    import torch

    path = tmp_path / "old-format.pt"
    state = timm.create_model("test_resnet", num_classes=3).state_dict()
    torch.save(state, path, _use_new_zipfile_serialization=False, pickle_protocol=4)
    result = run("registry", "add", str(path), "--arch", "test_resnet")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    warning, error = result.stderr.splitlines()
    assert warning.startswith(f"warning: {path}: ") and "pickle protocol 4" in warning
    assert error.startswith(f"Error: {path}: ") and not re.search(r"\.py:\d+", result.stderr)


def test_offline_add_names_hf_hub_offline_and_the_cache(hf_cache: Path) -> None:
    result = run("registry", "add", "hf:org/not-cached")
    assert result.exit_code == 1 and "HF_HUB_OFFLINE" in result.stderr and str(hf_cache) in result.stderr


def test_db_option_and_envvar(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    assert run("--db", url, "registry", "import", "catalog", "--filter", "resnet18").exit_code == 0
    assert json.loads(run("registry", "list", "--json", env={"TLREG_DB": url}).stdout)
    assert json.loads(run("registry", "list", "--json").stdout) == []


def test_doctor_reports_locations_and_offline_state() -> None:
    doc = json.loads(run("doctor", "--json").stdout)
    assert doc["device"] == "cpu" or doc["device"] in ("cuda", "mps")
    assert doc["hub"].startswith("offline (HF_HUB_OFFLINE")
    assert doc["database"].startswith("sqlite:///") and "feature cache" in doc


@pytest.mark.slow
def test_the_installed_entry_point_runs(isolated_home: Path) -> None:
    exe = shutil.which("tlreg")
    assert exe, "the tlreg console script is not installed"
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [exe, "registry", "import", "catalog", "--filter", "resnet18", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == ["timm:resnet18.a1_in1k"]
    bad = subprocess.run(
        [exe, "registry", "show", "nope"], capture_output=True, text=True, env=env, timeout=300
    )
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
