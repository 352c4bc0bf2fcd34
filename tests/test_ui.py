"""``tlreg ui``: the pages (through Starlette's test client) over runs recorded by ``recommend``, the
read-only guarantee, bad input, and one real server driven by headless Chromium.

The audit trail is made the way a team makes it: two real recommendations on tiny models (the
second with one candidate fewer, so the pick changes), an alias set and moved, a fine-tune's
lineage, a tag and a class folder whose names are HTML. The app is given the registry opened
read-only, as ``tlreg ui`` opens it.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pytest
from _report_showcase import RUN_ID as SHOWCASE
from _report_showcase import store_showcase_run
from starlette.testclient import TestClient
from test_report import PROBLEMS, Chromium, chromium_tab, open_in_chromium
from test_runs import _dead_pid, open_run
from tlreg.advisor import recommend
from tlreg.advisor.audit.records import load_run
from tlreg.advisor.cache import FeatureCache
from tlreg.cli.web.app import create_app, model_url, run_url
from tlreg.registry import Registry, RunStore
from tlreg.registry.errors import DatabaseReadOnlyError

EVIL = "<b>evil<i> & co"  # a class folder's name (a "/" cannot be in one)
EVIL_TAG = "<script>x</script>"
EVIL_FOLDER = "data <i>x & y"  # the data's folder


@dataclass
class Trail:
    registry: Registry  # the writable registry the runs were recorded in
    a: str  # every candidate
    b: str  # one candidate fewer: the pick changes
    models: list[str]
    url: str


@pytest.fixture
def trail(registry: Registry, image_folder: Path, tiny_image_models: list[str]) -> Trail:
    (image_folder / "class0").rename(image_folder / EVIL)
    data = image_folder.rename(image_folder.with_name(EVIL_FOLDER))
    resnet, vit = tiny_image_models
    a = recommend(data, registry=registry, workers=0, bootstrap=5)
    rest = [m for m in tiny_image_models if m != a.best.ref]
    b = recommend(data, registry=registry, workers=0, bootstrap=5, models=rest)
    registry.tag(resnet, add=["baseline", EVIL_TAG])
    registry.set_alias("champion", resnet)
    registry.set_alias("champion", vit)
    registry.set_parent(vit, resnet)
    url = registry.engine.url.render_as_string(hide_password=False)
    return Trail(registry, a.run_id, b.run_id, tiny_image_models, url)


@pytest.fixture
def client(trail: Trail) -> TestClient:
    return TestClient(create_app(Registry(trail.url, read_only=True)), follow_redirects=False)


def text(html: str) -> str:
    """The page's text as a reader sees it (``<wbr>`` break hints are not text)."""
    return html.replace("<wbr>", "")


def test_runs_page_lists_filters_and_sorts(trail: Trail, client: TestClient) -> None:
    page = client.get("/runs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'; style-src 'unsafe-inline'")
    html = text(page.text)
    assert html.index(trail.b) < html.index(trail.a)  # newest first
    assert f'href="{run_url(trail.a)}"' in html and "2 runs." in html
    assert EVIL_FOLDER not in page.text and escape(EVIL_FOLDER) in html  # paths are text, never markup
    record = load_run(trail.a, registry=trail.registry)
    assert f'href="{model_url(record.pick)}"' in html

    def shown(**query: str) -> list[str]:
        answer = client.get("/runs", params=query)
        assert answer.status_code == 200, answer.text
        return re.findall(r'name="run" value="([^"]+)"', answer.text)

    assert shown(user=record.run.user) == [trail.b, trail.a]
    assert shown(user="nobody") == []
    assert shown(fingerprint=record.run.fingerprint[:8]) == [trail.b, trail.a]
    assert shown(fingerprint="0000") == []
    assert shown(pick=record.pick.rsplit("/", 1)[-1]) == [trail.a]
    assert shown(status="failed") == []
    assert shown(since="1d") == [trail.b, trail.a] and shown(until="2000-01-01") == []
    assert shown(sort="id", order="asc") == sorted([trail.a, trail.b])
    assert shown(sort="id", order="desc") == sorted([trail.a, trail.b], reverse=True)
    sorted_page = client.get("/runs", params={"sort": "pick"}).text
    assert 'class="sorted"' in sorted_page and "sort=pick&amp;order=desc" in sorted_page  # the flip link

    bad = client.get("/runs", params={"since": "last tuesday"})
    assert (
        bad.status_code == 400 and "--since &#39;last tuesday&#39; is neither a date nor an age" in bad.text
    )
    assert client.get("/runs", params={"sort": "<x>"}).status_code == 400
    assert client.get("/", follow_redirects=True).url.path == "/runs"


