"""The CLI's ORM-free reader (``tlreg.registry.sqlite_read``) prints exactly what the ORM path prints.

Every command runs twice in fresh interpreters, as from the shell: with the reader (the default) and
with ``TLREG_FAST_READ=0`` (SQLAlchemy, as every other command). Stdout, stderr and the exit code
must be identical, and the first run must not have imported the ORM at all (else the comparison
would compare the ORM with itself). The registry and the runs are written by tlreg's own code.
"""

from __future__ import annotations

import difflib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import save_tiny_timm
from tlreg.advisor import recommend
from tlreg.advisor.audit.records import list_runs
from tlreg.registry import ModelRecord, ModelSpec, OutcomeStore, Registry, RunStore
from tlreg.registry.config import db_url
from tlreg.registry.db import SCHEMA_HEAD, make_engine
from tlreg.registry.models import Alias, Event
from tlreg.registry.outcomes import FinetuneOutcome
from tlreg.registry.runs import Run, RunCandidate, RunResult, RunScore
from tlreg.registry.sqlite_read import SqliteReader

ORM = ("sqlalchemy", "sqlmodel", "pydantic", "alembic")

PROBE = """
import contextlib, io, json, sys
from tlreg.cli.main import cli
done = []
for args in json.loads(sys.argv[1]):
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(args, prog_name="tlreg")
        except SystemExit as exc:
            code = exc.code or 0
    loaded = [m for m in ORM if m in sys.modules]
    done.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(), "loaded": loaded})
print(json.dumps(done))
""".replace("ORM", repr(ORM))


