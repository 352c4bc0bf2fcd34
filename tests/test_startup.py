"""An instant CLI: the commands a user runs to look around load no model library.

Each command runs in a fresh interpreter (a subprocess, as from the shell) and reports which of the
heavy modules it imported; torch alone takes seconds to import on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tlreg.registry import ModelSpec, Registry

HEAVY = ("torch", "timm", "transformers", "torchvision", "faiss", "sklearn")

PROBE = """
import contextlib, io, json, sys
from tlreg.cli.main import cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        cli.main(sys.argv[1:], prog_name="tlreg")
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "loaded": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(HEAVY))


def loaded_by(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["recommend", "--help"],
        ["finetune", "--help"],
        ["registry", "--help"],
        ["runs", "--help"],
        ["cache", "--help"],
        ["doctor", "--help"],
        ["ui", "--help"],
        ["registry", "list"],
        ["registry", "show", "timm:resnet18.a1_in1k"],
        ["runs", "list"],
        ["cache", "list"],
    ],
    ids=" ".join,
)
def test_looking_around_loads_no_model_library(args: list[str], registry: Registry, tmp_path: Path) -> None:
    # offline (as the tests run), `registry list` says what can be loaded now: from files, not timm
    registry.add(
        ModelSpec(ref="timm:resnet18.a1_in1k", source="timm", architecture="resnet18", modality="image")
    )
    registry.add(
        ModelSpec(
            ref="pkg:efficientnet_lite0",
            source="bundled",
            architecture="tf_efficientnet_lite0",
            modality="image",
        )
    )
    doc = loaded_by(*args)
    assert doc["code"] in (0, None) and doc["loaded"] == [], f"tlreg {' '.join(args)} loaded {doc['loaded']}"
