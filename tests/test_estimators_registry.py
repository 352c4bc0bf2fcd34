"""The registration mechanism: decorator, overwrite warning, entry-point plugins, lookup, pool combination."""

from __future__ import annotations

import importlib.metadata
import math
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tlreg.advisor.estimators as estimators
from _estimator_data import make_classification
from tlreg.advisor.errors import EstimatorError
from tlreg.advisor.estimators import (
    BUILTIN_MODULES,
    ENTRY_POINT_GROUP,
    EstimatorInfo,
    EstimatorOverwriteWarning,
    EstimatorPluginWarning,
    available,
    get,
    pool_normalize,
    register,
    score,
    unregister,
)
from tlreg.advisor.estimators import registry as registry_module


@pytest.fixture
def scratch() -> Iterator[list[str]]:
    """Names registered by a test, removed afterwards so the registry is left as found."""
    names: list[str] = []
    yield names
    for name in names:
        if name in {info.name for info in available()}:
            unregister(name)


def test_every_estimator_module_is_imported_explicitly() -> None:
    package = Path(estimators.__file__).parent
    modules = {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")} - {
        "registry",
        "validation",
    }
    assert set(BUILTIN_MODULES) == modules


def test_a_third_party_registers_like_a_builtin(scratch: list[str]) -> None:
    @register(
        "test_mean_norm",
        paper="A. Tester, 2025",
        cost="O(N D)",
        tasks=("classification", "unlabelled"),
        needs_labels=False,
    )
    def mean_norm(features, labels=None, *, source_probs=None, task="classification"):
        """Mean row norm: a toy label-free score.

        Shape:
            - score: scalar.
        """
        return float(np.linalg.norm(np.asarray(features), axis=1).mean())

    scratch.append("test_mean_norm")
    info = get("test_mean_norm")
    assert info.summary == "Mean row norm: a toy label-free score."
    assert info in available("test_*") and info in available(task="unlabelled")
    assert score("test_mean_norm", np.eye(3), None, task="unlabelled") == pytest.approx(1.0)


def test_overwriting_warns_like_timm(scratch: list[str]) -> None:
    register("test_dup", paper="p", cost="c")(lambda f, y, *, source_probs=None: 1.0)
    scratch.append("test_dup")
    with pytest.warns(EstimatorOverwriteWarning, match="registered again"):
        register("test_dup", paper="p", cost="c")(lambda f, y, *, source_probs=None: 2.0)
    assert issubclass(EstimatorOverwriteWarning, UserWarning)
    assert score("test_dup", np.eye(3), [0, 1, 1]) == 2.0


def test_a_non_finite_result_is_an_estimator_error(scratch: list[str]) -> None:
    register("test_nan", paper="p", cost="c")(lambda f, y, *, source_probs=None: math.nan)
    scratch.append("test_nan")
    with pytest.raises(EstimatorError, match="returned nan"):
        score("test_nan", np.eye(3), [0, 1, 1])


def test_metadata_is_checked() -> None:
    with pytest.raises(ValueError, match="subset"):
        EstimatorInfo(name="x", fn=len, paper="p", summary="s", tasks=frozenset({"segmentation"}))
    with pytest.raises(ValueError, match="negated"):
        EstimatorInfo(name="x", fn=len, paper="p", summary="s", higher_is_better=False)
    with pytest.raises(ValueError, match="identifier"):
        EstimatorInfo(name="bad name", fn=len, paper="p", summary="s")


def test_unknown_names_and_tasks_are_explained() -> None:
    with pytest.raises(EstimatorError, match="Did you mean: logme"):
        get("logmee")
    features, labels = make_classification(31)
    with pytest.raises(EstimatorError, match="Unknown task"):
        score("logme", features, labels, task="segmentation")
    with pytest.raises(EstimatorError, match=r"estimators that do: .*rankme"):
        score("hscore", features, None, task="unlabelled")


def test_listing_filters() -> None:
    assert [i.name for i in available("etran*")] == ["etran", "etran_energy", "etran_lda", "etran_svd"]
    assert {i.name for i in available(needs_source_probs=True)} == {"leep", "nce"}
    assert "logme" in {i.name for i in available(task="regression")}
    assert {i.name for i in available(task="unlabelled")} >= {"rankme", "etran_energy"}