def test_run_page_is_the_report_live_with_verify_and_compare(trail: Trail, client: TestClient) -> None:
    record = load_run(trail.a, registry=trail.registry)
    page = client.get(run_url(trail.a))
    assert page.status_code == 200
    html = text(page.text)
    assert f"Pick: {record.pick}" in html and record.result.reason.split(":")[0] in html
    for row in record.ranking():
        assert row["ref"] in html and f"{row['p_best']:.0%}" in html
        assert f'href="{model_url(row["ref"])}"' in html
    for chart in ("scores-0", "scores-combined", "rank-intervals", "pareto-params"):
        assert f'id="{chart}"' in html
    assert "How to transfer it" in html and record.run.fingerprint in html
    assert all(escape(item) in html for item in record.run.sample_ids)
    assert f'action="{run_url(trail.a)}/verify"' in html and 'method="post"' in html
    assert f'<option value="{trail.b}">{trail.b} · same data' in html
    assert "<script" not in html and not re.search(r"(src|href)=\"https?:", html)
    assert 'content="default-src' in html  # the CSP is in the page too, as in the report

    # class names and paths are escaped wherever they show, never markup
    assert EVIL not in page.text and "&lt;b&gt;evil&lt;i&gt; &amp; co" in html
    assert EVIL_FOLDER not in page.text and escape(EVIL_FOLDER) in html

    prefix = client.get(run_url(trail.a[:17]))
    assert prefix.status_code == 302 and prefix.headers["location"] == run_url(trail.a)


def test_an_unknown_run_is_a_404_page_with_close_matches(trail: Trail, client: TestClient) -> None:
    typo = trail.a[:-1] + ("0" if trail.a[-1] != "0" else "1")
    page = client.get(run_url(typo))
    assert page.status_code == 404
    assert f"No run with id &#39;{typo}&#39;" in page.text and f'href="{run_url(trail.a)}"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert client.get("/no/such/page").status_code == 404


def test_two_runs_side_by_side(trail: Trail, client: TestClient) -> None:
    a, b = load_run(trail.a, registry=trail.registry), load_run(trail.b, registry=trail.registry)
    ticked = client.get("/diff", params=[("run", trail.a), ("run", trail.b)])
    assert ticked.status_code == 302 and ticked.headers["location"] == f"/diff/{trail.a}/{trail.b}"
    assert client.get("/diff", params={"run": trail.a}).status_code == 400
    page = client.get(f"/diff/{trail.a}/{trail.b}")
    assert page.status_code == 200
    html = text(page.text)
    assert f"The pick changed: {a.pick} → {b.pick}" in html
    assert f'only in A: <a href="{model_url(a.pick)}">{a.pick}</a>' in html
    assert "The same data sample" in html and 'id="scores"' in html and 'id="ranks"' in html
    assert "<h2>Combination</h2>" in html  # estimators and aggregation, where the runs' differ
    by_prefix = client.get(f"/diff/{trail.a[:17]}/{trail.b}")
    assert by_prefix.status_code == 302 and by_prefix.headers["location"] == f"/diff/{trail.a}/{trail.b}"


def test_registry_page_entries_tags_aliases_and_lineage(trail: Trail, client: TestClient) -> None:
    resnet, vit = trail.models
    page = client.get("/registry")
    assert page.status_code == 200
    html = text(page.text)
    assert EVIL_TAG not in page.text and "&lt;script&gt;x&lt;/script&gt;" in html
    entries = html.split('id="entries"')[1].split("</table>")[0]
    assert resnet in entries and vit in entries
    aliases = html.split('id="aliases"')[1].split("</table>")[0]
    assert "@champion" in aliases and vit in aliases and resnet not in aliases
    moves = html.split('id="alias-history"')[1].split("</table>")[0]
    assert moves.index("move") < moves.index("set")  # newest first
    lineage = html.split('id="lineage"')[1]
    assert lineage.index(resnet) < lineage.index(vit) and "└" in lineage
    tagged = client.get("/registry", params={"tag": "baseline"}).text
    assert resnet in text(tagged.split('id="entries"')[1].split("</table>")[0])
    assert vit not in text(tagged.split('id="entries"')[1].split("</table>")[0])