def probe(commands: list[list[str]], **env: str) -> list[dict]:
    """Run ``commands`` one after another in one fresh interpreter: each one's output, and the ORM
    modules imported by then."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", **env},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_both_ways(commands: list[list[str]], *, fast: bool = True, **env: str) -> list[dict]:
    """Each command's output with the reader and without it, asserted identical; with ``fast``, the
    reader answered every one (no ORM imported). Returns the outputs."""
    quick, slow = probe(commands, TLREG_FAST_READ="1", **env), probe(commands, TLREG_FAST_READ="0", **env)
    assert "sqlalchemy" in slow[0].pop("loaded")  # the ORM path really ran
    for args, a, b in zip(commands, quick, slow, strict=True):
        loaded = a.pop("loaded")
        assert not fast or loaded == [], f"tlreg {' '.join(args)}: the reader left it to the ORM ({loaded})"
        b.pop("loaded", None)
        assert a == b, f"tlreg {' '.join(args)}: the reader and the ORM differ:\n{_diff(a, b)}"
    return quick


def _diff(fast: dict, orm: dict) -> str:
    lines = []
    for key in fast:
        a, b = str(fast[key]).splitlines(), str(orm[key]).splitlines()
        lines += difflib.unified_diff(b, a, f"{key} (ORM)", f"{key} (reader)", n=1, lineterm="")
    return "\n".join(lines)


def _spec(ref: str, **fields: object) -> ModelSpec:
    source = {"timm": "timm", "hf": "hf", "pkg": "bundled", "local-dir": "local"}[ref.partition(":")[0]]
    return ModelSpec(**{"ref": ref, "source": source, "architecture": "x", "modality": "image", **fields})


def _models(registry: Registry) -> None:
    """Models of every shape a listing shows, added by the registry itself."""
    outcome = OutcomeStore(registry.engine).record(
        FinetuneOutcome(ref="timm:resnet18.a1_in1k", fingerprint="f" * 64, mode="partial", val_accuracy=0.81)
    )
    specs = [
        _spec(
            "timm:resnet18.a1_in1k",
            architecture="resnet18",
            revision="a" * 40,
            task="image-classification",
            num_classes=1000,
            params=11_689_512,
            feature_dim=512,
            preprocessing={"input_size": [3, 224, 224], "mean": [0.485, 0.456, 0.406], "crop_pct": 0.95},
            license="apache-2.0",
            pretrain_dataset="imagenet-1k",
            imagenet_top1=71.49,
            extra={"hf_hub_id": "timm/resnet18.a1_in1k", "note": "ünïcode [b] {x}"},
            tags=["timm", "imagenet-1k", "small"],
        ),
        _spec("hf:acme/giant", revision="b" * 40, params=3 * 2**31, feature_dim=8192, tags=["giant"]),
        _spec(
            "hf:sentence-transformers/all-MiniLM-L6-v2",
            architecture="BertModel",
            revision="c" * 40,
            modality="text",
            params=22_713_216,
            feature_dim=384,
            tags=["text", "small"],
        ),
        _spec("pkg:dup", imagenet_top1=0.5),
        _spec("timm:dup", params=0),
        _spec("timm:gone"),
        _spec(
            "local-dir:/nowhere/ft/model",
            revision="d" * 64,
            num_classes=3,
            params=11_178_051,
            origin="finetune",
            extra={
                "path": "/nowhere/ft/model",
                "finetune": {"format": "timm", "mode": "partial", "val_acc": 0.8},
            },
            parent_ref="timm:resnet18.a1_in1k",
            parent_revision="a" * 40,
            finetune_run_id="20261101-100000-abcdef",
            finetune_outcome_id=outcome.id,
            tags=["finetuned", "local", "small"],
        ),
        _spec("timm:orphan", parent_ref="timm:gone"),
    ]
    for spec in specs:
        registry.add(spec)
    registry.tag("timm:resnet18.a1_in1k", add=["a-later-tag"])  # tags are listed sorted, not as added
    registry.set_alias("champion", "timm:resnet18.a1_in1k")
    registry.set_alias("pinned", "hf:acme/giant")
    registry.set_alias("dangling", "timm:gone")
    registry.remove("timm:gone")
    registry.add(specs[1].model_copy(update={"revision": "e" * 40}))  # @pinned's entry moves on


REGISTRY_COMMANDS = [
    ["registry", "list"],
    ["--quiet", "registry", "list"],
    ["registry", "list", "--json"],
    ["registry", "list", "resnet*"],
    ["registry", "list", "timm:*", "--json"],
    ["registry", "list", "*/*"],
    ["registry", "list", "nothing*"],
    ["registry", "list", "--modality", "text"],
    ["registry", "list", "--modality", "image", "--json"],
    ["registry", "list", "--source", "timm"],
    ["registry", "list", "--source", "hf", "--modality", "image"],
    ["registry", "list", "--tag", "small"],
    ["registry", "list", "--tag", "small", "--tag", "timm", "--json"],
    ["registry", "list", "--tag", "nope"],
    ["registry", "list", "--max-params", "3e7"],
    ["registry", "list", "--max-params", "7e9", "--json"],
    ["registry", "list", "*", "--modality", "image", "--tag", "small", "--max-params", "2e7"],
    ["registry", "show", "timm:resnet18.a1_in1k"],
    ["registry", "show", "timm:resnet18.a1_in1k", "--json"],
    ["registry", "show", "resnet18.a1_in1k"],
    ["registry", "show", "RESNET18.A1_IN1K", "--json"],  # SQLite's LIKE, as the ORM's query
    ["registry", "show", "hf:acme/giant@main", "--json"],
    ["registry", "show", "@champion"],
    ["registry", "show", "local-dir:/nowhere/ft/model", "--json"],
    ["registry", "show", "timm:orphan", "--json"],
    ["registry", "show", "orphan"],
]

#: what only the ORM answers (an error, a warning): the same output all the same
REGISTRY_FALLBACKS = [
    ["registry", "show", "nothing-like-it"],
    ["registry", "show", "dup"],
    ["registry", "show", "timm:gone"],
    ["registry", "show", "@dangling"],
    ["registry", "show", "@pinned", "--json"],
    ["registry", "show", "@no-such-alias"],
    ["registry", "list", "--available", "--json"],
    ["registry", "list", "--tree"],
]


def test_registry_listings_read_the_same_both_ways(registry: Registry) -> None:
    _models(registry)
    offline = same_both_ways(REGISTRY_COMMANDS)  # offline, as every test: a "loadable now" column
    online = same_both_ways(REGISTRY_COMMANDS[:3], HF_HUB_OFFLINE="0")

    listed, as_json = offline[0], json.loads(offline[2]["stdout"])
    assert listed["code"] == 0 and listed["stderr"] == "7 models\n" and "loadable now" in listed["stdout"]
    assert "loadable now" not in online[0]["stdout"] and online[0]["stderr"] == "7 models\n"
    assert [m["ref"] for m in as_json][:2] == ["hf:acme/giant", "hf:sentence-transformers/all-MiniLM-L6-v2"]
    assert list(as_json[0]) == list(ModelRecord.model_fields) and as_json[0]["params"] == 3 * 2**31
    counts = {tuple(args): out["stderr"] for args, out in zip(REGISTRY_COMMANDS, offline, strict=True)}
    assert counts[("registry", "list", "--tag", "small")] == "3 models\n"
    assert counts[("registry", "list", "--source", "hf", "--modality", "image")] == "1 models\n"
    assert counts[("registry", "list", "--max-params", "3e7")] == "4 models\n"
    shown = json.loads(offline[18]["stdout"])
    assert (
        shown["aliases"] == ["@champion"]
        and shown["family"]["children"][0]["outcome"]["val_accuracy"] == 0.81
    )
    assert json.loads(offline[24]["stdout"])["family"]["parent"]["removed"].startswith("by ")

    errors = same_both_ways(REGISTRY_FALLBACKS, fast=False)
    assert [e["code"] for e in errors[:4]] == [2, 2, 2, 2] and "warning: @pinned" in errors[4]["stderr"]


def _runs(registry: Registry, image_folder: Path, tmp_path: Path) -> list[str]:
    """Two real recommendations, a fine-tune outcome of the first, aliases moved around them, and then
    a run that failed; the ids of the second, the first and the failed run."""
    a = registry.add_ref(str(save_tiny_timm(tmp_path / "a", arch="test_resnet", num_classes=3)))[0].ref
    b = registry.add_ref(str(save_tiny_timm(tmp_path / "b", arch="test_vit", num_classes=3, seed=1)))[0].ref
    registry.set_alias("champion", a)
    registry.set_alias("scratch", b)
    first = recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=0)
    OutcomeStore(registry.engine).record(
        FinetuneOutcome(
            run_id=first.run_id, ref=first.best.ref, fingerprint="f", val_accuracy=0.9, budget={"epochs": 2}
        )
    )
    registry.set_alias("champion", b)
    registry.remove_alias("scratch")
    time.sleep(0.01)
    second = recommend(image_folder, registry=registry, workers=0, bootstrap=5, per_class=3)
    store = RunStore(registry.engine)
    store.start(Run(id="20200101-000000-failed", data_path=str(image_folder), n_samples=0))
    store.fail("20200101-000000-failed", "interrupted: the data went away")
    return [second.run_id, first.run_id, "20200101-000000-failed"]


def test_run_listings_read_the_same_both_ways(registry: Registry, image_folder: Path, tmp_path: Path) -> None:
    newest, older, failed = _runs(registry, image_folder, tmp_path)
    # --since is inclusive: the second recommendation's own time (stored to the microsecond) keeps it
    boundary = next(s.created_at for s in list_runs(registry=registry) if s.id == newest)
    commands = [
        ["runs", "list"],
        ["runs", "list", "--json"],
        ["runs", "list", "--limit", "1"],
        ["runs", "list", "--since", boundary, "--json"],
        ["runs", "list", "--since", "2026-01-01", "--limit", "2"],
        ["runs", "list", "--since", "7d", "--json"],
        ["runs", "list", "--since", "2999-01-01"],
        ["runs", "show", newest],
        ["runs", "show", newest, "--json"],
        ["runs", "show", older[:18]],
        ["runs", "show", older, "--json"],
        ["runs", "show", failed, "--json"],
        ["registry", "list", "--json"],
    ]
    out = same_both_ways(commands)
    assert [r["id"] for r in json.loads(out[1]["stdout"])] == [failed, newest, older]  # newest first
    assert [r["id"] for r in json.loads(out[3]["stdout"])] == [failed, newest]
    assert json.loads(out[5]["stdout"])[1]["pick"] and "interrupted" in out[0]["stdout"]
    record = json.loads(out[10]["stdout"])
    assert record["finetunes"][0]["budget"] == {"epochs": 2} and record["aliases"]["scratch"]["ref"]
    assert set(json.loads(out[8]["stdout"])["aliases"]) == {"champion"}

    errors = same_both_ways(
        [["runs", "show", "nope"], ["runs", "show", "2"], ["runs", "list", "--since", "someday"]], fast=False
    )
    assert [e["code"] for e in errors] == [2, 2, 2]


def test_the_tables_read_are_the_models_columns_in_order(registry: Registry) -> None:
    """The reader keeps a table's column order; each model's fields must be in that order (a model
    entry's: see sqlite_read._record), or ``--json`` and ``model_dump`` would list them otherwise."""
    _models(registry)
    [fast] = SqliteReader.for_url(db_url()).models(pattern="resnet18*")
    assert list(vars(fast)) == list(ModelRecord.model_fields)
    with sqlite3.connect(Path(db_url().removeprefix("sqlite:///"))) as conn:
        for model in (Run, RunCandidate, RunScore, RunResult, FinetuneOutcome, Alias, Event):
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({model.__tablename__})")]
            assert columns == list(model.model_fields), model.__tablename__


def test_a_registry_not_at_the_head_is_migrated_as_before(tmp_path: Path) -> None:
    from alembic import command
    from tlreg.registry.db import _alembic_config

    path = tmp_path / "old.db"
    with make_engine(f"sqlite:///{path}").begin() as conn:
        command.upgrade(_alembic_config(conn), "0004")
    out = same_both_ways([["registry", "list", "--json"]], fast=False, TLREG_DB=f"sqlite:///{path}")
    assert json.loads(out[0]["stdout"]) == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(SCHEMA_HEAD,)]
    assert SqliteReader.for_url(f"sqlite:///{path}").models() == []  # at the head now: read here