PLUGIN_SOURCE = '''
from tlreg.advisor.estimators import register

@register("test_plugin_module", paper="Plug, 2025", cost="O(1)")
def first(features, labels, *, source_probs=None):
    """Always 1.

    Shape:
        - score: scalar.
    """
    return 1.0

def register_more():
    register("test_plugin_callable", paper="Plug, 2025", cost="O(1)")(lambda f, y, *, source_probs=None: 2.0)
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch: list[str]) -> Iterator[list]:
    """A plugin module on sys.path, and a fake entry-point list the registry reads instead of the real one."""
    (tmp_path / "tlreg_test_plugin.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    points: list[importlib.metadata.EntryPoint] = []
    monkeypatch.setattr(registry_module, "_entry_points", lambda: points)
    scratch.extend(["test_plugin_module", "test_plugin_callable"])
    yield points
    sys.modules.pop("tlreg_test_plugin", None)


def entry_point(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_plugins_register_through_entry_points(plugin: list) -> None:
    plugin.extend(
        [
            entry_point("mod", "tlreg_test_plugin"),
            entry_point("fn", "tlreg_test_plugin:register_more"),
            entry_point("itself", "tlreg_test_plugin:first"),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        added = estimators.load_plugins(force=True)
    assert added == ["test_plugin_callable", "test_plugin_module"]
    assert score("test_plugin_callable", np.eye(3), [0, 1, 1]) == 2.0


def test_a_broken_plugin_warns_and_is_skipped(plugin: list) -> None:
    plugin.extend(
        [entry_point("missing", "tlreg_no_such_module_xyz"), entry_point("mod", "tlreg_test_plugin")]
    )
    with pytest.warns(EstimatorPluginWarning, match="'missing'.*failed to load"):
        added = estimators.load_plugins(force=True)
    assert added == ["test_plugin_module"]


def test_etran_pool_normalisation_is_min_max_then_sum() -> None:
    pool = {
        "a": {"energy": 1.0, "lda": 0.5, "svd": -3.0},
        "b": {"energy": 3.0, "lda": 0.9, "svd": -1.0},
        "c": {"energy": 2.0, "lda": 0.7, "svd": -1.0},
    }
    assert pool_normalize("etran", pool) == pytest.approx({"a": 0.0, "b": 3.0, "c": 0.5 + 0.5 + 1.0})
    weighted = pool_normalize(
        "etran",
        {m: {k: v for k, v in c.items() if k != "svd"} for m, c in pool.items()},
        weights={"energy": 0.15, "lda": 0.85},
    )
    assert weighted == pytest.approx({"a": 0.0, "b": 1.0, "c": 0.5})
    assert pool_normalize("etran", {"only": pool["a"]}) == {"only": 0.0}


def test_ncti_pool_normalisation_ranks_as_the_authors() -> None:
    """tlreg's negated VC normalises to 1 - the authors' normalised VC: scores differ by the constant 1."""
    parts = {}
    for i, separation in enumerate((0.3, 1.0, 2.0)):
        features, labels = make_classification(32, n=90, d=6, c=3, separation=separation)
        parts[f"m{i}"] = {c: score(f"ncti_{c}", features, labels) for c in ("seli", "ncc", "vc")}
    combined = pool_normalize("ncti", parts)

    def minmax(values: list[float]) -> list[float]:
        return [(v - min(values)) / (max(values) - min(values)) for v in values]

    models = list(parts)
    seli = minmax([parts[m]["seli"] for m in models])
    ncc = minmax([parts[m]["ncc"] for m in models])
    vc_authors = minmax([-parts[m]["vc"] for m in models])  # their VC: log of the summed nuclear norms
    for i, model in enumerate(models):
        assert combined[model] == pytest.approx(seli[i] + ncc[i] - vc_authors[i] + 1.0)


def test_pool_normalisation_refuses_bad_input() -> None:
    with pytest.raises(EstimatorError, match="same components"):
        pool_normalize("etran", {"a": {"energy": 1.0}, "b": {"lda": 1.0}})
    with pytest.raises(EstimatorError, match="expected some of"):
        pool_normalize("ncti", {"a": {"energy": 1.0}})
    with pytest.raises(EstimatorError, match="no pool normalisation"):
        pool_normalize("logme", {"a": {"x": 1.0}})
    assert pool_normalize("ncti", {}) == {}
