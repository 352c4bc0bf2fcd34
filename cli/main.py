"""The ``tlreg`` command: global options, error handling, and the command groups.

Known errors (tlreg's own, and click's usage errors) become one line on stderr and the exit
code documented in the README; a traceback only with ``--debug`` or ``TLREG_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from typing import Any

import click
from tlreg.registry.errors import TlregError

from .cache_cmd import cache
from .doctor import doctor
from .estimators_cmd import estimators
from .history_cmd import history
from .recommend_cmd import recommend
from .registry_cmd import registry
from .state import State


class TlregGroup(click.Group):
    """Turns tlreg's errors into one line and an exit code."""

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
                f"Error: {type(exc).__name__}: {exc} (run with --debug or TLREG_DEBUG=1 for the traceback)",
                err=True,
            )
            ctx.exit(1)


def _debug(ctx: click.Context) -> bool:
    state = ctx.find_object(State)
    return bool(state and state.debug) or os.environ.get("TLREG_DEBUG", "").lower() in ("1", "true", "yes")


@click.group(cls=TlregGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="TLREG_DB", metavar="URL", help="Registry database (any SQLAlchemy URL).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or notes on stderr.")
@click.option("--debug", is_flag=True, envvar="TLREG_DEBUG", help="Show tracebacks.")
@click.version_option(version("tlreg"), "--version", prog_name="tlreg")
@click.pass_context
def cli(ctx: click.Context, db: str | None, quiet: bool, debug: bool) -> None:
    """tlreg: which pretrained model to fine-tune from, for this data, and why."""
    ctx.obj = State(db=db, quiet=quiet, debug=debug)


cli.add_command(recommend)
cli.add_command(registry)
cli.add_command(cache)
cli.add_command(estimators)
cli.add_command(history)
cli.add_command(doctor)


def main() -> None:
    cli(prog_name="tlreg")


if __name__ == "__main__":
    sys.exit(main())
