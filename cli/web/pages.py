"""One function per page: read the request, ask :mod:`tlreg.advisor.audit.browse`, fill a template.

Every page has a stable address to paste into a review: a run's page is ``/runs/<full id>`` (an id
prefix redirects there), a comparison ``/diff/<a>/<b>``, a model's page ``/models/<ref>``, and the
runs list keeps its filters and sort in its query string. Functions are synchronous: Starlette
runs them in a worker thread, so a slow database or a verification does not stall other pages.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from tlreg.advisor.audit import browse
from tlreg.advisor.audit.compare import diff_runs
from tlreg.advisor.audit.records import load_run
from tlreg.advisor.audit.report import report_body
from tlreg.registry import Registry
from tlreg.registry.errors import BadInputError


def _registry(request: Request) -> Registry:
    return request.app.state.registry


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    templates = request.app.state.templates
    context.setdefault("title", "tlreg")
    context.update(database=request.app.state.database, wide=context.get("wide", False))
    return templates.TemplateResponse(request, template, context, status_code=status)


def error_page(
    request: Request,
    status: int,
    message: str,
    *,
    hint: str | None = None,
    close: list[str] = (),
    kind: str = "run",
) -> Response:
    """The page of an error: what went wrong, what to do, and links to what was probably meant."""
    return render(
        request,
        "error.html",
        status,
        title=f"tlreg: {status}",
        message=message,
        hint=hint,
        close=close,
        kind=kind,
    )


def home(request: Request) -> Response:
    return RedirectResponse("/runs", status_code=302)


def runs(request: Request) -> Response:
    raw = dict(request.query_params)
    try:
        query = browse.RunQuery.parse(raw)
    except BadInputError as exc:
        page = browse.find_runs(_registry(request), browse.RunQuery())
        return render(
            request, "runs.html", 400, title="tlreg: runs", page=page, raw=raw, error=str(exc), wide=True
        )
    page = browse.find_runs(_registry(request), query)
    return render(request, "runs.html", title="tlreg: runs", page=page, raw=raw, error=None, wide=True)


def run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    view = browse.view_run(_registry(request), run_id)
    if view.record.id != run_id:  # a prefix: the page's own address is the full id
        return RedirectResponse(request.url_for("run", run_id=view.record.id).path, status_code=302)
    body = Markup(report_body(view.record, throughput=view.throughput))  # escaped by the report itself
    return render(request, "run.html", title=f"tlreg run {view.record.id}", view=view, body=body)


def _same_origin(request: Request) -> bool:
    """A POST from this server's own page: its Origin (else Referer) names this host. A browser
    always sends one with a POST (``null`` from a sandboxed or privacy-sensitive page: refused)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # not a browser (curl, a test client): nothing of a user's to forge
    return urlsplit(origin).netloc == request.headers.get("host", "")


def verify(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    if not _same_origin(request):
        return error_page(request, 403, "Verification is started from this server's own run page only.")
    lock = request.app.state.verifying
    if not lock.acquire(blocking=False):
        hint = "One verification runs at a time: wait for it, then press the button again."
        return error_page(request, 409, "A verification is already running.", hint=hint)
    try:
        record = load_run(run_id, registry=_registry(request))
        result = browse.verify_without_writing(_registry(request), record.id)
    finally:
        lock.release()
    return render(request, "verify.html", title=f"tlreg: verify {record.id}", record=record, result=result)


def pick_diff(request: Request) -> Response:
    """``/diff?run=A&run=B`` (the runs list's checkboxes) or ``?a=A&b=B`` (a run page's form): to
    the comparison's own address."""
    chosen = [
        *request.query_params.getlist("run"),
        request.query_params.get("a"),
        request.query_params.get("b"),
    ]
    chosen = [c for c in chosen if c]
    if len(chosen) != 2:
        message = f"Pick two runs to compare ({len(chosen)} picked)."
        return error_page(request, 400, message, hint="Tick two runs in the list, then Compare.")
    a, b = chosen
    return RedirectResponse(request.url_for("diff", a=a, b=b).path, status_code=302)


def diff(request: Request) -> Response:
    reg = _registry(request)
    a, b = load_run(request.path_params["a"], registry=reg), load_run(request.path_params["b"], registry=reg)
    if (a.id, b.id) != (request.path_params["a"], request.path_params["b"]):
        return RedirectResponse(request.url_for("diff", a=a.id, b=b.id).path, status_code=302)
    result = diff_runs(a.id, b.id, registry=reg)
    return render(request, "diff.html", title=f"tlreg: {a.id} vs {b.id}", a=a, b=b, diff=result, wide=True)


def registry(request: Request) -> Response:
    view = browse.view_registry(_registry(request), tag=request.query_params.get("tag", ""))
    return render(request, "registry.html", title="tlreg: registry", view=view, wide=True)


def model(request: Request) -> Response:
    view = browse.view_model(_registry(request), request.path_params["ref"])
    return render(request, "model.html", title=f"tlreg: {view.ref}", view=view, wide=True)
