"""The console at /ui in a real browser (Playwright driving Debian's chromium) against a real
``gemrec serve`` subprocess, and its graphs read back by NetworkX."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gemrec.data.store import Dataset
from gemrec.models.svd import PureSVD
from gemrec.serve.ui._graphs import explanation_graph, to_graphml
from gemrec.tracking import record_run
from tests.serve._process import free_port, serve_command, wait_until

SRC = str(Path(__file__).resolve().parents[2] / "src")
CHROMIUM = "/usr/bin/chromium"
SCREENS = Path(__file__).resolve().parents[2] / "test-output" / "screens"


def test_explanation_graph_round_trips_through_networkx() -> None:
    nx = pytest.importorskip("networkx")
    explanation = {
        "user_id": "u1",
        "item_id": "i9",
        "paths": [
            {"via_item_id": "i2", "user_event": "purchase", "user_weight": 5.0, "co_users": 3,
             "similarity": 0.5, "weight": 2.5},
            {"via_item_id": "i4", "user_event": "view", "user_weight": 1.0, "co_users": 0,
             "similarity": 0.0, "weight": 0.001},
        ],
    }  # fmt: skip
    graph = explanation_graph(explanation)
    g = nx.node_link_graph(json.loads(json.dumps(graph)))
    h = nx.read_graphml(io.BytesIO(to_graphml(graph).encode()))
    for read in (g, h):
        assert set(read.nodes) == {"user:u1", "item:i2", "item:i4", "item:i9"}
        assert read.edges["user:u1", "item:i2"]["weight"] == 5.0
        assert read.edges["item:i2", "item:i9"]["co_users"] == 3
        assert read.nodes["item:i9"]["role"] == "target"
    assert h.nodes["item:i2"]["path_weight"] == 2.5


def test_console_without_a_model_shows_runs_and_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from gemrec.serve.ui import create_console_app

    monkeypatch.setenv("GEMREC_TRACKING_URI", f"sqlite:///{tmp_path / 'absent.db'}")
    with TestClient(create_console_app()) as client:
        assert client.get("/ui/runs").status_code == 200
        runs = client.get("/ui/part/runs").text
        assert f"no tracking store yet at {tmp_path / 'absent.db'}" in runs
        assert "No model is loaded" in client.get("/ui/part/overview").text
        missing = client.get("/ui/part/users/u1")
        assert missing.status_code == 404
        assert "no model is loaded" in missing.json()["detail"]
    assert not (tmp_path / "absent.db").exists()  # reading never creates a store


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, typed_shop: Path) -> Iterator[str]:
    """A real ``gemrec serve`` with a small SVD model and a tracking store holding one run."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium; .ci/run does)")
    pytest.importorskip("mlflow", reason="mlflow is not installed (gemrec[track])")
    tmp = tmp_path_factory.mktemp("console")
    model = PureSVD(factors=6).fit(Dataset.open(typed_shop).interactions("train", "valid"))
    model_dir = model.save(tmp / "svd")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GEMREC_NO_TRACK", raising=False)
        with record_run(
            "train", uri=uri, name="svd-console-run", tags={"gemrec.model": "puresvd"}
        ) as run:
            assert run is not None
            run.log_params({"factors": 6})
            for step, value in enumerate([0.10, 0.15, 0.18], start=1):
                run.log_metrics({"valid_recall_at_20": value}, step=step)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": SRC, "GEMREC_TRACKING_URI": uri}
    log = tmp / "serve.log"
    cmd = serve_command(model_dir, typed_shop, port, f"sqlite:///{tmp / 'ev.sqlite3'}")
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, "server health", poll=0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser(console: str) -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    p = browser.new_page(viewport={"width": 1280, "height": 900})
    p.errors = []  # type: ignore[attr-defined]
    p.on("console", lambda m: m.type == "error" and p.errors.append(m.text))
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    yield p
    p.close()


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-loaded='true']", timeout=60_000)


def test_every_page_loads_without_console_errors(console: str, page: Any) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    for name, path in [
        ("overview", "/ui/"),
        ("user", "/ui/users/u3"),
        ("item", "/ui/items/i3"),
        ("live", "/ui/live"),
        ("runs", "/ui/runs"),
    ]:
        _open(page, console + path)
        if name == "user":
            page.wait_for_selector("#recs li")
        if name == "item":
            page.wait_for_selector("#graph svg g.node")
        page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)
        assert page.errors == [], f"{path}: console errors {page.errors}"
    assert page.inner_text("#runs") != ""
    print(f"screenshots in {SCREENS}")


