"""The ``tlreg`` command line: registry commands, doctor, errors as one line, and the installed script."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import put_in_hf_cache, save_tiny_timm
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


@pytest.mark.slow
def test_debug_shows_the_traceback(isolated_home: Path) -> None:
    """``--debug`` and ``TLREG_DEBUG=1`` (read in one place, ``config.debug``) let the error out as
    Python's traceback, naming the exception; without them, one line."""
    result = run("--debug", "registry", "show", "timm:nothing")
    assert result.exit_code != 0 and result.exception is not None
    exe = shutil.which("tlreg")
    assert exe, "the tlreg console script is not installed"
    env = {**os.environ, "NO_COLOR": "1"}
    for flag, extra_env in ((["--debug"], {}), ([], {"TLREG_DEBUG": "1"}), ([], {"TLREG_DEBUG": "on"})):
        done = subprocess.run(
            [exe, *flag, "registry", "show", "timm:nothing"],
            capture_output=True,
            text=True,
            env={**env, **extra_env},
            timeout=300,
        )
        assert done.returncode != 0 and done.stdout == "", (flag, extra_env)
        assert done.stderr.startswith("Traceback (most recent call last):"), done.stderr[-500:]
        assert "UnknownModelError" in done.stderr.splitlines()[-1] and "timm:nothing" in done.stderr
    plain = subprocess.run(
        [exe, "registry", "show", "timm:nothing"], capture_output=True, text=True, env=env, timeout=300
    )
    assert plain.returncode == 2 and "Traceback" not in plain.stderr and plain.stderr.count("\n") == 1


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
    assert doc["database"].startswith("sqlite:///") and "feature_cache" in doc  # --json keys are snake_case


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


def test_add_refuses_what_is_not_weights_in_one_line_with_exit_2(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("hello world\n")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    folder = save_tiny_timm(tmp_path / "timm-dir")
    (folder / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(8192))
    cases = [
        (text, ["--arch", "resnet18"], text),
        (empty, ["--arch", "resnet18"], empty),
        (folder, [], folder / "model.safetensors"),
    ]
    if Path("/etc/passwd").is_file():
        cases.append((Path("/etc/passwd"), ["--arch", "resnet18"], Path("/etc/passwd")))
    for path, options, named in cases:
        result = run("registry", "add", str(path), *options)
        assert result.exit_code == 2, result.output
        assert (
            result.stderr.startswith(f"Error: {named}: not a weights file (")
            and result.stderr.count("\n") == 1
        )
    assert json.loads(run("registry", "list", "--json").stdout) == []
    assert json.loads(run("registry", "history", "--json").stdout) == []


def test_a_corrupt_database_is_one_line_naming_it_and_the_fix(tmp_path: Path) -> None:
    noise = tmp_path / "noise.db"
    noise.write_bytes(np.random.default_rng(0).bytes(20_000))
    result = run("registry", "list", env={"TLREG_DB": f"sqlite:///{noise}"})
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert str(noise) in result.stderr and "not a SQLite database" in result.stderr
    assert "restore it from a backup" in result.stderr and "sqlalche.me" not in result.stderr


def test_a_read_only_database_is_one_line_without_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "reg.db"
    assert run("--db", f"sqlite:///{db}", "registry", "list").exit_code == 0
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    result = run("--db", read_only, "registry", "import", "catalog", "--filter", "resnet18")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert str(db) in result.stderr and "read-only" in result.stderr and "permissions" in result.stderr
    assert not any(word in result.stderr for word in ("INSERT", "[SQL", "parameters", "timm:resnet18"))
    debug = run("--debug", "--db", read_only, "registry", "import", "catalog", "--filter", "resnet18")
    assert debug.exit_code != 0 and debug.exception is not None
    assert not (tmp_path / "file:").exists(), "a sqlite URI made a folder named 'file:'"


def test_an_unexpected_database_error_is_still_one_line_without_sql(tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    assert run("--db", f"sqlite:///{db}", "registry", "list").exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TRIGGER frozen BEFORE INSERT ON model BEGIN SELECT RAISE(ABORT, 'frozen'); END")
    result = run("--db", f"sqlite:///{db}", "registry", "import", "catalog", "--filter", "resnet18")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert (
        "frozen" in result.stderr and "INSERT" not in result.stderr and "timm:resnet18" not in result.stderr
    )
