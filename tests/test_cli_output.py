"""How every command prints: whole identifiers, sane widths, one number format, no Python reprs,
warnings under --quiet, ``--json`` with snake_case keys and ISO times, examples in ``--help``,
shell completion. The terminal checks run the installed ``tlreg`` in a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import termios
from datetime import datetime
from pathlib import Path

import click
import pytest
from _report_showcase import MODELS, SKIP_REASON, SKIPPED, store_showcase_run
from click.testing import CliRunner
from tlreg.cli.main import cli
from tlreg.cli.output import warn
from tlreg.registry import Registry

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
REFS = [m[0] for m in MODELS] + [SKIPPED]


def run(*args: str, **kwargs: object):
    return CliRunner().invoke(cli, list(args), **kwargs)


def tlreg(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"NO_COLOR": "1"}  # no COLUMNS: conftest.isolated_home unsets it
    return subprocess.run(
        [shutil.which("tlreg"), *args], capture_output=True, text=True, env=env, timeout=300
    )


def in_terminal(*args: str, columns: int) -> str:
    """What the installed ``tlreg`` writes to a terminal ``columns`` wide (a pseudo-terminal)."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = os.environ | {"NO_COLOR": "1", "TERM": "xterm"}
    proc = subprocess.Popen([shutil.which("tlreg"), *args], stdin=side, stdout=side, stderr=side, env=env)
    os.close(side)
    out = b""
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            proc.kill()
            raise TimeoutError("tlreg did not finish")
        try:
            chunk = os.read(main, 1 << 16)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert proc.wait(30) == 0, out.decode()
    return ANSI.sub("", out.decode().replace("\r\n", "\n"))