def test_model_page_runs_outcomes_history_and_removed_models(trail: Trail, client: TestClient) -> None:
    a = load_run(trail.a, registry=trail.registry)
    pick = a.pick
    page = client.get(model_url(pick))
    assert page.status_code == 200
    html = text(page.text)
    runs = html.split('id="model-runs"')[1].split("</table>")[0]
    assert trail.a in runs and trail.b not in runs and "this model" in runs and "1 of 2" in runs
    assert "add" in html.split('id="events"')[1]
    vit = trail.models[1]
    assert "@champion" in text(client.get(model_url(vit)).text)
    assert "@champion" in text(client.get("/models/@champion").text)

    other = next(m for m in trail.models if m != pick)
    unknown = client.get(model_url(other + "x"))
    assert unknown.status_code == 404 and f'href="{model_url(other)}"' in unknown.text

    trail.registry.remove(pick)  # a writer removes it; the page still tells its story
    gone = client.get(model_url(pick))
    assert (
        gone.status_code == 200 and 'id="missing"' in gone.text and "removed from the registry" in gone.text
    )
    assert trail.a in text(gone.text).split('id="model-runs"')[1]


def _dump(url: str) -> list[str]:
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return list(conn.iterdump())


def test_verify_recomputes_and_writes_nothing(trail: Trail, client: TestClient) -> None:
    before = _dump(trail.url)
    cache = FeatureCache()
    assert cache.clear() > 0  # every forward pass must run again, into a temporary folder
    page = client.post(f"{run_url(trail.a)}/verify")
    assert page.status_code == 200, page.text
    assert 'id="verdict"' in page.text and "Reproduced" in page.text
    assert list(cache.entries()) == [] and _dump(trail.url) == before
    assert client.get(f"{run_url(trail.a)}/verify").status_code == 405
    for origin in ("http://evil.example", "null"):  # another site; a sandboxed frame
        forged = client.post(f"{run_url(trail.a)}/verify", headers={"origin": origin})
        assert forged.status_code == 403 and "own run page" in forged.text


