"""The answer cache: a rerun on cached features reuses the scores, the resampling rounds and the plan;
any change to what they depend on computes afresh; ``runs verify`` never reads them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from tlreg.advisor import recommend
from tlreg.advisor.audit.verify import verify_run
from tlreg.advisor.cache import FeatureCache
from tlreg.advisor.memo import Memo, memo_key
from tlreg.cli.main import cli
from tlreg.registry import Registry


def entries(kind_root: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(kind_root.glob("??/*.json"))}


def comparable(result) -> list[tuple]:
    return [
        (r.ref, r.rank, r.scores, r.p_best, r.rank_interval, r.plan, r.learning_curve) for r in result.ranking
    ]


def test_a_rerun_reuses_the_rounds_and_gives_the_same_answer(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    first = recommend(image_folder, registry=registry, workers=0)
    memo = Memo(FeatureCache())
    stored = entries(memo.root)
    kinds = sorted(doc["kind"] for doc in stored.values())
    # the full-sample scores of each row (2 models, 2 random inits, raw pixels; rows with the same
    # arrays share one: a tiny model saved from seed 0 is its own random init), the rounds, the plan
    distinct = {(e.path / "features.npy").read_bytes() for e in FeatureCache().entries()}
    assert len(distinct) >= 4
    assert kinds == ["bootstrap", "plan"] + ["scores"] * len(distinct), kinds
    again = recommend(image_folder, registry=registry, workers=0)
    assert comparable(again) == comparable(first)
    assert entries(memo.root) == stored  # nothing new was computed

    # the second run read the rounds from the cache: an entry edited on disk shows in its answer
    rounds = next(p for p in memo.root.glob("??/*.json") if "round_scores" in p.read_text())
    doc = json.loads(rounds.read_text())
    doc["value"]["p_best"] = dict.fromkeys(doc["value"]["p_best"], 0.123)
    rounds.write_text(json.dumps(doc))
    edited = recommend(image_folder, registry=registry, workers=0)
    assert {r.p_best for r in edited.ranking} == {0.123}


def test_what_the_answer_depends_on_is_in_the_key(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    recommend(image_folder, registry=registry, workers=0)
    memo = Memo(FeatureCache())
    before = memo.count()
    recommend(image_folder, registry=registry, workers=0, seed=7)  # other rounds, other random inits
    after_seed = memo.count()
    assert after_seed > before
    recommend(image_folder, registry=registry, workers=0, bootstrap=10)
    assert memo.count() == after_seed + 1  # the same scores and plan, new rounds


def test_a_damaged_entry_is_recomputed(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    first = recommend(image_folder, registry=registry, workers=0)
    memo = Memo(FeatureCache())
    for path in memo.root.glob("??/*.json"):
        path.write_text('{"key": "truncated')
    again = recommend(image_folder, registry=registry, workers=0)
    assert comparable(again) == comparable(first)
    assert all(json.loads(p.read_text())["value"] is not None for p in memo.root.glob("??/*.json"))
    assert not list(memo.root.glob("??/.tmp-*"))


def test_verify_recomputes_rather_than_reading_the_answer_cache(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    result = recommend(image_folder, registry=registry, workers=0)
    memo = Memo(FeatureCache())
    for path in memo.root.glob("??/*.json"):  # every cached answer is now wrong
        doc = json.loads(path.read_text())
        if isinstance(doc["value"], dict) and "p_best" in doc["value"]:
            doc["value"]["p_best"] = dict.fromkeys(doc["value"]["p_best"], 0.0)
        path.write_text(json.dumps(doc))
    verdict = verify_run(result.run_id, registry=registry)
    assert verdict.reproduced, verdict.reasons


def test_keys_hash_content_not_identity() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert memo_key("x", features=a, seed=0) == memo_key("x", features=a.copy(), seed=0)
    b = a.copy()
    b[2, 3] += 1e-6
    assert memo_key("x", features=a, seed=0) != memo_key("x", features=b, seed=0)
    assert memo_key("x", features=a, seed=0) != memo_key("x", features=a.astype(np.float64), seed=0)
    assert memo_key("x", features=a, seed=0) != memo_key("x", features=a.reshape(4, 3), seed=0)
    assert memo_key("x", features=a, seed=0) != memo_key("y", features=a, seed=0)


def test_cache_clear_removes_the_answers_too(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    recommend(image_folder, registry=registry, workers=0)
    memo = Memo(FeatureCache())
    n = memo.count()
    done = CliRunner().invoke(cli, ["cache", "clear", "--yes"])
    assert done.exit_code == 0, done.output
    assert f"{n} cached answers" in done.output
    assert memo.count() == 0


def test_an_answer_cache_that_cannot_be_written_is_a_one_line_error(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    cache = FeatureCache()
    cache.root.mkdir(parents=True, exist_ok=True)
    Memo(cache).root.write_text("not a folder")  # every write under it fails, even as root
    done = CliRunner().invoke(cli, ["recommend", str(image_folder)])
    assert done.exit_code != 0
    assert "feature cache" in done.output and "Traceback" not in done.output
    assert len(done.output.strip().splitlines()) <= 2, done.output


def test_prune_removes_answers_no_run_used_for_that_long(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    recommend(image_folder, registry=registry, workers=0)
    memo = Memo(FeatureCache())
    paths = sorted(memo.root.glob("??/*.json"))
    old, recent = paths[0], paths[1:]
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    done = CliRunner().invoke(cli, ["cache", "prune", "--older-than", "30"])
    assert done.exit_code == 0, done.output
    assert "and 1 cached answers" in done.output
    assert not old.exists() and all(p.exists() for p in recent)
    for p in recent:  # a rerun reads them, and reading marks them used
        os.utime(p, (month_ago, month_ago))
    recommend(image_folder, registry=registry, workers=0)
    assert all(p.stat().st_mtime > month_ago + 86400 for p in recent)
