"""diff, export and verify of recorded runs (Python twins and CLI), and the MLflow export."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from helpers import save_tiny_timm
from PIL import Image
from sqlmodel import Session
from test_runs import invoke
from tlreg.advisor import recommend
from tlreg.advisor.audit.compare import diff_runs, export_run, verify_run
from tlreg.advisor.audit.records import load_run
from tlreg.advisor.audit.verify import NOT_REPRODUCED, close
from tlreg.advisor.cache import FeatureCache
from tlreg.advisor.defaults import AGGREGATION
from tlreg.advisor.rank import DEFAULT_ESTIMATORS
from tlreg.advisor.verdicts import VERDICT_ESTIMATORS
from tlreg.registry import Registry, RunStore
from tlreg.registry.errors import BadInputError
from tlreg.registry.runs import Run, RunCandidate, RunResult, RunScore

FAST = {"workers": 0, "baselines": False, "bootstrap": 0}

DEFAULT = list(DEFAULT_ESTIMATORS["classification"])
SCORED = [*DEFAULT, *VERDICT_ESTIMATORS["classification"]]  # ranked by, and judged by


@pytest.fixture
def models(registry: Registry, tmp_path: Path) -> dict[str, tuple[str, Path]]:
    """Three tiny timm models saved as folders (so a test can replace one's weights)."""
    out = {}
    for name, arch, seed in (
        ("resnet", "test_resnet", 0),
        ("vit", "test_vit", 1),
        ("effnet", "test_efficientnet", 2),
    ):
        folder = save_tiny_timm(tmp_path / f"m-{name}", arch=arch, num_classes=3, seed=seed)
        out[name] = (registry.add_ref(str(folder))[0].ref, folder)
    return out


def test_close_is_relative_with_an_absolute_floor() -> None:
    assert close(1.0, 1.0 + 5e-7) and not close(1.0, 1.0 + 5e-6)
    assert close(1e6, 1e6 + 0.5) and not close(1e6, 1e6 + 5)
    assert close(0.0, 5e-10) and not close(0.0, 5e-9)
    assert close(None, None) and close(None, float("nan")) and not close(None, 0.0)


def test_diff_says_what_changed(registry: Registry, image_folder: Path, models: dict) -> None:
    resnet, vit, effnet = (models[k][0] for k in ("resnet", "vit", "effnet"))
    a = recommend(image_folder, registry=registry, models=[resnet, vit], **FAST)
    same = diff_runs(
        a.run_id, recommend(image_folder, registry=registry, models=[resnet, vit], **FAST).run_id
    )
    assert not same.changed and same.data["fingerprint"]["same"] and not same.added and not same.removed
    assert all(s["delta"] == 0.0 for s in same.scores) and len(same.scores) == 2 * len(SCORED)

    Image.new("RGB", (24, 24), (250, 0, 0)).save(image_folder / "class0" / "000.png")  # new content
    shutil.copy(image_folder / "class1" / "000.png", image_folder / "class1" / "new.png")  # a new item
    save_tiny_timm(models["resnet"][1], arch="test_resnet", num_classes=3, seed=9)  # new weights
    b = recommend(image_folder, registry=registry, models=[resnet, effnet], **FAST)

    d = diff_runs(a.run_id[:18], b.run_id, registry=registry)
    assert d.changed and not d.data["fingerprint"]["same"]
    assert d.data["sample_ids"]["added"] == ["class1/new.png"] and d.data["sample_ids"]["n_removed"] == 0
    assert d.added == [effnet] and d.removed == [vit]
    [rev] = d.revisions
    assert rev["ref"] == resnet and rev["a"] == {r.ref: r.revision for r in a.ranking}[resnet] != rev["b"]
    recorded = {(s.ref, s.estimator): s.value for s in RunStore(registry.engine).get(b.run_id)[2]}
    before = {(s.ref, s.estimator): s.value for s in RunStore(registry.engine).get(a.run_id)[2]}
    assert {(s["ref"], s["estimator"]) for s in d.scores} == {(resnet, e) for e in SCORED}
    for s in d.scores:
        key = (s["ref"], s["estimator"])
        assert (
            s["a"] == before[key] and s["b"] == recorded[key] and s["delta"] == pytest.approx(s["b"] - s["a"])
        )
    assert d.pick == {"a": a.best.ref, "b": b.best.ref, "changed": a.best.ref != b.best.ref}

    shown = invoke("runs", "diff", a.run_id, b.run_id)
    assert shown.exit_code == 0, shown.output
    assert f"candidate + {effnet}" in shown.stdout and f"candidate - {vit}" in shown.stdout
    assert "1 items added" in shown.stdout and "revision" in shown.stdout
    assert json.loads(invoke("runs", "diff", a.run_id, b.run_id, "--json").stdout)["changed"] is True


def test_exports(registry: Registry, image_folder: Path, models: dict, tmp_path: Path) -> None:
    result = recommend(image_folder, registry=registry, workers=0, bootstrap=10)
    record = load_run(result.run_id, registry=registry)

    doc = json.loads(export_run(result.run_id, "json", registry=registry))
    assert doc == json.loads(json.dumps(record.to_dict(), default=str))

    rows = list(csv.DictReader(io.StringIO(export_run(result.run_id, "csv", registry=registry))))
    assert [r["ref"] for r in rows] == [c.ref for c in record.candidates]
    scores = {(s.ref, s.estimator): s.value for s in record.scores}
    for row in rows:
        for est in DEFAULT:  # a model without a source head has no NCE: an empty cell, no score recorded
            cell = row[f"score_{est}"]
            assert (float(cell) == scores[(row["ref"], est)]) if cell else (row["ref"], est) not in scores
    picked = [r for r in rows if r["picked"] == "True"]
    assert [r["ref"] for r in picked] == [result.best.ref] and picked[0]["rank"] == "1"
    assert all(r["run_id"] == result.run_id and r["data_fingerprint"] == record.run.fingerprint for r in rows)

    md = export_run(result.run_id, "md", registry=registry)
    assert md.startswith(f"# tlreg run {result.run_id}") and f"**Pick: {result.best.ref}.**" in md
    # a tie shows as "1=" (the table's rule), whichever models this machine's arithmetic ties
    assert all(f"| {r.rank}{'=' if r.tied else ''} | {r.ref} |" in md for r in result.ranking)
    assert "## Baselines" in md and "## Candidates" in md and record.run.fingerprint in md

    out = tmp_path / "exports" / "run.md"
    out.parent.mkdir()
    written = invoke("runs", "export", result.run_id[:17], "--format", "md", "--out", str(out))
    assert written.exit_code == 0 and written.stdout == "" and out.read_text() == md
    assert [p.name for p in out.parent.iterdir()] == ["run.md"]  # no temporary file left
    printed = invoke("runs", "export", result.run_id, "--format", "csv")
    assert printed.exit_code == 0 and printed.stdout == export_run(result.run_id, "csv", registry=registry)

    with pytest.raises(BadInputError, match="Unknown export format 'xml'"):
        export_run(result.run_id, "xml", registry=registry)
    missing = invoke("runs", "export", result.run_id, "--out", str(tmp_path / "no" / "such" / "dir.json"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_verify_reproduces_from_the_cache_and_from_scratch(
    registry: Registry, image_folder: Path, models: dict, tmp_path: Path
) -> None:
    result = recommend(image_folder, registry=registry, workers=0, bootstrap=10)
    cache_entries = sorted(e.key for e in FeatureCache().entries())

    v = verify_run(result.run_id, registry=registry)
    assert v.reproduced, v.reasons
    assert (
        v.fingerprint["same"]
        and v.ranking["same"]
        and v.pick
        == {
            "recorded": result.best.ref,
            "now": result.best.ref,
            "same": True,
        }
    )
    n_scores = len(RunStore(registry.engine).get(result.run_id)[2])
    assert len(v.scores) >= n_scores and all(s["ok"] for s in v.scores)

    fresh = verify_run(result.run_id, recompute=True, registry=registry)
    assert fresh.reproduced, fresh.reasons
    assert sorted(e.key for e in FeatureCache().entries()) == cache_entries  # a temporary cache was used
    assert RunStore(registry.engine).list()[0].id == result.run_id  # verification records no run

    ok = invoke("runs", "verify", result.run_id, "--workers", "0")
    assert ok.exit_code == 0, ok.output
    assert "reproduces" in ok.stdout and "same pick" in ok.stdout
    assert json.loads(invoke("runs", "verify", result.run_id, "--json").stdout)["reproduced"] is True


def test_verify_is_not_fooled_by_a_later_run_on_other_data(
    registry: Registry, image_folder: Path, models: dict
) -> None:
    """A run on a bigger sample stored a signature with no outcomes; verifying the first run said
    "the history signal changed" (exit 4) though neither run used the history."""
    first = recommend(image_folder, registry=registry, workers=0, bootstrap=0, max_samples=12)
    recommend(image_folder, registry=registry, workers=0, bootstrap=0, max_samples=15)
    v = verify_run(first.run_id, registry=registry)
    assert v.reproduced, v.reasons


def test_verify_names_what_changed(
    registry: Registry, image_folder: Path, models: dict, tmp_path: Path
) -> None:
    resnet, vit = models["resnet"][0], models["vit"][0]
    base = recommend(image_folder, registry=registry, models=[resnet, vit], **FAST)

    save_tiny_timm(models["vit"][1], arch="test_vit", num_classes=3, seed=5)  # weights edited in place
    cached = verify_run(base.run_id, registry=registry)  # the files are hashed again: no stale features
    assert not cached.reproduced and cached.fingerprint["same"]
    assert [r["ref"] for r in cached.revisions] == [vit]
    assert {s["ref"] for s in cached.mismatched_scores} == {vit}
    assert any(
        r.startswith(f"{vit} changed revision: {cached.revisions[0]['recorded'][:12]} -> ")
        for r in cached.reasons
    )
    fresh = verify_run(base.run_id, recompute=True, registry=registry)
    assert not fresh.reproduced and [r["ref"] for r in fresh.revisions] == [vit]
    assert any(
        r.startswith(f"{vit} changed revision:") and "registry: revision by" in r for r in fresh.reasons
    )
    assert {s["ref"] for s in fresh.mismatched_scores} == {vit}

    Image.new("RGB", (24, 24), (0, 0, 250)).save(image_folder / "class2" / "003.png")  # the data changes
    data = invoke("runs", "verify", base.run_id)
    assert data.exit_code == NOT_REPRODUCED, data.output
    assert "does NOT reproduce" in data.stdout and "the data changed: fingerprint" in data.stdout
    assert "same items were sampled, so a file's content or a label changed" in data.stdout
    as_json = json.loads(invoke("runs", "verify", base.run_id, "--json").stdout)
    assert as_json["reproduced"] is False and as_json["fingerprint"]["same"] is False

    moved = tmp_path / "moved"
    shutil.move(image_folder, moved)
    gone = verify_run(base.run_id, registry=registry)
    assert (
        gone.error and "could not be recomputed" in gone.reasons[0] and str(image_folder) in gone.reasons[0]
    )

    registry.remove(vit)
    removed = verify_run(base.run_id, data=moved, registry=registry)
    assert removed.missing == [vit]
    assert any("is no longer in the registry (removed by" in r for r in removed.reasons)


def as_an_older_tlreg_wrote_it(registry: Registry, run_id: str) -> None:
    """Rewrite a run's record as tlreg wrote it before the aggregation was an option, when the
    defaults were other estimators: its options say "the default" and nothing names the aggregation."""
    with Session(registry.engine) as session:
        run, stored = session.get(Run, run_id), session.get(RunResult, run_id)
        run.options = {**run.options, "estimators": None}
        del run.options["aggregation"]
        stored.detail = {k: v for k, v in stored.detail.items() if k != "aggregation"}
        session.add_all([run, stored])
        session.commit()


def test_verify_recomputes_a_run_as_it_was_made_after_the_defaults_changed(
    registry: Registry, image_folder: Path, models: dict
) -> None:
    """A record written before the aggregation was an option, by a tlreg whose defaults were other
    estimators: its options say "the default" (None) and nothing names the aggregation. Verify
    recomputes it with the estimators the record lists and with ranks (every run before combined
    so), and notes today's defaults, instead of judging it by defaults it never ran with."""
    then = ["logme", "knn"]
    assert then != DEFAULT and AGGREGATION != "rank"  # what makes this a change of defaults
    result = recommend(image_folder, registry=registry, estimators=then, aggregation="rank", **FAST)
    assert result.aggregation == "rank" and result.to_dict()["aggregation"] == "rank"
    as_an_older_tlreg_wrote_it(registry, result.run_id)

    v = verify_run(result.run_id, registry=registry)
    assert v.reproduced, v.reasons
    now = ", ".join(DEFAULT)
    assert f"recomputed with the run's estimators (logme, knn); the default is now {now}" in v.notes
    assert f"recomputed with the run's aggregation (rank); the default is now {AGGREGATION}" in v.notes
    shown = invoke("runs", "verify", result.run_id, "--workers", "0")
    assert shown.exit_code == 0 and "the default is now" in shown.stderr + shown.stdout


def test_diff_names_the_estimators_and_aggregation_a_run_used_when_the_defaults_changed(
    registry: Registry, image_folder: Path, models: dict
) -> None:
    """Two runs with the same options ("the defaults") made by tlregs with other defaults: the diff
    says the combination changed (estimators and aggregation as each run recorded them), the one
    cause of their different rankings that the options cannot show."""
    then = ["logme", "knn"]
    old = recommend(image_folder, registry=registry, estimators=then, aggregation="rank", **FAST)
    as_an_older_tlreg_wrote_it(registry, old.run_id)
    new = recommend(image_folder, registry=registry, **FAST)

    d = diff_runs(old.run_id, new.run_id, registry=registry)
    assert d.combination == {
        "estimators": {"a": then, "b": DEFAULT},
        "aggregation": {"a": "rank", "b": AGGREGATION},
    }
    assert d.changed and d.to_dict()["combination"] == d.combination
    assert not diff_runs(new.run_id, new.run_id, registry=registry).combination
    shown = invoke("runs", "diff", old.run_id, new.run_id)
    assert shown.exit_code == 0, shown.output
    assert f"estimators  logme, knn -> {', '.join(DEFAULT)}" in shown.stdout
    assert f"aggregation rank -> {AGGREGATION}" in shown.stdout


def test_aggregation_is_an_option_with_a_cli_twin(
    registry: Registry, image_folder: Path, models: dict
) -> None:
    by_rank = recommend(image_folder, registry=registry, aggregation="rank", **FAST)
    assert by_rank.aggregation == "rank" and all(0.0 <= r.combined <= 1.0 for r in by_rank.ranking)
    default = recommend(image_folder, registry=registry, **FAST)
    assert (
        default.aggregation == AGGREGATION
        and load_run(default.run_id, registry=registry).result.detail["aggregation"] == AGGREGATION
    )
    cli = invoke("recommend", str(image_folder), "--aggregation", "rank", "--workers", "0", "--json")
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["aggregation"] == "rank"
    bad = invoke("recommend", str(image_folder), "--aggregation", "median")
    assert bad.exit_code == 2 and "median" in bad.stderr and "Traceback" not in bad.output
    with pytest.raises(BadInputError, match="Unknown --aggregation 'median'"):
        recommend(image_folder, registry=registry, aggregation="median", **FAST)


def test_verify_refuses_a_run_without_result(registry: Registry) -> None:
    store = RunStore(registry.engine)
    store.start(Run(id="r1", data_path="/data"))
    store.fail("r1", "boom")
    with pytest.raises(BadInputError, match="Run r1 is failed: it has no result to verify"):
        verify_run("r1", registry=registry)
    out = invoke("runs", "verify", "r1")
    assert out.exit_code == 2 and out.stderr.startswith("Error: Run r1 is failed")


EVIL = "<img src=x onerror=alert(1)>"


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_export_escapes_what_the_run_recorded(registry: Registry) -> None:
    """Class names, paths and refs went raw into the Markdown: HTML ran in viewers, tables broke."""
    store = RunStore(registry.engine)
    ref = f"file:/m/{EVIL}|`x`#arch=resnet18"
    store.start(
        Run(
            id="r-md",
            data_path=f"/data/{EVIL}/`tick`",
            n_samples=4,
            command="tlreg recommend ./data | tee `x`",
            classes=[EVIL, "a|b", "tick`s", "two\nlines", "[link](javascript:alert(1))"],
            options={"models": [EVIL]},
        )
    )
    store.add(
        RunCandidate(run_id="r-md", ref=ref, reason=f"skipped: {EVIL}"),
        RunScore(run_id="r-md", ref=ref, estimator="logme", value=1.0, error="a|b\nc"),
    )
    row = {"rank": 1, "ref": ref, "revision": "r" * 40, "scores": {"logme": 1.0}, "combined": 1.0}
    store.finish(
        RunResult(
            run_id="r-md",
            best_ref=ref,
            reason=f"{EVIL} ranks first",
            ranking=[row],
            warnings=[EVIL],
            skipped=[{"ref": ref, "reason": EVIL}],
            detail={"estimators": ["logme"]},
        )
    )
    md = export_run("r-md", "md", registry=registry)
    path_span = f"`` /data/{EVIL}/`tick` ``"  # a code span: shown as is, never parsed as HTML
    command_span = "`` tlreg recommend ./data | tee `x` ``"
    assert path_span in md and command_span in md
    text = md.replace(path_span, "").replace(command_span, "")
    assert "<" not in text.replace("&lt;", "") and text.count("&lt;img src=x onerror=alert(1)&gt;") >= 6
    assert "[link](" not in md and "\\[link\\](javascript" in md  # no link: its brackets are escaped
    assert "a\\|b" in md and "tick\\`s" in md and "two lines" in md
    lines = md.splitlines()
    assert not any(line.startswith("lines") for line in lines)
    tables = 0
    for start, line in enumerate(lines[:-1]):
        if line.startswith("| ") and lines[start + 1].startswith("|---"):
            end = start + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            tables += 1
            assert all(_unescaped_pipes(row) == _unescaped_pipes(line) for row in lines[start + 2 : end]), (
                line
            )
    assert tables == 3  # ranking, candidates, scores
