"""The application: routes, the headers every answer carries, error pages, and the templates.

Read-only by construction, in three layers: the registry is opened read-only (its connection
refuses writes, :func:`tlreg.registry.db.open_read_only`); every route answers GET only, except
"verify", a POST that recomputes a run and writes nothing (:func:`~tlreg.advisor.audit.browse.
verify_without_writing`); and no page has a form that asks for a change. Every answer carries the
HTML report's Content-Security-Policy (no script, nothing loaded from elsewhere; forms post only to
this server, no framing). Served on loopback, a request must name a loopback host (a page elsewhere
cannot reach the server through DNS rebinding), and a POST must come from this server's own pages.
Templates escape everything they are given: a class name or a path with HTML in it shows as text.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tlreg.advisor.audit.browse import default_order
from tlreg.advisor.audit.records import shown
from tlreg.advisor.audit.report import breakable
from tlreg.advisor.audit.style import CSP, CSS
from tlreg.advisor.audit.svg import fmt
from tlreg.advisor.result import plain
from tlreg.registry import Registry
from tlreg.registry.db import database_name
from tlreg.registry.errors import BadInputError, DatabaseError, TlregError

from . import pages

HEADERS = {
    "Content-Security-Policy": f"{CSP}; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # not no-referrer: under it a browser sends "Origin: null" with the page's own POST (verify)
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]

UI_CSS = "\n".join(
    [
        CSS,
        "main.wide{max-width:1400px}",
        "h1 .mono{font-size:17px}h1.ref{font-size:18px;overflow-wrap:anywhere}",
        "a{color:#3451b2;text-decoration:none}a:hover{text-decoration:underline}",
        "nav.top{display:flex;flex-wrap:wrap;gap:4px 18px;align-items:baseline;padding:0 0 10px;"
        "margin:0 0 14px;border-bottom:1px solid #e2e5ea}",
        "nav.top b{font-size:16px}nav.top .db{margin-left:auto;color:#5b6472;font-size:12px;"
        "overflow-wrap:anywhere}",
        "form.filters{display:flex;flex-wrap:wrap;gap:6px 10px;align-items:end;margin:8px 0}",
        "form.filters label{display:flex;flex-direction:column;font-size:12px;color:#5b6472}",
        "input,select,button{font:inherit;font-size:13px;padding:3px 6px;max-width:100%}",
        "input[type=text]{width:11em}",
        "button{cursor:pointer;border:1px solid #9aa3b2;background:#f3f5f8;border-radius:4px}",
        ".actions{display:flex;flex-wrap:wrap;gap:8px 20px;align-items:center;margin:10px 0}",
        ".actions form{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:0;min-width:0;"
        "max-width:100%}",
        "th a{color:inherit}th.sorted{background:#e6eaf2}",
        ".pager{margin:8px 0}.pager a,.pager b{margin-right:8px}",
        ".error{background:#fdf1ef;border-left:4px solid #b71c1c;padding:8px 12px;margin:8px 0;"
        "overflow-wrap:anywhere}",
        ".ok{color:#1b5e20;font-weight:600}",
        "ul.tree{list-style:none;padding-left:18px;margin:2px 0}ul.tree.root{padding-left:0}",
        "ul.tree li{overflow-wrap:anywhere}",
        "td.changed{background:#fff4d6}td.id{white-space:nowrap}",
        "table.kv td:first-child{white-space:nowrap;width:1%}table.kv td{overflow-wrap:anywhere}",
        ".sides{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));"
        "gap:8px 24px}",
        "select{max-width:min(28em,100%);min-width:0}",
    ]
)


def run_url(run_id: str) -> str:
    return f"/runs/{quote(run_id, safe='')}"


def model_url(ref: str) -> str:
    """A model's page; the ref's ``/`` are escaped too, so a path in a ref stays one URL segment
    (``..`` in it can never be read as a step up)."""
    return f"/models/{quote(ref, safe=':@')}"


def query_url(path: str, params: Mapping[str, Any]) -> str:
    text = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{text}" if text else path


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tlreg.cli.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(run_url=run_url, model_url=model_url, query_url=query_url, css=Markup(UI_CSS))
    env.globals["default_order"] = default_order
    env.filters.update(
        when=shown,
        num=lambda v: "-" if v is None else fmt(v) if isinstance(v, float) else str(v),
        pct=lambda v: "-" if v is None else f"{v:.0%}",
        rev=lambda v: (v or "unpinned")[:12],
        wrap=lambda v: Markup(breakable("" if v is None else str(v))),
        yesno=lambda v: {True: "yes", False: "no"}.get(v, "-"),
        plain=lambda v: plain(v) or "-",
    )
    return env


class _Guard:
    """Adds :data:`HEADERS` to every answer, and turns an unexpected error into a page of one line
    (and one line on stderr), both of which Starlette's own error page would go without."""

    def __init__(self, app: ASGIApp, *, debug: bool = False) -> None:
        self.app, self.debug = app, debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception as exc:
            if self.debug or started:
                raise
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            message = f"{type(exc).__name__}: {first}"
            print(f"tlreg ui: {scope['method']} {scope['path']}: {message}", file=sys.stderr)
            hint = "tlreg --debug ui prints the traceback."
            response = pages.error_page(Request(scope), 500, message, hint=hint)
            await response(scope, receive, with_headers)


def _status(exc: TlregError) -> int:
    if isinstance(exc, LookupError):
        return 404
    if isinstance(exc, BadInputError):
        return 400
    return 503 if isinstance(exc, DatabaseError) else 500


async def _tlreg_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TlregError)
    close = getattr(exc, "close_matches", [])
    kind = "model" if request.url.path.startswith("/models/") else "run"
    return pages.error_page(request, _status(exc), exc.message, hint=exc.hint, close=close, kind=kind)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    what = {404: "There is no such page.", 405: "This page only shows: it takes no changes."}
    return pages.error_page(request, exc.status_code, what.get(exc.status_code, str(exc.detail)))


def create_app(
    registry: Registry, *, allowed_hosts: list[str] | None = None, debug: bool = False
) -> Starlette:
    """The web application over ``registry`` (open it read-only); ``allowed_hosts``: the Host names
    a request may carry (None: any, for tests and non-loopback serving)."""
    routes = [
        Route("/", pages.home),
        Route("/runs", pages.runs),
        Route("/runs/{run_id}", pages.run),
        Route("/runs/{run_id}/verify", pages.verify, methods=["POST"]),
        Route("/diff", pages.pick_diff),
        Route("/diff/{a}/{b}", pages.diff),
        Route("/registry", pages.registry),
        Route("/models/{ref:path}", pages.model),
    ]
    middleware = [Middleware(_Guard, debug=debug)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    handlers: dict[Any, Any] = {TlregError: _tlreg_error, HTTPException: _http_error}
    app = Starlette(debug=debug, routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.registry = registry
    app.state.database = database_name(registry.engine)
    app.state.templates = Jinja2Templates(env=_environment())
    app.state.verifying = threading.Lock()
    return app