def test_a_missing_registry_is_created_as_before(tmp_path: Path) -> None:
    path = tmp_path / "new" / "reg.db"
    assert SqliteReader.for_url(f"sqlite:///{path}") is None
    [done] = probe([["registry", "list", "--json"]], TLREG_DB=f"sqlite:///{path}")
    assert (done["code"], done["stdout"]) == (0, "[]\n") and path.is_file()


def test_a_damaged_registry_is_the_same_one_line_error(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.db"
    written = Registry(f"sqlite:///{damaged}")
    written.add(_spec("timm:x"))
    written.engine.dispose()  # closed: its write-ahead log is in the file
    damaged.write_bytes(damaged.read_bytes()[:3000])
    noise = tmp_path / "noise.db"
    noise.write_bytes(os.urandom(20_000))
    commands = [
        ["registry", "list"],
        ["runs", "list", "--json"],
        ["registry", "show", "x"],
        ["runs", "show", "x"],
    ]
    for path in (damaged, noise):
        for out in same_both_ways(commands, fast=False, TLREG_DB=f"sqlite:///{path}"):
            assert out["code"] == 1 and out["stdout"] == "" and out["stderr"].count("\n") == 1, out
            assert out["stderr"].startswith(f"Error: The registry database {path} ")


def test_urls_the_reader_takes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "reg.db"
    path.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for url in (f"sqlite:///{path}", "sqlite:///reg.db", "sqlite:///~/reg.db", f"sqlite+pysqlite:///{path}"):
        assert SqliteReader.for_url(url).path.resolve() == path.resolve(), url
    for url in (
        "postgresql://u@127.0.0.1/db",
        "sqlite://",
        "sqlite:///:memory:",
        f"sqlite:///file:{path}?mode=ro&uri=true",
        f"sqlite:///{tmp_path}/re%67.db",  # SQLAlchemy decodes %67: left to it
        f"sqlite:///{tmp_path}/missing.db",
    ):
        assert SqliteReader.for_url(url) is None, url
    monkeypatch.setenv("TLREG_FAST_READ", "0")
    assert SqliteReader.for_url(f"sqlite:///{path}") is None


WRITER = """
import sys, time
from sqlalchemy import update
from tlreg.registry import Registry
from tlreg.registry.db import write_session
from tlreg.registry.models import ModelEntry
with write_session(Registry(sys.argv[1]).engine) as session:
    session.exec(update(ModelEntry).values(architecture="half-written"))
    session.flush()
    print("holding", flush=True)
    time.sleep(60)
"""


def test_the_reader_reads_a_snapshot_while_another_process_writes(registry: Registry) -> None:
    _models(registry)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db_url()], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "holding"  # a write transaction is open, uncommitted
        started = time.monotonic()
        [quick] = probe([["registry", "list", "--json"]])
        assert time.monotonic() - started < 30 and quick["loaded"] == []
        listed = json.loads(quick["stdout"])
        assert len(listed) == 7 and "half-written" not in {m["architecture"] for m in listed}
    finally:
        writer.kill()
        writer.wait()


