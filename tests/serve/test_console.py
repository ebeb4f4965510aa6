"""The console at /ui in a real browser (Playwright driving Debian's chromium) against a real
``gemrec serve`` subprocess, and its graphs read back by NetworkX."""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gemrec.analysis import analyze_dataset, read_report
from gemrec.serve.ui._graphs import explanation_graph, to_graphml
from gemrec.serve.ui._runs import model_runs
from gemrec.tracking import list_runs, record_run, run_curves
from tests.serve._process import DEADLINE_S, free_port, serve_command, wait_until

SRC = str(Path(__file__).resolve().parents[2] / "src")
CHROMIUM = "/usr/bin/chromium"
SCREENS = Path(__file__).resolve().parents[2] / "test-output" / "screens"
#: the model the console serves: trained by ``gemrec train`` with per-epoch curves
MF = ["--model", "mf", "--set", "epochs=3", "--set", "embedding_dim=8", "--set", "seed=1"]


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


def _cli(*argv: str, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """``gemrec ARGV`` as a subprocess, its stderr in ``log`` and its stdout kept."""
    return subprocess.Popen(
        [sys.executable, "-m", "gemrec.cli", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )


def _finished(proc: subprocess.Popen[str], log: Path) -> str:
    out, _ = proc.communicate(timeout=DEADLINE_S)
    if proc.returncode != 0:
        pytest.fail(f"{proc.args} exited with {proc.returncode}:\n{log.read_text()}")
    return out


class Trained:
    """A model trained by ``gemrec train`` and evaluated by ``gemrec evaluate`` (both recording
    into a fresh tracking store), and the shop's behaviour report."""

    def __init__(
        self, uri: str, model_dir: Path, report_dir: Path, evaluate: subprocess.Popen[str]
    ) -> None:
        self.uri, self.model_dir, self.report_dir = uri, model_dir, report_dir
        self._evaluate = evaluate
        self._log = model_dir.parent / "evaluate.log"

    @functools.cached_property
    def evaluated(self) -> dict[str, Any]:
        """``gemrec evaluate -k 10 20 --json``'s output, once it has finished."""
        result: dict[str, Any] = json.loads(_finished(self._evaluate, self._log))
        return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, typed_shop: Path) -> Iterator[Trained]:
    pytest.importorskip("mlflow", reason="mlflow is not installed (gemrec[track])")
    pytest.importorskip("torch", reason="the trained model (mf) needs the 'torch' extra")
    tmp = tmp_path_factory.mktemp("trained")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": SRC, "GEMREC_TRACKING_URI": uri}
    env.pop("GEMREC_NO_TRACK", None)  # the session turns tracking off; these commands record
    model_dir, report_dir = tmp / "mf", tmp / "report"
    train = _cli("train", str(typed_shop), *MF, "-o", str(model_dir), "--quiet", env=env,
                 log=tmp / "train.log")  # fmt: skip
    analyze_dataset(typed_shop, report_dir)  # while the model trains
    _finished(train, tmp / "train.log")
    # left running: a test waits for it through ``evaluated``, the console starts meanwhile
    evaluate = _cli("evaluate", str(model_dir), "--dataset", str(typed_shop), "-k", "10", "20",
                    "--json", env=env, log=tmp / "evaluate.log")  # fmt: skip
    try:
        yield Trained(uri, model_dir, report_dir, evaluate)
    finally:
        if evaluate.poll() is None:
            evaluate.kill()
        evaluate.communicate()


@dataclass(frozen=True)
class Console:
    """The served console and the model it serves."""

    url: str
    trained: Trained


@pytest.fixture(scope="module")
def console(
    trained: Trained, typed_shop: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    """A real ``gemrec serve --report`` of the trained model and the shop's report, reading runs
    from the store the CLI recorded into."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium; .ci/run does)")
    tmp = tmp_path_factory.mktemp("console")
    port = free_port()
    log = tmp / "serve.log"
    store = f"sqlite:///{tmp / 'ev.sqlite3'}"
    cmd = serve_command(
        trained.model_dir, typed_shop, port, store, "--report", str(trained.report_dir)
    )
    env = {**os.environ, "PYTHONPATH": SRC, "GEMREC_TRACKING_URI": trained.uri}
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
        assert trained.evaluated  # recorded before any page shows the model's runs
        wait_until(healthy, "server health", poll=0.1)
        yield Console(url, trained)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Any]:
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


def test_every_page_loads_without_console_errors(console: Console, page: Any) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    for name, path in [
        ("overview", "/ui/"),
        ("user", "/ui/users/u3"),
        ("item", "/ui/items/i3"),
        ("live", "/ui/live"),
        ("runs", "/ui/runs"),
    ]:
        _open(page, console.url + path)
        if name == "user":
            page.wait_for_selector("#recs li")
        if name == "item":
            page.wait_for_selector("#graph svg g.node")
        page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)
        assert page.errors == [], f"{path}: console errors {page.errors}"
    assert page.inner_text("#runs") != ""
    print(f"screenshots in {SCREENS}")


def test_user_page_lists_the_api_items_and_draws_the_explanation(
    console: Console, page: Any
) -> None:
    api = httpx.get(f"{console.url}/v1/users/u3/recommendations", params={"k": 10}).json()
    _open(page, console.url + "/ui/users/u3")
    page.wait_for_selector("#recs li")
    shown = page.eval_on_selector_all("#recs li", "els => els.map(e => e.dataset.item)")
    assert shown == [r["item_id"] for r in api["items"]]
    item = shown[0]
    page.click(f"#recs li[data-item='{item}'] small")
    page.wait_for_selector("#graph svg g.node")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "user-explained.png"), full_page=True)
    drawn = set(page.eval_on_selector_all("#graph g.node", "els => els.map(e => e.dataset.label)"))
    explain = httpx.get(
        f"{console.url}/v1/explain", params={"user_id": "u3", "item_id": item}
    ).json()
    expected = {"u3", item} | {p["via_item_id"] for p in explain["paths"]}
    assert drawn == expected
    assert len(explain["paths"]) > 0
    nx = pytest.importorskip("networkx")
    q = {"user_id": "u3", "item_id": item}
    graphml = httpx.get(f"{console.url}/ui/graph/explain", params={**q, "format": "graphml"}).text
    g = nx.read_graphml(io.BytesIO(graphml.encode()))
    assert {g.nodes[n]["label"] for n in g.nodes} == expected
    data = httpx.get(f"{console.url}/ui/graph/explain", params=q).json()
    assert {d["label"] for _, d in nx.node_link_graph(data).nodes(data=True)} == expected
    assert page.errors == []


def test_posting_an_event_in_live_changes_the_users_list(console: Console, page: Any) -> None:
    _open(page, console.url + "/ui/live")
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
    api = httpx.get(f"{console.url}/v1/users/u5/recommendations", params={"k": 10}).json()
    assert after == [r["item_id"] for r in api["items"]]
    assert page.errors == []


def test_runs_page_shows_the_run_the_cli_just_trained_and_its_curves(
    console: Console, page: Any
) -> None:
    trained = next(r for r in list_runs(console.trained.uri, model_dir=console.trained.model_dir)
                   if r["command"] == "train")  # fmt: skip
    curves = run_curves(console.trained.uri, trained["run_id"])
    assert [step for step, _ in curves["loss"]] == [1, 2, 3]
    _open(page, console.url + "/ui/runs")
    row = page.locator(f"#runs tr[data-run='{trained['run_id']}']")
    assert row.locator("td").nth(0).inner_text() == "train mf"
    assert row.locator("td").nth(1).inner_text() == "train"
    row.locator("a.curves").click()
    page.wait_for_selector("#curves svg polyline")
    drawn = page.eval_on_selector_all(
        "#curves polyline title", "els => els.map(e => e.textContent)"
    )
    assert sorted(drawn) == sorted(k for k, pts in curves.items() if len(pts) > 1)
    assert "loss" in drawn
    # the last point of each curve is the run's final figure, as the store holds it
    text = "els => els.map(e => e.textContent)"
    names = page.eval_on_selector_all("#curves .kv th", text)
    finals = dict(zip(names, page.eval_on_selector_all("#curves .kv td", text), strict=True))
    assert finals["loss"] == f"{curves['loss'][-1][1]:.4g}"
    assert page.errors == []


def test_overview_shows_the_models_evaluation_and_the_behaviour_report(
    console: Console, page: Any
) -> None:
    _open(page, console.url + "/ui/")
    cell = "#model-metrics table.metrics td[data-metric='{}']"
    for k in (10, 20):
        for name in ("recall", "ndcg"):
            shown = page.inner_text(cell.format(f"{name}@{k}"))
            assert shown == f"{console.trained.evaluated[f'{name}@{k}']:.4f}", (name, k)
    caption = page.inner_text("#model-metrics table.metrics caption")
    users = console.trained.evaluated["n_users"]
    assert caption.startswith(f"evaluate mf on test, {users} users")
    training = json.loads((console.trained.model_dir / "training.json").read_text())
    fit = page.inner_text("#model-trainings td[data-metric='fit_seconds']")
    assert fit == f"{training['fit_seconds']:.4g}"
    summary, plots = read_report(console.trained.report_dir)
    images = page.locator("#report figure img")
    assert images.evaluate_all("els => els.map(e => e.alt)") == [t for t, _ in plots]
    # every plot decoded by the browser at the size of its PNG file
    sizes = images.evaluate_all("els => els.map(e => [e.naturalWidth, e.naturalHeight])")
    for (_, file), (w, h) in zip(plots, sizes, strict=True):
        png = file.read_bytes()
        assert (w, h) == (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big"))
    gini = f"Gini {summary['popularity']['gini']:.3f}"
    assert gini in page.inner_text("#report-facts")
    assert page.errors == []


def test_overview_says_what_is_missing_and_names_a_report_of_another_dataset(
    make_client: Any,
    svd_dir: Path,
    shop: Path,
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model with no recorded evaluation, a store that does not exist, no report, and a
    report of another dataset (the typed shop's, served beside the plain shop)."""
    monkeypatch.setenv("GEMREC_TRACKING_URI", trained.uri)
    page = make_client(svd_dir, report_dir=trained.report_dir).get("/ui/part/overview").text
    command = (
        f"gemrec evaluate {svd_dir.resolve()} --dataset {shop.resolve()} -k 10 20 "
        f"--tracking-uri {trained.uri}"
    )
    assert f'id="no-evaluation">No recorded evaluation; run\n    <code>{command}</code>' in page
    assert 'id="model-trainings"' not in page  # the store has runs, none of this directory
    summary, plots = read_report(trained.report_dir)
    assert f"This report is of {summary['dataset']}; the service serves {shop.resolve()}" in page
    broken = shutil.copytree(trained.report_dir, tmp_path / "broken-report")
    (broken / plots[-1][1].relative_to(trained.report_dir)).unlink()  # as if written again now
    page = make_client(svd_dir, report_dir=broken).get("/ui/part/overview").text
    missing = plots[-1][1].relative_to(trained.report_dir)
    assert f'id="report-problem">{broken}: summary.json lists the plot {missing}' in page
    monkeypatch.setenv("GEMREC_TRACKING_URI", f"sqlite:///{tmp_path / 'absent.db'}")
    page = make_client(svd_dir).get("/ui/part/overview").text
    assert f"no tracking store yet at {tmp_path / 'absent.db'}" in page
    assert "No recorded evaluation" not in page
    assert f"<code>gemrec analyze {shop.resolve()} -o REPORT_DIR</code>" in page
    assert not (tmp_path / "absent.db").exists()
    with socket.socket() as s:  # a port nothing listens on once the socket is closed
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("GEMREC_TRACKING_URI", down)
    overview = make_client(svd_dir).get("/ui/part/overview")
    assert overview.status_code == 200
    assert f"cannot read the tracking store {down}: MlflowException" in overview.text
    assert 'id="model-name">svd<' in overview.text  # the rest of the page is there


def test_model_runs_reads_evaluations_and_trainings_of_one_directory(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gemrec demo`` trains and evaluates in one run (both); a tuning's per-trial figures are
    not an evaluation; runs of other directories are left out."""
    monkeypatch.delenv("GEMREC_NO_TRACK")
    model_dir = tmp_path / "model"
    tags = {"gemrec.model_dir": model_dir.resolve()}
    with record_run("tune", uri=trained.uri, name="tune mf", tags=tags) as run:
        assert run is not None
        run.log_metrics({"fit_seconds": 2.0, "tuning/best_recall@20": 0.3})
        run.log_metrics({"trial/recall@20": 0.2}, step=1)
    with record_run("demo", uri=trained.uri, name="demo mf", tags=tags) as run:
        assert run is not None
        run.log_metrics({"fit_seconds": 1.5, "test/n_users": 9})
        run.log_metrics({f"test/{m}@{k}": k / 100 + j for j, m in enumerate(["ndcg", "recall"])
                         for k in (10, 20)})  # fmt: skip
    view = model_runs(trained.uri, model_dir)
    assert [e.name for e in view.evaluations] == ["demo mf"]
    demo = view.evaluations[0]
    assert (demo.split, demo.ks, demo.n_users) == ("test", [10, 20], 9)
    assert demo.table == {"recall": {10: 1.1, 20: 1.2}, "ndcg": {10: 0.1, 20: 0.2}}
    assert [r.name for r in view.trainings] == ["demo mf", "tune mf"]
    assert [r.metrics["fit_seconds"] for r in view.trainings] == [1.5, 2.0]
    assert model_runs(trained.uri, tmp_path / "other").evaluations == []


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
