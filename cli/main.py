"""The ``tlreg`` command: global options, error handling, and the command groups.

Known errors (tlreg's own, and click's usage errors) become one line on stderr and the exit
code documented in the README; a traceback only with ``--debug`` or ``TLREG_DEBUG=1``. Python
warnings, tlreg's and its libraries', become one ``warning: ...`` line each (Python's form with
``--debug``).
Commands are imported when they run, so ``tlreg --version`` or ``tlreg registry list`` do not
pay for torch, timm and transformers.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

import click
from tlreg.registry import config
from tlreg.registry.errors import TlregError

from .examples import EXAMPLES, add_examples, epilog
from .state import State

#: command name -> "module:attribute", in the order ``tlreg --help`` lists them.
COMMANDS = {
    "recommend": "recommend_cmd:recommend",
    "finetune": "finetune_cmd:finetune",
    "registry": "registry_cmd:registry",
    "cache": "cache_cmd:cache",
    "estimators": "estimators_cmd:estimators",
    "history": "history_cmd:history",
    "runs": "runs_cmd:runs",
    "report": "runs_cmd:report",
    "ui": "ui_cmd:ui",
    "doctor": "doctor:doctor",
}


class TlregGroup(click.Group):
    """Loads commands on demand, and turns tlreg's errors into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return super().get_command(ctx, name)
        module, attribute = target.split(":")
        return add_examples(getattr(import_module(f".{module}", __package__), attribute), name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TlregError as exc:
            if _debug(ctx):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
        except Exception as exc:
            if _debug(ctx):
                raise
            click.echo(
                f"Error: {type(exc).__name__}: {_first_line(exc)} "
                "(run with --debug or TLREG_DEBUG=1 for the traceback)",
                err=True,
            )
            ctx.exit(1)


def _first_line(exc: BaseException) -> str:
    """An unexpected error's first line: the rest can be SQL with its parameters (SQLAlchemy), or
    pages of a library's advice, which --debug shows."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), "")


def _debug(ctx: click.Context) -> bool:
    state = ctx.find_object(State)
    return bool(state and state.debug) or config.debug()


@click.group(
    cls=TlregGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=epilog(EXAMPLES[""])
)
@click.option("--db", envvar="TLREG_DB", metavar="URL", help="Registry database (any SQLAlchemy URL).")
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress bars or notes on stderr (warnings still show)."
)
@click.option("--debug", is_flag=True, help="Show tracebacks (or set TLREG_DEBUG=1).")
@click.version_option(package_name="tlreg", prog_name="tlreg")  # read by --version only: no metadata scan
@click.pass_context
def cli(ctx: click.Context, db: str | None, quiet: bool, debug: bool) -> None:
    """tlreg: which pretrained model to fine-tune from, for this data, and why."""
    debug = debug or config.debug()  # TLREG_DEBUG is read in one place: tlreg.registry.config
    ctx.obj = State(db=db, quiet=quiet, debug=debug)
    if not debug:
        from .output import warnings_as_notes  # rich: not paid by --version and --help

        ctx.with_resource(warnings_as_notes())


def main() -> None:
    cli(prog_name="tlreg")


if __name__ == "__main__":
    sys.exit(main())
