"""The HTML report: its content, its charts, that it is self-contained, and how Chromium renders it.

The browser check drives a real headless Chromium over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: no port, nothing on the network): it loads the file, collects every
console message, uncaught exception and browser log entry (a Content-Security-Policy violation,
such as the page trying to load something from elsewhere, is a log entry at level "error"), asks
the page for its charts' rendered sizes, and takes a full-page screenshot. It skips when
``chromium`` is not on PATH (CI installs Debian's package in ``.ci/run``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import time
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from test_runs import invoke
from tlreg.advisor import recommend
from tlreg.advisor.audit.records import load_run
from tlreg.advisor.audit.report import render_report, write_report
from tlreg.advisor.audit.svg import Point, pareto_front, short
from tlreg.advisor.rank import DEFAULT_ESTIMATORS
from tlreg.registry import Registry, RunStore
from tlreg.registry.errors import BadInputError
from tlreg.registry.runs import Run, RunResult

CHARTS = [
    *(f"scores-{i}" for i in range(len(DEFAULT_ESTIMATORS["classification"]))),
    "scores-combined",
    "rank-intervals",
    "pareto-params",
]


class Chromium:
    """Headless Chromium driven over the DevTools protocol on fds 3 (to it) and 4 (from it)."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()

        def child() -> None:
            a, b = os.dup(to_r), os.dup(from_w)  # out of the way first: the pipes may be fds 3 and 4
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        flags += ["--disable-component-update", "--no-first-run", f"--user-data-dir={profile}"]
        self.proc = subprocess.Popen(
            [exe, *flags, "--remote-debugging-pipe", "--window-size=1100,1400", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child,
            close_fds=False,
        )
        os.close(to_r)
        os.close(from_w)
        self.out, self.inp, self.buf, self.last, self.events = to_w, from_r, b"", 0, []

    def _read(self, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while b"\0" not in self.buf:
            if not select.select([self.inp], [], [], max(end - time.monotonic(), 0))[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the pipe")
            self.buf += chunk
        message, _, self.buf = self.buf.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        self.last += 1
        message = {"id": self.last, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read(60)
            if answer.get("id") == self.last:
                assert "error" not in answer, (method, answer["error"])
                return answer["result"]
            self.events.append(answer)

    def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._read(60))

    def close(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, EOFError):
            self.call("Browser.close")  # it may close the pipe before it answers
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.out)
        os.close(self.inp)


def open_in_chromium(page: Path, profile: Path) -> tuple[list[dict], list[list], bytes]:
    """(problems reported while loading, [id, width, height] of each chart, a full-page PNG)."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not on PATH (apt-get install chromium; CI does it in .ci/run)")
    browser = Chromium(exe, profile)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": page.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        script = (
            "JSON.stringify([...document.querySelectorAll('svg.chart')]"
            ".map(e => { const r = e.getBoundingClientRect(); return [e.id, r.width, r.height]; }))"
        )
        value = browser.call(
            "Runtime.evaluate", {"expression": script, "returnByValue": True}, session=session
        )
        shot = browser.call("Page.captureScreenshot", {"captureBeyondViewport": True}, session=session)
        kinds = ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")
        problems = [e for e in browser.events if e.get("method") in kinds]
        return problems, json.loads(value["result"]["value"]), base64.b64decode(shot["data"])
    finally:
        browser.close()


def ringed(html: str, chart_id: str) -> set[str]:
    """The models marked as on the Pareto front in one scatter (from their tooltips)."""
    svg = re.search(rf'<svg class="chart" id="{chart_id}".*?</svg>', html, re.S).group(0)
    tips = re.findall(r'<circle class="point \w+ pareto"[^>]*><title>(.*?): ', svg)
    return {unescape(t) for t in tips}


@pytest.fixture
def done_run(registry: Registry, image_folder: Path, tiny_image_models: list[str]) -> str:
    return recommend(image_folder, registry=registry, workers=0, bootstrap=20).run_id


def test_report_shows_the_decision_and_is_self_contained(
    registry: Registry, done_run: str, tmp_path: Path
) -> None:
    record = load_run(done_run, registry=registry)
    (tmp_path / "out").mkdir()
    path = write_report(done_run, tmp_path / "out" / "report.html", registry=registry)
    html = path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # written atomically: no temporary left
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"https?:|//|src=|href=|url\(|@import", html)
    assert "<script" not in html and "default-src 'none'" in html
    for chart in CHARTS:
        assert f'id="{chart}"' in html
    ranked = record.ranking()
    points = [Point(r["ref"], r["params"], r["combined"]) for r in ranked]
    front = {points[i].label for i in pareto_front(points, maximize_x=False)}
    assert ringed(html, "pareto-params") == front
    assert f"Pick: {record.pick}" in html
    for row in record.ranking():
        assert row["ref"] in html and f"{row['p_best']:.0%}" in html
    for c in record.candidates:
        assert c.ref in html
        assert c.revision is None or c.revision in html
    for key in ("torch", "timm", "tlreg"):
        assert record.run.environment[key] in html
    assert record.run.fingerprint in html and record.run.user in html and record.run.host in html
    assert record.run.sample_ids[0] in html


def test_report_without_intervals_says_so(registry: Registry, image_folder: Path, tiny_image_models) -> None:
    run_id = recommend(image_folder, registry=registry, workers=0, bootstrap=0).run_id
    html = render_report(load_run(run_id, registry=registry))
    assert 'id="no-intervals"' in html and 'id="rank-intervals"' not in html
    assert "no intervals are shown" in html


def test_a_cached_model_shows_the_throughput_measured_by_the_run_that_embedded_it(
    registry: Registry, image_folder: Path, tiny_image_models: list[str], tmp_path: Path
) -> None:
    first = recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=0)
    second = recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=0)
    assert all(r.from_cache for r in second.ranking)
    html = write_report(second.run_id, tmp_path / "r.html", registry=registry).read_text()
    assert 'id="pareto-throughput"' in html
    for row in first.ranking:
        assert f"{row.samples_per_s:.1f} samples/s as measured by run {first.run_id}" in html


def test_text_is_escaped_and_a_failed_run_still_reports(registry: Registry) -> None:
    store = RunStore(registry.engine)
    store.start(Run(id="r-x", data_path="/data/<script>alert(1)</script>", n_samples=3))
    store.fail("r-x", "RuntimeError: <b>bad</b>")
    html = render_report(load_run("r-x", registry=registry))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bad&lt;/b&gt;" in html and "has no result" in html


def test_write_report_is_atomic(
    registry: Registry, done_run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "report.html"
    target.write_text("the previous report")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(done_run, target, registry=registry)
    assert target.read_text() == "the previous report"
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]
    monkeypatch.undo()
    with pytest.raises(BadInputError, match="does not exist"):
        write_report(done_run, tmp_path / "missing" / "r.html", registry=registry)
    with pytest.raises(BadInputError, match="is a folder"):
        write_report(done_run, tmp_path, registry=registry)


def test_report_command(registry: Registry, done_run: str, tmp_path: Path) -> None:
    out = invoke("report", done_run[:17], "--out", str(tmp_path / "r.html"))
    assert out.exit_code == 0, out.output
    assert out.stdout.strip() == str(tmp_path / "r.html") and (tmp_path / "r.html").stat().st_size > 5000
    missing = invoke("report", done_run)
    assert missing.exit_code == 2 and "--out" in missing.output


def test_pareto_front_and_labels() -> None:
    pts = [Point("a", 10, 0.9), Point("b", 100, 0.95), Point("c", 50, 0.5), Point("d", 10, 0.7)]
    assert [pts[i].label for i in pareto_front(pts, maximize_x=False)] == ["a", "b"]  # few params, high score
    assert [pts[i].label for i in pareto_front(pts, maximize_x=True)] == ["b"]  # fastest and best
    fast = [Point("slow-good", 5, 0.9), Point("fast-bad", 500, 0.2), Point("mid", 50, 0.1)]
    assert [fast[i].label for i in pareto_front(fast, maximize_x=True)] == ["slow-good", "fast-bad"]
    assert short("hf:org/name@" + "a" * 40) == "hf:org/name"
    assert short("local-dir:/very/long/path/to/the/models/resnet") == "local-dir:…/resnet"
    assert len(short("timm:convnext_tiny.fb_in22k_ft_in1k_384")) == 25


@pytest.mark.slow
def test_report_renders_in_chromium(registry: Registry, done_run: str, tmp_path: Path) -> None:
    page = write_report(done_run, tmp_path / "report.html", registry=registry)
    problems, charts, png = open_in_chromium(page, tmp_path / "profile")
    assert problems == []
    sizes = {chart_id: (w, h) for chart_id, w, h in charts}
    assert set(CHARTS) <= set(sizes) and "pareto-throughput" in sizes
    assert all(w > 300 and h > 50 for w, h in sizes.values())
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    (tmp_path / "report.png").write_bytes(png)


@pytest.mark.slow
def test_the_chromium_check_catches_problems(tmp_path: Path) -> None:
    """The check above can fail: a script error and a blocked external image are both reported."""
    html = _page_with_problems()
    page = tmp_path / "bad.html"
    page.write_text(html)
    problems, charts, _ = open_in_chromium(page, tmp_path / "profile")
    text = json.dumps(problems)
    assert "violates the following Content Security Policy" in text and "example.invalid" in text
    assert any(p["method"] == "Runtime.consoleAPICalled" and p["params"]["type"] == "error" for p in problems)
    assert charts == []


def _page_with_problems() -> str:
    return (
        "<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
        "<img src='http://example.invalid/x.png'><script>console.error('boom')</script></body></html>"
    )


def test_report_html_has_no_external_reference_even_for_odd_refs(registry: Registry) -> None:
    store = RunStore(registry.engine)
    store.start(Run(id="r-y", data_path="/d", n_samples=2))
    ranking = [
        {
            "rank": 1,
            "ref": "hf:org/m@" + "b" * 40,
            "revision": "b" * 40,
            "scores": {"logme": 1.0},
            "combined": 1.0,
        }
    ]
    store.finish(
        RunResult(run_id="r-y", best_ref=ranking[0]["ref"], ranking=ranking, detail={"estimators": ["logme"]})
    )
    html = render_report(load_run("r-y", registry=registry))
    assert not re.search(r"https?://", html) and 'id="no-intervals"' in html
