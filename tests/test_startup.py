"""An instant CLI: the commands a user runs to look around load no model library (nor Alembic, numpy or
pandas, nor, on a SQLite registry, the ORM: SQLAlchemy, SQLModel, pydantic), and a ``recommend`` served
from the feature cache loads no model library either.

Each command runs in a fresh interpreter (a subprocess, as from the shell) and reports which of the
heavy modules it imported; torch alone takes seconds to import on 2 cores, timm more.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import put_in_hf_cache, save_tiny_timm
from tlreg.registry import ModelSpec, Registry, RunStore
from tlreg.registry.runs import Run, RunCandidate, RunResult

#: alembic too: a registry already at this tlreg's schema is opened with one plain query; and the ORM
#: (asyncio comes with SQLAlchemy): a SQLite registry at that schema is listed without it
HEAVY = ("torch", "timm", "transformers", "torchvision", "faiss", "sklearn", "alembic", "numpy", "pandas")
HEAVY += ("sqlalchemy", "sqlmodel", "pydantic", "asyncio")

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
        ["registry", "list", "--json"],
        ["registry", "list", "resnet*", "--tag", "imagenet-1k", "--modality", "image"],
        ["registry", "show", "timm:resnet18.a1_in1k"],
        ["registry", "show", "@champion", "--json"],
        ["runs", "list"],
        ["runs", "list", "--json", "--since", "7d"],
        ["runs", "show", "20261101-100000-abcdef"],
        ["runs", "show", "20261101", "--json"],
        ["cache", "list"],
    ],
    ids=" ".join,
)
def test_looking_around_loads_no_heavy_library(args: list[str], registry: Registry, tmp_path: Path) -> None:
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
            tags=["imagenet-1k"],
        )
    )
    registry.set_alias("champion", "pkg:efficientnet_lite0")
    runs = RunStore(registry.engine)
    runs.start(Run(id="20261101-100000-abcdef", data_path=str(tmp_path)))
    runs.add(RunCandidate(run_id="20261101-100000-abcdef", ref="pkg:efficientnet_lite0", seconds=1.0))
    runs.finish(RunResult(run_id="20261101-100000-abcdef", best_ref="pkg:efficientnet_lite0", reason="one"))
    doc = loaded_by(*args)
    assert doc["code"] in (0, None) and doc["loaded"] == [], f"tlreg {' '.join(args)} loaded {doc['loaded']}"


MODEL_LIBRARIES = ("torch", "timm", "transformers", "torchvision")
#: what a cached recommend must not import either: it runs no estimator (scipy.stats alone took 0.8 s)
CACHED_ABSENT = (*MODEL_LIBRARIES, "scipy", "sklearn", "faiss")

RECOMMEND = """
import contextlib, io, json, sys
from tlreg.cli.main import cli
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        cli.main(sys.argv[1:], prog_name="tlreg")
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "answer": json.loads(out.getvalue()),
                  "loaded": [m for m in LIBRARIES if m in sys.modules]}))
""".replace("LIBRARIES", repr(CACHED_ABSENT))

#: what differs between two runs that give the same answer: the run, and what it cost
VOLATILE = {"run_id", "seconds", "from_cache", "samples_per_s", "forward_passes"}


def _answer(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _answer(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [_answer(v) for v in doc]
    return doc


def test_a_cached_recommend_loads_no_model_library(
    registry: Registry, image_folder: Path, hf_cache: Path, tmp_path: Path
) -> None:
    # a local folder saved by timm's save_for_hf, and a Hugging Face cache laid out as the Hub would
    registry.add_ref(str(save_tiny_timm(tmp_path / "local", arch="test_resnet", num_classes=3)))
    put_in_hf_cache(hf_cache, "tlreg-test/tiny", save_tiny_timm(tmp_path / "hub", arch="test_vit", seed=1))
    registry.add_ref("hf:tlreg-test/tiny@main")
    args = ["recommend", str(image_folder), "--json", "--workers", "0", "--bootstrap", "5"]

    def recommend() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", RECOMMEND, *args], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout.strip().splitlines()[-1])
        assert doc["code"] in (0, None)
        return doc

    first, cached = recommend(), recommend()
    assert "torch" in first["loaded"]  # the first run embeds: the probe below can see a model library
    assert all(row["from_cache"] for row in cached["answer"]["ranking"] + cached["answer"]["baselines"])
    assert cached["loaded"] == [], f"a fully cached recommend loaded {cached['loaded']}"  # scipy too
    assert _answer(cached["answer"]) == _answer(first["answer"])


def test_listing_the_sources_loads_no_model_library() -> None:
    code = (
        "import json, sys; from tlreg.registry.sources import schemes, sources; sources(); schemes(); "
        f"print(json.dumps([m for m in {(*MODEL_LIBRARIES, 'huggingface_hub')!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