def keep(name: str, text: str, tmp_path: Path) -> None:
    """Keep a captured terminal to look at (TLREG_SCREENSHOTS), else in the test's folder."""
    folder = Path(os.environ.get("TLREG_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


@pytest.mark.slow
def test_a_terminal_never_folds_a_ref(registry: Registry, tmp_path: Path) -> None:
    """rich folded every column at the terminal's width: a pinned hf ref came out in pieces."""
    run_id = store_showcase_run(registry)
    text = in_terminal("runs", "show", run_id, columns=100)
    keep("runs-show-100.txt", text, tmp_path)
    for ref in REFS:
        assert ref in text, ref
    assert "rank 5-95%" in text or "rank 5-95" in text.replace("\n", " ")
    words = set(SKIP_REASON.split())
    assert all(word in text for word in words)  # free text wraps at spaces, whole words


@pytest.mark.slow
def test_piped_tables_are_not_thousands_of_columns_wide(registry: Registry, tmp_path: Path) -> None:
    """Piped, the console was 4000 wide: a long skip reason made every row of its table 400+ wide."""
    run_id = store_showcase_run(registry)
    done = tlreg("runs", "show", run_id)
    assert done.returncode == 0, done.stderr
    keep("runs-show-piped.txt", done.stdout, tmp_path)
    rows = [line for line in done.stdout.splitlines() if line[:1] in "│┃┏┡└"]
    assert rows and max(len(line) for line in rows) < 250  # identifiers and numbers whole, text wrapped
    assert SKIP_REASON not in done.stdout and all(word in done.stdout for word in SKIP_REASON.split())
    for ref in REFS:
        assert ref in done.stdout


def test_one_number_format_and_no_python_reprs(registry: Registry) -> None:
    """``runs diff`` printed ``None -> ['pkg:*']``; ``runs show`` printed lists as Python lists."""
    a = store_showcase_run(registry, run_id="r-a", options={"models": None, "bootstrap": 50})
    b = store_showcase_run(registry, run_id="r-b", options={"models": ["pkg:*", "timm:*"], "bootstrap": 20})
    diff = run("runs", "diff", a, b)
    assert diff.exit_code == 0, diff.output
    assert "(not set) -> pkg:*, timm:*" in diff.stdout and "50 -> 20" in diff.stdout
    shown = run("runs", "show", b)
    assert "models=pkg:*, timm:*" in shown.stdout
    for out in (diff.stdout, shown.stdout):
        assert not re.search(r"\[\s*'|None\b|\{'", out), out
    # the same score prints the same way in every command: 4 significant digits
    assert "-0.312" in shown.stdout and "8.951" in shown.stdout and "46%" in shown.stdout


def test_warnings_are_one_line_and_not_notes(capsys: pytest.CaptureFixture[str]) -> None:
    """Python warnings went through note(quiet=...): --quiet dropped them with the notes."""
    import warnings

    from tlreg.cli.output import warnings_as_notes

    with warnings_as_notes(), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("the data folder has 3 unreadable images:\n" + "x" * 300, UserWarning, stacklevel=1)
    warn("a warning is one line: " + "y" * 300)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("warning: ") for line in lines)


def _keys(obj: object, path: str, bad: list[str], times: list[tuple[str, object]]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not re.fullmatch(r"[a-z0-9_]+", str(key)):
                bad.append(f"{path}.{key}")
            if str(key).endswith("_at") or key in ("created", "when", "time"):
                times.append((f"{path}.{key}", value))
            _keys(value, f"{path}.{key}", bad, times)
    elif isinstance(obj, list):
        for value in obj:
            _keys(value, f"{path}[]", bad, times)


@pytest.mark.slow
def test_json_everywhere_snake_case_and_iso_times(
    image_folder: Path, tiny_image_models: list[str], tmp_path: Path
) -> None:
    """doctor --json had keys like "database size (bytes)"; cache list --json gave epoch seconds."""
    done = run("recommend", str(image_folder), "--workers", "0", "--bootstrap", "5", "--json")
    assert done.exit_code == 0, done.output
    run_id = json.loads(done.stdout)["run_id"]
    docs = {"recommend": json.loads(done.stdout)}
    commands = [
        ["runs", "list"], ["runs", "show", run_id], ["runs", "diff", run_id, run_id], ["history", "list"],
        ["cache", "list"], ["doctor"], ["estimators", "list"], ["registry", "list"],
        ["report", run_id, "--out", str(tmp_path / "r.html")],
    ]  # fmt: skip
    for args in commands:
        out = run(*args, "--json")
        assert out.exit_code == 0, (args, out.output)
        docs[" ".join(args[:2])] = json.loads(out.stdout)
    bad: list[str] = []
    times: list[tuple[str, object]] = []
    for name, doc in docs.items():
        _keys(doc, name, bad, times)
    assert bad == []
    assert times and all(isinstance(v, str) and datetime.fromisoformat(v) for _, v in times if v is not None)
    assert docs["cache list"] and all("created_at" in e for e in docs["cache list"])


def _commands(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    ctx = click.Context(command)
    out = [(path, command)]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            out += _commands(command.get_command(ctx, name), [*path, name])
    return out


ACTIONS = {
    "cache prune",
    "cache clear",
    "registry remove",
    "registry alias remove",
}  # print nothing but a note on stderr
SERVERS = {"ui"}  # serve until stopped; stdout carries only the address served


def test_every_command_has_an_example_and_every_data_command_json() -> None:
    for path, command in _commands(cli, []):
        helped = run(*path, "--help")
        assert helped.exit_code == 0, path
        assert "Examples:" in helped.stdout and f"tlreg {' '.join(path)}".strip() in helped.stdout, path
        if not isinstance(command, click.Group) and " ".join(path) not in ACTIONS | SERVERS:
            assert "--json" in {o for p in command.params for o in p.opts}, path


@pytest.mark.slow
def test_shell_completion_as_the_readme_says() -> None:
    script = subprocess.run(
        [shutil.which("tlreg")],
        env=os.environ | {"_TLREG_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
    )
    assert script.returncode == 0 and "_tlreg_completion" in script.stdout and "complete " in script.stdout
    words = {"_TLREG_COMPLETE": "bash_complete", "COMP_WORDS": "tlreg runs ex", "COMP_CWORD": "2"}
    done = subprocess.run([shutil.which("tlreg")], env=os.environ | words, capture_output=True, text=True)
    assert "plain,export" in done.stdout.split()


def test_paths_and_names_print_as_they_are(registry: Registry) -> None:
    """stdout went through rich markup: "[/data]" in a path raised MarkupError, "[b]" vanished."""
    from tlreg.registry import RunStore
    from tlreg.registry.runs import Run, RunResult

    store = RunStore(registry.engine)
    store.start(Run(id="r-m", data_path="/data/[/data]/[b]x", n_samples=2, classes=["[red]a", ":smile:"]))
    row = {"rank": 1, "ref": "file:/m/[b]w.safetensors", "scores": {"logme": 1.0}, "combined": 1.0}
    store.finish(RunResult(run_id="r-m", best_ref=row["ref"], reason="[i]why[/i]", ranking=[row], detail={}))
    shown = run("runs", "show", "r-m")
    assert shown.exit_code == 0, shown.output
    for text in ("/data/[/data]/[b]x", "[red]a, :smile:", "file:/m/[b]w.safetensors", "Why: [i]why[/i]"):
        assert text in shown.stdout
