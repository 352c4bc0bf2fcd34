"""Aliases: one entry at a time, every move in the history (who, when, from, to), ``@name`` taken
wherever a ref is, and the bad cases: an unknown alias, an alias on a removed entry, concurrent moves."""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import warnings
from datetime import UTC, datetime
from pathlib import Path

import _alias_writer
import pytest
from click.testing import CliRunner
from tlreg.advisor import recommend
from tlreg.advisor.audit.records import load_run
from tlreg.cli.main import cli
from tlreg.registry import ModelSpec, Registry
from tlreg.registry.aliases import AliasRevisionWarning
from tlreg.registry.errors import BadInputError, DanglingAliasError, UnknownAliasError, UnknownModelError


def spec(ref: str, revision: str = "a" * 40) -> ModelSpec:
    return ModelSpec(ref=ref, source="timm", architecture="resnet18", modality="image", revision=revision)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def two(registry: Registry) -> Registry:
    registry.add(spec("timm:resnet18.a1_in1k"))
    registry.add(spec("timm:resnet34.a1_in1k", "b" * 40))
    return registry


@pytest.mark.databases("sqlite", "postgresql")  # the store on both: see conftest.py
def test_an_alias_points_at_one_entry_and_every_move_is_in_its_history(two: Registry) -> None:
    alias, status = two.set_alias("champion", "timm:resnet18.a1_in1k")
    assert status == "set" and (alias.ref, alias.revision) == ("timm:resnet18.a1_in1k", "a" * 40)
    assert two.set_alias("@champion", "resnet18.a1_in1k")[1] == "unchanged"  # no move, no event
    assert two.set_alias("champion", "resnet34.a1_in1k")[1] == "moved"
    assert [(a.name, a.ref) for a in two.aliases()] == [("champion", "timm:resnet34.a1_in1k")]
    assert two.get("@champion").ref == "timm:resnet34.a1_in1k"

    moves = two.alias_history("champion")
    assert [(m.action, m.old_ref, m.ref, m.revision) for m in moves] == [
        ("set", None, "timm:resnet18.a1_in1k", "a" * 40),
        ("move", "timm:resnet18.a1_in1k", "timm:resnet34.a1_in1k", "b" * 40),
    ]
    assert all(m.user and m.host and m.at for m in moves)
    removed = two.remove_alias("champion")
    assert removed.ref == "timm:resnet34.a1_in1k" and two.aliases() == []
    assert [m.action for m in two.alias_history("champion")] == ["set", "move", "remove"]
    assert [e.action for e in two.events()][-3:] == ["alias", "alias", "unalias"]


@pytest.mark.databases("sqlite", "postgresql")  # the store on both: see conftest.py
def test_where_aliases_pointed_at_any_moment_is_replayed_from_the_log(two: Registry) -> None:
    two.set_alias("champion", "timm:resnet18.a1_in1k")
    between = datetime.now(UTC)
    two.set_alias("champion", "timm:resnet34.a1_in1k")
    two.set_alias("baseline", "timm:resnet18.a1_in1k")
    assert [(a.name, a.ref) for a in two.aliases(at=between)] == [("champion", "timm:resnet18.a1_in1k")]
    now = {a.name: a.ref for a in two.aliases(at=datetime.now(UTC))}
    assert now == {"baseline": "timm:resnet18.a1_in1k", "champion": "timm:resnet34.a1_in1k"}


def test_an_alias_works_wherever_a_ref_does(two: Registry) -> None:
    two.set_alias("champion", "timm:resnet18.a1_in1k")
    assert two.tag("@champion", add=["prod"]).tags == ["prod"]
    assert [e.action for e in two.events("@champion")] == ["add", "alias", "tag"]
    two.set_alias("second", "@champion")  # an alias to where another points
    assert two.get("@second").ref == "timm:resnet18.a1_in1k"
    assert two.add_ref("@champion")[1] == "unchanged"
    assert two.remove("@champion").ref == "timm:resnet18.a1_in1k"


def test_an_unknown_alias_names_the_close_ones(two: Registry) -> None:
    two.set_alias("champion", "timm:resnet18.a1_in1k")
    with pytest.raises(UnknownAliasError, match=r"Unknown alias '@champoin'\. Did you mean: @champion\?"):
        two.get("@champoin")
    with pytest.raises(UnknownAliasError):
        two.alias_history("nobody")
    with pytest.raises(UnknownAliasError):
        two.remove_alias("nobody")
    with pytest.raises(BadInputError, match="Invalid alias name"):
        two.set_alias("has space", "timm:resnet18.a1_in1k")
    with pytest.raises(BadInputError, match="Invalid alias name"):
        two.set_alias("timm:resnet18", "timm:resnet18.a1_in1k")


@pytest.mark.databases("sqlite", "postgresql")  # the store on both: see conftest.py
def test_an_alias_on_a_removed_entry_says_so(two: Registry) -> None:
    two.set_alias("champion", "timm:resnet34.a1_in1k")
    two.remove("timm:resnet34.a1_in1k")
    with pytest.raises(
        DanglingAliasError, match=r"points at timm:resnet34\.a1_in1k, which was removed .*by "
    ):
        two.get("@champion")
    with pytest.raises(UnknownModelError, match=r"it was removed from the registry \(by .* at "):
        two.set_alias("other", "timm:resnet34.a1_in1k")
    assert [a.ref for a in two.aliases()] == ["timm:resnet34.a1_in1k"]  # kept: it says what it was
    two.add(spec("timm:resnet34.a1_in1k", "b" * 40))  # registered again: the alias works again
    assert two.get("@champion").revision == "b" * 40


