"""``tlreg ui``: serve the read-only web page of the audit trail (:mod:`tlreg.cli.web`).

Starlette, Jinja2 and uvicorn are an optional extra (``tlreg[ui]``), imported when the command
runs, so ``tlreg --help`` stays light and a missing one is one line naming the install command.
The registry is opened read-only before the port is taken, and the port is bound here (not by
uvicorn), so a database that cannot be shown and a port in use are each one line and an exit
code. The address served is printed on stdout (``--port 0`` takes a free port): a script can read
it; everything else goes to stderr.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

import click
from tlreg.registry.errors import BadInputError

from .output import note, warn
from .state import State, pass_state

#: what ``tlreg[ui]`` installs (markupsafe comes with jinja2)
NEEDS = ("starlette", "jinja2", "markupsafe", "uvicorn")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; one clear error when the port is taken or not ours."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise BadInputError(
            f"Cannot serve on --host {host}: {exc.strerror}.",
            hint="Give an address or a name of this machine.",
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BadInputError(
                f"Port {port} on {host} is already in use.",
                hint="Pick another with --port (--port 0 takes a free one), or stop what listens there.",
            ) from None
        raise BadInputError(
            f"Cannot serve on {host}:{port}: {exc.strerror}.", hint="Pick another --host or --port."
        ) from None
    return sock


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on (loopback: this machine only).",
)
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: a free one)."
)
@click.option(
    "--db", metavar="URL", help="Registry database to show (default: tlreg --db, TLREG_DB, or the local one)."
)
@pass_state
def ui(state: State, host: str, port: int, db: str | None) -> None:
    """Serve a read-only web page of the audit trail: runs, run reports, diffs, models, aliases."""
    try:
        import uvicorn

        from .web.app import LOOPBACK_NAMES, create_app
    except ModuleNotFoundError as exc:
        if exc.name not in NEEDS:
            raise
        raise BadInputError(
            f"tlreg ui needs {exc.name}, which is not installed.", hint="pip install 'tlreg[ui]'"
        ) from None
    from tlreg.registry import Registry

    registry = Registry(db or state.db, read_only=True)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{bound}/"
    local = _loopback(host)
    allowed = [*LOOPBACK_NAMES, host] if local else None
    app = create_app(registry, allowed_hosts=allowed, debug=state.debug)
    if not local:
        warn(f"serving on {host}: anyone who can reach this machine on port {bound} can read the registry.")
    note(f"tlreg ui: {app.state.database} (read-only) on {url}; Ctrl+C stops it.", quiet=state.quiet)
    click.echo(url)
    config = uvicorn.Config(app, log_level="debug" if state.debug else "warning", access_log=state.debug)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        registry.engine.dispose()
