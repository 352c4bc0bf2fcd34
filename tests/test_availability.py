"""A quiet, honest offline mode: which models can be loaded now, said once; both offline variables;
and re-adding a registered Hub ref offline changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import put_in_hf_cache, save_tiny_timm
from tlreg.cli.main import cli
from tlreg.registry import Registry, config, hub
from tlreg.registry.errors import OfflineError

CATALOG_SIZE = 31
HUB = ("--models", "timm:*", "--models", "hf:*")


def run(*args: str):
    """The CLI with a terminal wide enough that a table row is one line (the marks are read per row)."""
    return CliRunner(env={"COLUMNS": "300"}).invoke(cli, list(args))


def cache_timm(hf_cache: Path, tmp_path: Path, name: str) -> str:
    """timm's Hub repository for ``name`` in the local cache (a tiny model's files): loadable offline."""
    return put_in_hf_cache(hf_cache, f"timm/{name}", save_tiny_timm(tmp_path / name, num_classes=1000))


def test_transformers_offline_is_honoured_like_hf_hub_offline(
    monkeypatch: pytest.MonkeyPatch, registry: Registry, hf_cache: Path
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert config.hf_offline() and not hub.online()  # no probe: the socket guard would fail it
    with pytest.raises(OfflineError, match=r"TRANSFORMERS_OFFLINE is set\. .*\(unset TRANSFORMERS_OFFLINE\)"):
        registry.add_ref("hf:tlreg-test/not-cached")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    assert not config.hf_offline()


def test_import_catalog_offline_says_how_many_cannot_be_downloaded_and_marks_them(
    hf_cache: Path, tmp_path: Path
) -> None:
    cache_timm(hf_cache, tmp_path, "resnet18.a1_in1k")
    result = run("registry", "import", "catalog")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"{CATALOG_SIZE} added, 0 updated (new revision), 0 already registered, 0 skipped"
    assert lines[1].startswith(f"{CATALOG_SIZE - 1} of the {CATALOG_SIZE} cannot be downloaded now")
    assert "HF_HUB_OFFLINE is set" in lines[1] and "lists the 1 that can be loaded now" in lines[1]
    assert len(lines) == 2
    marked = [
        line for line in result.stdout.splitlines() if "no: not in the local Hugging Face cache" in line
    ]
    assert len(marked) == CATALOG_SIZE - 1 and "timm:resnet18.a1_in1k" not in "".join(marked)

    doc = json.loads(run("registry", "import", "catalog", "--json").stdout)
    assert len(doc["unchanged"]) == CATALOG_SIZE and len(doc["unavailable"]) == CATALOG_SIZE - 1
    assert {u["reason"] for u in doc["unavailable"]} == {
        "not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    }
    available = json.loads(run("registry", "list", "--available", "--json").stdout)
    assert [(m["ref"], m["available"]) for m in available] == [("timm:resnet18.a1_in1k", True)]
    listed = run("registry", "list").stdout
    assert "loadable now" in listed and listed.count("no: not in the local") == CATALOG_SIZE - 1


def test_recommend_considers_what_it_can_load_and_says_what_it_left_out_in_one_line(
    registry: Registry, image_folder: Path, tiny_image_models: list[str], tmp_path: Path
) -> None:
    hub_refs = [r.ref for r in registry.import_from("catalog", filters=["resnet"]).added]  # none cached
    gone = save_tiny_timm(tmp_path / "gone", arch="test_resnet", num_classes=5, seed=7)
    gone_ref = registry.add_ref(str(gone))[0].ref
    shutil.rmtree(gone)
    result = run(
        "recommend", str(image_folder), "--no-baselines", "--bootstrap", "0", "--workers", "0", "--json"
    )
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.stderr  # no line per model
    [line] = [x for x in result.stderr.splitlines() if "cannot be loaded now" in x]
    n = len(hub_refs)
    assert n >= 3 and line == (
        f"warning: {n + 1} of {n + 3} candidate models cannot be loaded now and were left out: {n} not in "
        "the local Hugging Face cache and HF_HUB_OFFLINE is set; 1 its file or folder is gone; "
        "--include-unavailable lists and tries them."
    )
    doc = json.loads(result.stdout)
    assert sorted(r["ref"] for r in doc["ranking"]) == sorted(tiny_image_models)
    assert {s["ref"] for s in doc["skipped"]} == {gone_ref, *hub_refs}
    shown = json.loads(run("runs", "show", doc["run_id"], "--json").stdout)
    assert {c["ref"]: c["status"] for c in shown["candidates"]}[gone_ref] == "skipped"

    tried = run("recommend", str(image_folder), *HUB, "--include-unavailable", "--no-baselines")
    assert tried.exit_code == 3 and all(f"skipped {ref}:" in tried.stderr for ref in hub_refs)  # each tried
    none = run("recommend", str(image_folder), *HUB)
    assert none.exit_code == 3 and none.stderr.count("\n") == 1
    assert f"None of the candidate models can be loaded now: {n} not in the local" in none.stderr


def test_re_adding_a_registered_hub_ref_offline_changes_nothing(
    registry: Registry, hf_cache: Path, tmp_path: Path
) -> None:
    """Registered online at the Hub's newest commit; offline, the local cache holds an older one."""
    older = cache_timm(hf_cache, tmp_path, "test_resnet.r160_in1k")
    newest = "f" * 40
    registry.add_ref("timm:test_resnet.r160_in1k")
    registry.set_revision("timm:test_resnet.r160_in1k", newest)  # as a load online would pin it
    before = registry.events()
    record, status = registry.add_ref("timm:test_resnet.r160_in1k")
    assert (status, record.revision) == ("unchanged", newest) and registry.events() == before
    assert older != newest

    repo = hf_cache.parent / "repo"
    shutil.copytree(tmp_path / "test_resnet.r160_in1k", repo)
    sha = put_in_hf_cache(hf_cache, "tlreg-test/tiny", repo)
    registry.add_ref("hf:tlreg-test/tiny")
    registry.set_revision("hf:tlreg-test/tiny", newest)
    shutil.rmtree(hf_cache / "models--tlreg-test--tiny")  # not even in the cache any more
    assert run("registry", "add", "hf:tlreg-test/tiny", "--json").exit_code == 0
    assert registry.get("hf:tlreg-test/tiny").revision == newest
    put_in_hf_cache(hf_cache, "tlreg-test/tiny", repo)
    pinned, status = registry.add_ref(f"hf:tlreg-test/tiny@{sha}")  # an explicit commit is a request
    assert (status, pinned.revision) == ("updated", sha)