def test_rows_dump_their_fields_in_declared_order_in_every_process(registry: Registry) -> None:
    """SQLModel dumps a loaded row in the order SQLAlchemy set its attributes, which string hashing
    changed from one process to the next: ``--json`` and exports listed keys in a different order."""
    _models(registry)
    store, run_id = RunStore(registry.engine), "20261101-100000-aaaaaa"
    store.start(Run(id=run_id, data_path="/data"))
    store.add(RunCandidate(run_id=run_id, ref="timm:dup", revision="r", cache_key="k", seconds=1.0))
    store.finish(RunResult(run_id=run_id, best_ref="timm:dup"))
    candidate = [k for k in RunCandidate.model_fields if k not in ("id", "run_id")] + ["scores"]
    for seed in "123456":
        history, shown = probe(
            [["registry", "history", "--json"], ["runs", "show", "20261101", "--json"]],
            PYTHONHASHSEED=seed,
            TLREG_FAST_READ="0",
        )
        assert list(json.loads(history["stdout"])[0]) == list(Event.model_fields), seed
        assert list(json.loads(shown["stdout"])["candidates"][0]) == candidate, seed


def test_a_listing_leaves_the_database_folder_as_it_found_it(registry: Registry) -> None:
    _models(registry)
    registry.engine.dispose()  # closed: no -wal or -shm file beside it
    folder = Path(db_url().removeprefix("sqlite:///")).parent
    before = sorted(p.name for p in folder.iterdir())
    assert [done["loaded"] for done in probe([["registry", "list"], ["runs", "list"]])] == [[], []]
    assert sorted(p.name for p in folder.iterdir()) == before
