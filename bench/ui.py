"""How fast ``tlreg ui`` answers on a team-sized audit trail: a registry with 1,000 recorded runs.

The runs are written through the real run store, as ``recommend`` writes them: each with 120
sampled item ids, its options and environment, 8 candidates and 2 baselines with 3 estimator scores
each, and a result whose ranking carries every row (what makes a run record heavy). 8 users, 25
datasets, 1 run in 20 failed. The web application is then built over the database opened read-only,
exactly as ``tlreg ui`` builds it, and each page is requested through Starlette's test client (the
whole ASGI application: routing, the database, the templates; no network): the runs page as it
opens, sorted, filtered, a later page, and the pages that read the heaviest records (a run's page
with its charts, the model that was a candidate in every run). Minimum and median of several
requests after one warm-up request each.

    python bench/ui.py [--runs 1000] [--repeats 5] [--db URL]   # default: a temporary SQLite file
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.testclient import TestClient
from tlreg.advisor.audit import browse
from tlreg.cli.web.app import create_app, model_url, run_url
from tlreg.registry import Registry, RunStore
from tlreg.registry.runs import Run, RunCandidate, RunResult, RunScore

ESTIMATORS = ("logme", "hscore_shrinkage", "knn")
MODELS = [f"timm:model_{i:02d}.tag_in1k" for i in range(10)]
USERS = [f"user{i}" for i in range(8)]


def record_runs(registry: Registry, n: int, *, seed: int = 0) -> list[str]:
    """``n`` realistic runs through :class:`RunStore` (the same rows ``recommend`` writes)."""
    rng = random.Random(seed)
    store, ids, start = RunStore(registry.engine), [], datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        run_id = f"{(start + timedelta(hours=i)):%Y%m%d-%H%M%S}-{i:06x}"
        fingerprint = f"{i % 25:02x}" * 32
        os.environ["TLREG_USER"] = USERS[i % len(USERS)]  # start() records who runs it; a team has several
        store.start(
            Run(
                id=run_id,
                created_at=start + timedelta(hours=i),
                data_path=f"/data/team/dataset-{i % 25}",
                fingerprint=fingerprint,
                modality="image",
                task="classification",
                n_samples=120,
                classes=[f"class{c}" for c in range(10)],
                sample_ids=[f"class{j % 10}/img{j:04d}.jpg" for j in range(120)],
                command=f"tlreg recommend /data/team/dataset-{i % 25}",
                options={"bootstrap": 50, "per_class": 12, "estimators": list(ESTIMATORS), "seed": 0},
                environment={"tlreg": "0.1.0", "torch": "2.14.1", "timm": "1.0.31", "device": "cpu"},
            )
        )
        if i % 20 == 19:
            store.fail(run_id, "CUDA out of memory")
            ids.append(run_id)
            continue
        models = [MODELS[0], *rng.sample(MODELS[1:], 7)]
        rows, cells = [], []
        for rank, ref in enumerate(sorted(models, key=lambda _: rng.random()), 1):
            scores = {e: rng.uniform(-1, 3) for e in ESTIMATORS}
            cells.append(
                RunCandidate(run_id=run_id, ref=ref, revision="a" * 40, params=rng.randrange(10**6, 10**8))
            )
            cells += [RunScore(run_id=run_id, ref=ref, estimator=e, value=v) for e, v in scores.items()]
            rows.append(
                {
                    **{"rank": rank, "ref": ref, "revision": "a" * 40, "scores": scores},
                    **{
                        "combined": 1 - rank / 8,
                        "p_best": 0.5 / rank,
                        "rank_interval": [rank, min(rank + 1, 8)],
                    },
                    **{"negative_transfer": False, "params": 10**7, "feature_dim": 768},
                }
            )
        for ref in (f"{rows[0]['ref']} (random init)", "raw pixels (16x16)"):
            scores = {e: rng.uniform(-2, 1) for e in ESTIMATORS}
            cells.append(RunCandidate(run_id=run_id, ref=ref, baseline_of=rows[0]["ref"]))
            cells += [RunScore(run_id=run_id, ref=ref, estimator=e, value=v) for e, v in scores.items()]
            rows.append({"rank": 0, "ref": ref, "baseline_of": rows[0]["ref"], "scores": scores})
        store.add(*cells)
        store.finish(
            RunResult(
                run_id=run_id,
                best_ref=rows[0]["ref"],
                reason=f"{rows[0]['ref']} has the best combined rank.",
                ranking=rows,
                detail={"estimators": list(ESTIMATORS), "confidence": {"rounds": 50, "separable": True}},
            )
        )
        ids.append(run_id)
    return ids


def timed(client: TestClient, path: str, repeats: int) -> tuple[float, float, int]:
    """(min, median) seconds of ``GET path`` after one warm-up request, and the page's size in bytes."""
    first = client.get(path)
    if first.status_code != 200:
        raise SystemExit(f"error: GET {path} answered {first.status_code}: {first.text[:300]}")
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        client.get(path)
        seconds.append(time.perf_counter() - start)
    return min(seconds), statistics.median(seconds), len(first.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", help="an empty database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlreg-bench-ui-") as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'registry.db'}"
        start = time.perf_counter()
        ids = record_runs(Registry(url), args.runs)
        print(
            f"{args.runs} runs recorded in {time.perf_counter() - start:.1f} s ({url.split('://')[0]})",
            file=sys.stderr,
        )
        client = TestClient(create_app(Registry(url, read_only=True)))
        pages = [
            ("runs page as it opens (newest 200 of all)", "/runs"),
            ("sorted by pick", "/runs?sort=pick"),
            ("filtered: one user, one dataset", f"/runs?user={USERS[3]}&fingerprint={'03' * 6}"),
            ("page 5 (the oldest 200)", "/runs?page=5"),
            ("a run's page (report, charts)", run_url(ids[-2])),
            ("a model that was a candidate in every run", model_url(MODELS[0])),
            ("two runs side by side", f"/diff/{ids[0]}/{ids[-2]}"),
            ("registry", "/registry"),
        ]
        print(f"| page (registry of {args.runs} runs) | min s | median s | KB |")
        print("| --- | ---: | ---: | ---: |")
        for label, path in pages:
            best, median, size = timed(client, path, args.repeats)
            print(f"| {label} | {best:.3f} | {median:.3f} | {size // 1024} |")
        start = time.perf_counter()
        everything = browse.find_runs(client.app.state.registry, browse.RunQuery(), page_size=args.runs)
        query = time.perf_counter() - start
        print(f"\nThe query behind the runs page, all {len(everything.rows)} rows at once: {query:.3f} s.")


if __name__ == "__main__":
    main()
