"""The real service in uvicorn subprocesses on 127.0.0.1: crash safety, hot reload, shared Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from gemrec.serve import open_store
from tests.serve._process import free_port, serve_command, wait_until

SRC = str(Path(__file__).resolve().parents[2] / "src")


class Server:
    def __init__(self, model_dir: Path, dataset: Path, store: str, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = serve_command(model_dir, dataset, self.port, store, *extra)
        env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.log = log
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until(self.healthy, "server health", poll=0.1)
        except TimeoutError as exc:
            self.stop()
            pytest.fail(f"{exc}:\n{log.read_text()}")

    def healthy(self) -> bool:
        """True once ``/healthz`` answers 200; fails the test if the server has exited."""
        if self.proc.poll() is not None:
            pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture
def servers():
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


def test_open_write_endpoints_are_announced_loudly(pop_dir, shop, tmp_path, servers):
    store = f"sqlite:///{tmp_path / 'ev.sqlite3'}"
    open_server = Server(pop_dir, shop, store, tmp_path / "open.log")
    servers.append(open_server)
    keyed = Server(pop_dir, shop, store, tmp_path / "keyed.log", "--api-key", "k")
    servers.append(keyed)
    assert "WARNING: no API key" in open_server.log.read_text()
    assert "WARNING" not in keyed.log.read_text()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_kill9_loses_no_acknowledged_event_and_duplicates_none(
    backend, svd_dir, shop, tmp_path, servers, request
):
    if backend == "sqlite":
        store = f"sqlite:///{tmp_path / 'events.sqlite3'}"
    else:
        store = request.getfixturevalue("fresh_redis")
    srv = Server(svd_dir, shop, store, tmp_path / "log1.txt")
    servers.append(srv)
    sent: list[str] = []
    acked: set[str] = set()
    stop = threading.Event()

    def writer() -> None:
        with httpx.Client(base_url=srv.url, timeout=5) as client:
            for b in range(2000):  # bounded; the kill ends it much earlier
                if stop.is_set():
                    return
                batch = [
                    {
                        "user_id": f"w{n % 7}",
                        "item_id": f"i{n % 60}",
                        "event_type": "view",
                        "event_id": f"b{b}-{n}",
                    }
                    for n in range(25)
                ]
                sent.extend(e["event_id"] for e in batch)
                try:
                    r = client.post("/v1/events", json={"events": batch})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acked.update(e["event_id"] for e in batch)

    t = threading.Thread(target=writer)
    t.start()
    wait_until(lambda: len(acked) >= 500 or not t.is_alive(), "500 acknowledged events")
    srv.kill9()  # in the middle of the write stream
    stop.set()
    t.join(timeout=10)
    assert len(acked) >= 500

    s = open_store(store)
    stored = [e.event_id for e in s.events()]
    s.close()
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert acked <= set(stored), f"{len(acked - set(stored))} acknowledged events lost"

    srv2 = Server(svd_dir, shop, store, tmp_path / "log2.txt")
    servers.append(srv2)
    # the client retries everything it sent: only the never-stored events are accepted
    with httpx.Client(base_url=srv2.url, timeout=10) as client:
        ids = list(dict.fromkeys(sent))
        accepted = duplicates = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            batch = [
                {
                    "user_id": f"w{int(i.split('-')[1]) % 7}",
                    "item_id": f"i{int(i.split('-')[1]) % 60}",
                    "event_type": "view",
                    "event_id": i,
                }
                for i in chunk
            ]
            body = client.post("/v1/events", json={"events": batch}).json()
            accepted += body["accepted"]
            duplicates += body["duplicates"]
        assert duplicates == len(stored) and accepted == len(ids) - len(stored)
        w0 = [
            e
            for e in client.get("/v1/users/w0/history").json()["events"]
            if e["source"] == "online"
        ]
        assert len(w0) == len({i for i in ids if int(i.split("-")[1]) % 7 == 0})


def test_reload_under_load_fails_no_request(svd_dir, pop_dir, shop, tmp_path, servers):
    srv = Server(svd_dir, shop, f"sqlite:///{tmp_path / 'ev.sqlite3'}", tmp_path / "log.txt")
    servers.append(srv)
    statuses: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader(n: int) -> None:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            for j in range(5000):  # bounded
                if stop.is_set():
                    return
                try:
                    if j % 5 == 0:
                        r = client.post(
                            "/v1/events",
                            json={
                                "events": [
                                    {
                                        "user_id": f"r{n}",
                                        "item_id": f"i{j % 60}",
                                        "event_type": "view",
                                    }
                                ]
                            },
                        )
                    else:
                        r = client.get(
                            f"/v1/users/u{(n * 7 + j) % 90}/recommendations", params={"k": 10}
                        )
                    statuses.append(r.status_code)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()

    def more_requests(what: str, n: int = 20) -> None:
        """Wait until the readers have made ``n`` more requests, so each reload is under load."""
        target = len(statuses) + len(errors) + n
        wait_until(lambda: len(statuses) + len(errors) >= target, what)

    models = []
    with httpx.Client(base_url=srv.url, timeout=30) as admin:
        for d in (pop_dir, svd_dir, pop_dir):
            more_requests("requests before a reload")
            r = admin.post("/v1/admin/reload", json={"model_dir": str(d)})
            assert r.status_code == 200, r.text
            models.append(admin.get("/healthz").json()["model"])
    more_requests("requests after the last reload")
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert models == ["pop", "svd", "pop"]
    assert not errors and len(statuses) > 50
    assert set(statuses) == {200}


def test_redis_store_shared_by_two_workers(svd_dir, pop_dir, shop, tmp_path, servers, fresh_redis):
    srv = Server(svd_dir, shop, fresh_redis, tmp_path / "log.txt", "--workers", "2")
    servers.append(srv)
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        top = client.get("/v1/users/u0/recommendations", params={"k": 3}).json()["items"][0][
            "item_id"
        ]
        assert (
            client.post(
                "/v1/events",
                json={
                    "events": [
                        {"user_id": "u0", "item_id": top, "event_type": "buy", "event_id": "x1"}
                    ]
                },
            ).json()["accepted"]
            == 1
        )
        assert (
            client.post(
                "/v1/items", json={"items": [{"item_id": "shared-new", "category": "cat0"}]}
            ).status_code
            == 200
        )
        # new connections spread over both workers; every one must see the event and the item
        pids: set[int] = set()

        def one_connection() -> bool:
            """Check one new connection; true once both workers have answered."""
            with httpx.Client(base_url=srv.url, timeout=10) as c:
                pids.add(c.get("/healthz").json()["pid"])
                ids = [
                    r["item_id"]
                    for r in c.get("/v1/users/u0/recommendations", params={"k": 20}).json()["items"]
                ]
                assert top not in ids
                assert c.get("/v1/items/shared-new/similar", params={"k": 2}).status_code == 200
                assert (
                    c.post(
                        "/v1/events",
                        json={
                            "events": [
                                {
                                    "user_id": "u0",
                                    "item_id": top,
                                    "event_type": "buy",
                                    "event_id": "x1",
                                }
                            ]
                        },
                    ).json()["duplicates"]
                    == 1
                )
            return len(pids) == 2

        wait_until(one_connection, "requests reaching both workers", poll=0)
        # a reload on one worker is followed by the other through the store
        assert client.post("/v1/admin/reload", json={"model_dir": str(pop_dir)}).status_code == 200
        latest: dict[int, str] = {}  # pid -> model it last reported

        def both_serve_pop() -> bool:
            with httpx.Client(base_url=srv.url, timeout=10) as c:
                h = c.get("/healthz").json()
            latest[h["pid"]] = h["model"]
            return set(latest) == pids and set(latest.values()) == {"pop"}

        wait_until(both_serve_pop, "both workers serving the reloaded model", poll=0.05)
