"""Successive halving from the shell (``bench/halving.py shell`` and ``hub-shell``): whole ``tlreg
recommend`` processes, ``--budget full`` against ``--budget auto``, each in a fresh home, registry
copy and feature cache, as a user times them.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from halving import RESULTS, model_id
from shell import tlreg_command


def fresh_env(home: Path) -> dict[str, str]:
    """The environment of one run: its own home, registry, cache, and no Hub."""
    return {
        **os.environ,
        "TLREG_HOME": str(home),
        "TLREG_DB": f"sqlite:///{home / 'registry.db'}",
        "TLREG_CACHE": str(home / "cache"),
        "HF_HUB_OFFLINE": "1",
    }


def shell(repeats: int, sizes: list[int]) -> dict[str, Any]:
    from scale import ARCHS, image_folder, save_model

    tlreg = tlreg_command()
    times: dict[str, list[float]] = {}
    passes: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="tlreg-halving-shell-") as tmp:
        root = Path(tmp)
        data = image_folder(root / "data", classes=3, per_class=16, size=32)
        models = [
            save_model(root / "models" / f"m{i:02d}", ARCHS[i % len(ARCHS)], seed=i)
            for i in range(max(sizes))
        ]
        templates = {}
        for size in sizes:  # registering is not what is timed: one registry per size, copied per run
            from tlreg.registry import Registry

            templates[size] = root / f"registry-{size}.db"
            registry = Registry(f"sqlite:///{templates[size]}")
            for folder in models[:size]:
                registry.add_ref(str(folder))
            registry.engine.dispose()
        for r in range(repeats):
            for size in sizes:
                for budget in ("full", "auto"):
                    home = root / f"home-{size}-{budget}"
                    shutil.rmtree(home, ignore_errors=True)
                    home.mkdir()
                    shutil.copy(templates[size], home / "registry.db")
                    env = fresh_env(home)
                    start = time.perf_counter()
                    run = [tlreg, "recommend", str(data), "--budget", budget, "--json"]
                    done = subprocess.run(run, env=env, capture_output=True, text=True)
                    seconds = time.perf_counter() - start
                    if done.returncode != 0:
                        raise SystemExit(f"tlreg recommend failed ({size}, {budget}): {done.stderr[-500:]}")
                    times.setdefault(f"{size}/{budget}", []).append(seconds)
                    passes[f"{size}/{budget}"] = json.loads(done.stdout)["budget"]
            print(f"round {r + 1}/{repeats} done", file=sys.stderr, flush=True)
    return {
        "sizes": sizes,
        "repeats": repeats,
        "seconds": {k: {"min": min(v), "median": statistics.median(v), "all": v} for k, v in times.items()},
        "forward_passes": {k: (b["forward_passes"], b["full_forward_passes"]) for k, b in passes.items()},
    }


def report_shell(doc: dict[str, Any]) -> str:
    lines = [
        f"tlreg recommend from the shell, 48 images (3 classes, 32 px), {doc['repeats']} runs each, "
        "interleaved:",
        f"{'candidates':>10} {'full min/median s':>18} {'auto min/median s':>18} {'full/auto':>10} "
        f"{'passes full/auto':>18}",
    ]
    for size in doc["sizes"]:
        f, a = doc["seconds"][f"{size}/full"], doc["seconds"][f"{size}/auto"]
        pf, pa = doc["forward_passes"][f"{size}/full"][0], doc["forward_passes"][f"{size}/auto"][0]
        lines.append(
            f"{size:>10} {f['min']:>8.1f}/{f['median']:<9.1f} {a['min']:>8.1f}/{a['median']:<9.1f} "
            f"{f['median'] / a['median']:>10.1f} {pf:>8}/{pa:<9}"
        )
    return "\n".join(lines)


def hub_shell(work: Path, target: str, max_samples: int) -> dict[str, Any]:
    """One Hub-like target from the shell with real backbones: ``recommend --budget full`` and
    ``auto`` on the 21 candidates, each in a fresh copy of the build's registry and an empty cache."""
    tlreg = tlreg_command()
    results = json.loads(RESULTS.read_text())
    folder = next((work / "targets").glob(f"{target}-v*-{results['config']['target_train']}-*")) / "train"
    refs = sorted(
        f"local-dir:{p}" for p in (work / "models").iterdir() if model_id(p.name) in results["candidates"]
    )
    out: dict[str, Any] = {"target": target, "max_samples": max_samples, "candidates": len(refs)}
    with tempfile.TemporaryDirectory(prefix="tlreg-halving-hub-") as tmp:
        for budget in ("auto", "full"):
            home = Path(tmp) / budget
            home.mkdir()
            shutil.copy(work / "registry.db", home / "registry.db")
            env = fresh_env(home)
            run = [
                tlreg,
                "recommend",
                str(folder),
                "--max-samples",
                str(max_samples),
                "--budget",
                budget,
                "--json",
            ]
            for ref in refs:
                run += ["--models", ref]
            start = time.perf_counter()
            done = subprocess.run(run, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"tlreg recommend --budget {budget} failed: {done.stderr[-800:]}")
            doc = json.loads(done.stdout)
            out[budget] = {
                "seconds": seconds,
                "pick": model_id(doc["best"]["ref"]),
                "forward_passes": doc["budget"]["forward_passes"],
                "stages": [(len(s["candidates"]), s["samples"]) for s in doc["budget"]["stages"]],
            }
            print(f"{budget}: {seconds:.0f} s, pick {out[budget]['pick']}", file=sys.stderr, flush=True)
    return out


def report_hub_shell(doc: dict[str, Any]) -> str:
    full, auto = doc["full"], doc["auto"]
    return (
        f"tlreg recommend from the shell on the Hub-like target {doc['target']} "
        f"({doc['max_samples']} images, {doc['candidates']} candidates, empty caches): "
        f"full {full['seconds']:.0f} s, auto {auto['seconds']:.0f} s "
        f"({full['seconds'] / auto['seconds']:.1f}x); forward passes {full['forward_passes']:,} vs "
        f"{auto['forward_passes']:,}; picks: full {full['pick']}, auto {auto['pick']}"
    )