def test_an_alias_whose_entry_moved_revision_warns(two: Registry) -> None:
    two.set_alias("champion", "timm:resnet18.a1_in1k")
    two.add(spec("timm:resnet18.a1_in1k", "c" * 40))
    with pytest.warns(AliasRevisionWarning, match=r"set on timm:resnet18\.a1_in1k at revision aaaaaaaaaaaa"):
        assert two.get("@champion").revision == "c" * 40
    two.set_alias("champion", "timm:resnet18.a1_in1k")  # confirms the new revision: a move, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        two.get("@champion")
    assert two.alias_history("champion")[-1].old_revision == "a" * 40


def test_two_processes_moving_one_alias_at_once_both_land_in_order(tmp_path: Path) -> None:
    concurrent_moves(f"sqlite:///{tmp_path / 'shared.db'}")


def concurrent_moves(url: str) -> None:
    """Two processes move ``@champion`` at once, again and again (test_postgres.py runs this too).

    Each move records the target the other process left: no move is lost, none is recorded against
    a state that was no longer there, and the alias ends where the last move put it.
    """
    reg = Registry(url)
    for ref in ("timm:start", "timm:a", "timm:b"):
        reg.add(spec(ref))
    reg.set_alias("champion", "timm:start")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_alias_writer.move, args=(url, t, barrier)) for t in ("timm:a", "timm:b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]

    moves = reg.alias_history("champion")
    n = _alias_writer.MOVES
    # every move to a or b is recorded (nobody else moves it there, so each is a move); a move back
    # to start is none when the other process had just put it there
    assert [m.ref for m in moves].count("timm:a") == n and [m.ref for m in moves].count("timm:b") == n
    assert 1 + 2 * n <= len(moves) <= 1 + 4 * n
    for before, after in itertools.pairwise(moves):
        assert after.old_ref == before.ref  # unbroken: each move saw the target the other one left
    assert reg.get("@champion").ref == moves[-1].ref  # the last move won
    assert [m.event_id for m in moves] == sorted(m.event_id for m in moves)


def test_the_cli_sets_lists_shows_and_refuses_in_one_line(two: Registry) -> None:
    result = run("registry", "alias", "set", "champion", "timm:resnet18.a1_in1k")
    assert (
        result.exit_code == 0 and "@champion -> timm:resnet18.a1_in1k @ aaaaaaaaaaaa (set)" in result.stdout
    )
    assert run("registry", "alias", "set", "champion", "@champion").stdout.strip().endswith("(unchanged)")
    run("registry", "alias", "set", "champion", "timm:resnet34.a1_in1k")
    listed = json.loads(run("registry", "alias", "list", "--json").stdout)
    assert [(a["name"], a["ref"]) for a in listed] == [("champion", "timm:resnet34.a1_in1k")]
    history = json.loads(run("registry", "alias", "history", "champion", "--json").stdout)
    assert [(h["action"], h["old_ref"], h["ref"]) for h in history] == [
        ("set", None, "timm:resnet18.a1_in1k"),
        ("move", "timm:resnet18.a1_in1k", "timm:resnet34.a1_in1k"),
    ]
    shown = json.loads(run("registry", "show", "@champion", "--json").stdout)
    assert shown["ref"] == "timm:resnet34.a1_in1k" and shown["aliases"] == ["@champion"]
    table = run("registry", "alias", "history", "champion").stdout
    assert "timm:resnet18.a1_in1k @ aaaaaaaaaaaa" in table and "move" in table

    for args in (("registry", "show", "@champoin"), ("registry", "alias", "remove", "nobody")):
        bad = run(*args)
        assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "Did you mean: @champion?" in run("registry", "show", "@champoin").stderr
    two.remove("timm:resnet34.a1_in1k")
    dangling = run("registry", "show", "@champion")
    assert dangling.exit_code == 2 and "which was removed from the registry" in dangling.stderr
    assert run("registry", "alias", "remove", "champion").exit_code == 0
    assert json.loads(run("registry", "alias", "list", "--json").stdout) == []


def test_recommend_takes_aliases_and_runs_show_where_they_pointed(
    registry: Registry, image_folder: Path, tiny_image_models: list[str]
) -> None:
    first, second = tiny_image_models
    registry.set_alias("champion", first)
    result = recommend(
        image_folder, registry=registry, models=["@champion"], workers=0, baselines=False, bootstrap=0
    )
    assert [r.ref for r in result.ranking] == [first]
    registry.set_alias("champion", second)  # moved after the run: the run still says where it was

    record = load_run(result.run_id, registry=registry).to_dict()
    assert record["aliases"]["champion"]["ref"] == first
    shown = run("runs", "show", result.run_id)
    assert f"@champion -> {first}" in shown.stdout and "(when the run started)" in shown.stdout
    assert run("runs", "show", result.run_id, "--json").exit_code == 0