@pytest.mark.databases("sqlite", "postgresql")
def test_the_ui_cannot_write(registry: Registry) -> None:
    store = RunStore(registry.engine)
    open_run(store, "20261201-000000-dead00")  # a run whose process died: closing it is a write
    with registry.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE run SET pid = {_dead_pid()}")
    url = registry.engine.url.render_as_string(hide_password=False)
    app = create_app(Registry(url, read_only=True))
    client = TestClient(app)
    assert client.get("/runs/20261201-000000-dead00").status_code == 200  # shown, not closed
    assert client.get("/runs").status_code == 200 and client.get("/registry").status_code == 200
    assert store.get("20261201-000000-dead00")[0].status == "running"
    with pytest.raises(DatabaseReadOnlyError), app.state.registry.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM run")
    for path in ("/runs", "/runs/20261201-000000-dead00", "/registry", "/diff/a/b", "/models/timm:x"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert client.request(method, path).status_code == 405, (method, path)


# -- the command --------------------------------------------------------------------------------


def tlreg(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tlreg.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_a_database_that_cannot_be_shown_is_one_line(tmp_path: Path, registry: Registry) -> None:
    missing = tmp_path / "nowhere" / "registry.db"
    done = tlreg("ui", "--db", f"sqlite:///{missing}", "--port", "0")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == done.stderr.strip().splitlines()[0]
    assert f"{missing} does not exist" in done.stderr and not (tmp_path / "nowhere").exists()

    url = registry.engine.url.render_as_string(hide_password=False)
    with registry.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    done = tlreg("ui", "--db", url, "--port", "0")
    assert (
        done.returncode == 1 and "written by a newer tlreg" in done.stderr and "Traceback" not in done.stderr
    )


def test_without_the_ui_extra_it_says_what_to_install(registry: Registry) -> None:
    code = "import sys; sys.modules['uvicorn'] = None; from tlreg.cli.main import main; main()"
    done = subprocess.run([sys.executable, "-c", code, "ui"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "Error: tlreg ui needs uvicorn, which is not installed. pip install 'tlreg[ui]'"
    )


@pytest.fixture
def server(trail: Trail) -> tuple[str, subprocess.Popen]:
    """``tlreg ui --port 0`` as a user starts it; (the address it prints, the process)."""
    store_showcase_run(trail.registry)  # long refs, flags, ties: the hard cases of the layout
    proc = subprocess.Popen(
        [sys.executable, "-m", "tlreg.cli.main", "ui", "--db", trail.url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
    yield url, proc
    proc.send_signal(signal.SIGINT)
    proc.wait(30)


def test_a_port_in_use_is_one_line(server: tuple[str, subprocess.Popen]) -> None:
    url, _ = server
    port = url.rstrip("/").rsplit(":", 1)[1]
    done = tlreg("ui", "--port", port)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        f"Error: Port {port} on 127.0.0.1 is already in use. "
        "Pick another with --port (--port 0 takes a free one), or stop what listens there."
    )


def test_the_server_answers_only_to_loopback_names(server: tuple[str, subprocess.Popen]) -> None:
    url, _ = server
    with urllib.request.urlopen(url + "runs", timeout=30) as answer:
        assert answer.status == 200 and "no-store" in answer.headers["cache-control"]
    rebound = urllib.request.Request(url + "runs", headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(rebound, timeout=30)
    assert info.value.code == 400


def wait_for_load(browser: Chromium, *, timeout: float) -> None:
    """Until the tab fires its load event (a verification recomputes a run: it may take a while)."""
    end = time.monotonic() + timeout
    while not any(e.get("method") == "Page.loadEventFired" for e in browser.events):
        try:
            browser.events.append(browser._read(5))
        except TimeoutError:
            if time.monotonic() > end:
                raise


@pytest.mark.slow
def test_the_verify_button_works_in_a_browser(
    server: tuple[str, subprocess.Popen], trail: Trail, tmp_path: Path
) -> None:
    """A browser's POST carries its Origin (``null`` under a no-referrer policy, which the page once
    sent, so the button was refused on its own page): the verification runs and answers."""
    url, _ = server
    with chromium_tab(tmp_path / "profile") as (browser, session):
        browser.call("Page.navigate", {"url": url + run_url(trail.a)[1:]}, session=session)
        browser.wait_for("Page.loadEventFired")
        browser.events.clear()
        click = "document.querySelector('#verify button').click()"
        browser.call("Runtime.evaluate", {"expression": click}, session=session)
        wait_for_load(browser, timeout=300)
        read = "document.title + '\\n' + document.body.innerText"
        page = browser.call("Runtime.evaluate", {"expression": read, "returnByValue": True}, session=session)
        problems = [e for e in browser.events if e.get("method") in PROBLEMS]
    text = page["result"]["value"]
    assert problems == [] and text.startswith(f"tlreg: verify {trail.a}"), (problems, text)
    assert "Reproduced" in text


@pytest.mark.slow
@pytest.mark.parametrize("width", [1400, 400])
def test_pages_in_chromium_fit_and_raise_nothing(
    server: tuple[str, subprocess.Popen], trail: Trail, tmp_path: Path, width: int
) -> None:
    url, _ = server
    pages = {"runs": "runs", "run": run_url(trail.a)[1:], "showcase": run_url(SHOWCASE)[1:]}
    pages |= {
        "diff": f"diff/{trail.a}/{trail.b}",
        "registry": "registry",
        "model": model_url(trail.models[0])[1:],
    }
    shots = Path(os.environ.get("TLREG_UI_SHOTS") or tmp_path)  # a folder to look at them in
    shots.mkdir(parents=True, exist_ok=True)
    for name, path in pages.items():
        problems, layout, png = open_in_chromium(url + path, tmp_path / f"profile-{name}", width=width)
        (shots / f"{name}-{width}.png").write_bytes(png)
        assert problems == [], (name, problems)
        assert layout["scroll_width"] <= layout["vw"] and layout["overflowing"] == [], (name, layout)