def test_user_page_lists_the_api_items_and_draws_the_explanation(console: str, page: Any) -> None:
    api = httpx.get(f"{console}/v1/users/u3/recommendations", params={"k": 10}).json()
    _open(page, console + "/ui/users/u3")
    page.wait_for_selector("#recs li")
    shown = page.eval_on_selector_all("#recs li", "els => els.map(e => e.dataset.item)")
    assert shown == [r["item_id"] for r in api["items"]]
    item = shown[0]
    page.click(f"#recs li[data-item='{item}'] small")
    page.wait_for_selector("#graph svg g.node")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "user-explained.png"), full_page=True)
    drawn = set(page.eval_on_selector_all("#graph g.node", "els => els.map(e => e.dataset.label)"))
    explain = httpx.get(f"{console}/v1/explain", params={"user_id": "u3", "item_id": item}).json()
    expected = {"u3", item} | {p["via_item_id"] for p in explain["paths"]}
    assert drawn == expected
    assert len(explain["paths"]) > 0
    nx = pytest.importorskip("networkx")
    q = {"user_id": "u3", "item_id": item}
    graphml = httpx.get(f"{console}/ui/graph/explain", params={**q, "format": "graphml"}).text
    g = nx.read_graphml(io.BytesIO(graphml.encode()))
    assert {g.nodes[n]["label"] for n in g.nodes} == expected
    data = httpx.get(f"{console}/ui/graph/explain", params=q).json()
    assert {d["label"] for _, d in nx.node_link_graph(data).nodes(data=True)} == expected
    assert page.errors == []


def test_posting_an_event_in_live_changes_the_users_list(console: str, page: Any) -> None:
    _open(page, console + "/ui/live")
    page.wait_for_selector("#stream-state[data-ready='true']")
    page.fill("#watch-user", "u5")
    page.click("#watch-form button")
    page.wait_for_selector("#recs li")
    before = page.eval_on_selector_all("#recs li", "els => els.map(e => e.dataset.item)")
    # u5 is in block 0 (items i0..i19); buying an item of category 2 pulls that category in
    for item in ("i45", "i46", "i47"):
        page.fill("#post-user", "u5")
        page.fill("#post-item", item)
        page.fill("#post-type", "purchase")
        page.click("#post-form button")
        page.wait_for_selector(f"#events li:has-text('{item}')")

    def changed() -> bool:
        now = page.eval_on_selector_all("#recs li", "els => els.map(e => e.dataset.item)")
        return bool(now) and now != before

    wait_until(changed, "u5's list on screen changing after the posted events", poll=0.1)
    after = page.eval_on_selector_all("#recs li", "els => els.map(e => e.dataset.item)")
    api = httpx.get(f"{console}/v1/users/u5/recommendations", params={"k": 10}).json()
    assert after == [r["item_id"] for r in api["items"]]
    assert page.errors == []


def test_runs_page_shows_the_tracked_run_and_its_curve(console: str, page: Any) -> None:
    _open(page, console + "/ui/runs")
    assert "svd-console-run" in page.inner_text("#runs")
    assert "0.18" in page.inner_text("#runs")
    page.click("a.curves")
    page.wait_for_selector("#curves svg polyline")
    assert page.errors == []


def test_console_respects_protected_reads_and_write_key(make_client: Any, svd_dir: Path) -> None:
    client = make_client(svd_dir, api_key="k", protect_reads=True)
    key = {"Authorization": "Bearer k"}
    assert client.get("/ui/users/u3").status_code == 200  # the shell, which asks for the key
    assert 'data-protect-reads="true"' in client.get("/ui/users/u3").text
    for path in ("/ui/part/users/u3", "/ui/graph/items/i3", "/ui/part/overview"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=key).status_code == 200, path
    compare = {"user_id": "u3", "model_a": str(svd_dir), "model_b": str(svd_dir)}
    assert client.get("/ui/compare", params=compare).status_code == 401
    lists = client.get("/ui/compare", params=compare, headers=key).json()["lists"]
    api = client.get("/v1/users/u3/recommendations", params={"k": 10}, headers=key).json()
    assert [r["item_id"] for r in lists[0]["items"]] == [r["item_id"] for r in api["items"]]
    assert lists[0]["items"] == lists[1]["items"]
