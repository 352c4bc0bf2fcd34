"""``tlreg estimators list`` through click's CliRunner."""

from __future__ import annotations

import json

from click.testing import CliRunner
from tlreg.advisor.estimators import available
from tlreg.cli.estimators_cmd import estimators


def test_list_json_is_the_metadata_of_every_estimator() -> None:
    result = CliRunner().invoke(estimators, ["list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [entry["name"] for entry in listed] == [info.name for info in available()]
    leep = next(entry for entry in listed if entry["name"] == "leep")
    assert leep["needs"] == ["labels", "source_probs"] and leep["tasks"] == ["classification"]
    etran = next(entry for entry in listed if entry["name"] == "etran")
    assert etran["components"] == ["energy", "lda", "svd"] and etran["pool_normalization"] is True
    assert all(entry["higher_is_better"] is True for entry in listed)


def test_list_prints_a_table_with_name_tasks_needs_and_paper() -> None:
    result = CliRunner().invoke(estimators, ["list"])
    assert result.exit_code == 0, result.output
    for header in ("name", "tasks", "needs", "paper"):
        assert header in result.output
    for info in available():
        assert info.name in result.output
    assert "features + labels + source_probs" not in result.output
    assert "labels + source_probs" in result.output


def test_help_comes_from_the_docstrings() -> None:
    result = CliRunner().invoke(estimators, ["--help"])
    assert result.exit_code == 0
    assert "Transferability estimators" in result.output and "list" in result.output
