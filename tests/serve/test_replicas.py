"""Replicas on one Redis behind nginx (deploy/nginx.conf), events from a stream, Redis outages.

Real processes: redis-server, nginx and `gemrec serve` subprocesses on free loopback ports.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gemrec.serve import open_store
from tests.serve._process import free_port, wait_until
from tests.serve.test_process import Server

pytestmark = pytest.mark.redis

NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"


class Redis:
    """A redis-server (AOF, fsync always) that can be stopped and started again on its port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server binary not found (apt-get install -y redis-server)")
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, "redis-server answering PING", poll=0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    server = Redis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def servers():
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


def start_nginx(tmp_path: Path, ports: list[int]) -> tuple[subprocess.Popen[bytes], str]:
    """deploy/nginx.conf with its upstream and listen ports replaced by test ports."""
    binary = shutil.which("nginx")
    if binary is None:
        pytest.skip("nginx binary not found (apt-get install -y nginx)")
    prefix = tmp_path / "nginx"
    for d in ("logs", "tmp"):
        (prefix / d).mkdir(parents=True, exist_ok=True)
    listen = free_port()
    conf = NGINX_CONF.read_text()
    conf = conf.replace("127.0.0.1:8001", f"127.0.0.1:{ports[0]}")
    conf = conf.replace("127.0.0.1:8002", f"127.0.0.1:{ports[1]}")
    conf = conf.replace("127.0.0.1:8080", f"127.0.0.1:{listen}")
    (prefix / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{listen}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, "nginx answering", poll=0.05)
    return proc, url


def strategy(url: str, user: str) -> str:
    r = httpx.get(f"{url}/v1/users/{user}/recommendations", params={"k": 5}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["strategy"])


def test_replicas_share_stream_events_reloads_and_survive_a_killed_replica(
    svd_dir, pop_dir, shop, tmp_path, servers, redis_server
):
    import redis

    url = redis_server.url
    consume = ["--consume", url, "--stream", "ev", "--group", "g", "--claim-idle-ms", "1000"]
    a = Server(svd_dir, shop, url, tmp_path / "a.log", *consume)
    servers.append(a)
    b = Server(svd_dir, shop, url, tmp_path / "b.log")
    servers.append(b)
    nginx, front = start_nginx(tmp_path, [a.port, b.port])
    try:
        # an event produced on the stream, consumed in replica a, changes b's next list
        assert strategy(b.url, "newcomer") == "trending"
        r = redis.Redis.from_url(url)
        r.xadd("ev", {"user_id": "newcomer", "item_id": "i5", "event_type": "view"})
        wait_until(lambda: strategy(b.url, "newcomer") == "fold_in", "stream event seen by b")
        # an event posted through nginx (either replica) is seen by both
        post = httpx.post(
            f"{front}/v1/events",
            json={"events": [{"user_id": "n2", "item_id": "i7", "event_type": "buy"}]},
            timeout=10,
        )
        assert post.json() == {"accepted": 1, "duplicates": 0}
        assert strategy(a.url, "n2") == strategy(b.url, "n2") == "fold_in"
        # a reload on a reaches b through Redis
        reload = httpx.post(
            f"{a.url}/v1/admin/reload", json={"model_dir": str(pop_dir)}, timeout=60
        )
        assert reload.status_code == 200
        wait_until(
            lambda: httpx.get(f"{b.url}/healthz", timeout=5).json()["model"] == "pop",
            "b following a's reload",
            poll=0.1,
        )

        # kill -9 b under load through nginx: a keeps answering. Each request is tagged with
        # whether it started after b was dead; only those started before may fail, at most one
        # per client (the one in flight on b), and none started after
        results: list[tuple[bool, int]] = []  # (started after the kill, status; 0: no answer)
        killed, stop = threading.Event(), threading.Event()

        def load() -> None:
            with httpx.Client(base_url=front, timeout=10) as client:
                for j in range(5000):  # bounded
                    if stop.is_set():
                        return
                    after = killed.is_set()
                    try:
                        got = client.get(f"/v1/users/u{j % 90}/recommendations?k=5").status_code
                    except httpx.HTTPError:
                        got = 0
                    results.append((after, got))

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        wait_until(lambda: len(results) >= 30, "requests before the kill")
        b.kill9()
        killed.set()
        wait_until(lambda: sum(a for a, _ in results) >= 100, "requests after the kill")
        stop.set()
        for t in threads:
            t.join(timeout=30)
        failed = [status for after, status in results if status != 200 and not after]
        assert len(failed) <= len(threads), failed
        assert {status for after, status in results if after} == {200}
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


def test_redis_outage_reads_fall_back_writes_503_then_recover(
    svd_dir, shop, tmp_path, servers, redis_server
):
    url = redis_server.url
    srv = Server(svd_dir, shop, url, tmp_path / "s.log")
    servers.append(srv)

    def post(event_id: str) -> httpx.Response:
        body = {"events": [{"user_id": "u1", "item_id": "i9", "event_type": "view"}]}
        body["events"][0]["event_id"] = event_id
        return httpx.post(f"{srv.url}/v1/events", json=body, timeout=10)

    assert post("before").status_code == 200
    assert strategy(srv.url, "u1") == "personalized"
    redis_server.stop()
    assert strategy(srv.url, "u1") == "offline:personalized"
    down = post("during")
    assert down.status_code == 503 and down.headers["Retry-After"] == "1"
    assert "unreachable" in down.json()["detail"]
    redis_server.start()
    wait_until(lambda: post("after").status_code == 200, "writes accepted again", poll=0.1)
    assert strategy(srv.url, "u1") == "personalized"
    store = open_store(url)
    stored = [e.event_id for e in store.events()]
    store.close()
    assert stored == ["before", "after"]  # acknowledged events kept (AOF), the refused one absent


def test_a_block_on_one_replica_is_applied_by_every_worker_of_another(
    svd_dir, shop, tmp_path, servers, redis_server
):
    url = redis_server.url
    a = Server(svd_dir, shop, url, tmp_path / "a.log")
    servers.append(a)
    b = Server(svd_dir, shop, url, tmp_path / "b.log", "--workers", "2")
    servers.append(b)

    def items(client: httpx.Client, path: str, k: int) -> list[str]:
        r = client.get(path, params={"k": k})
        assert r.status_code == 200, r.text
        return [x["item_id"] for x in r.json()["items"]]

    with httpx.Client(base_url=b.url, timeout=10) as client:
        before = items(client, "/v1/users/u0/recommendations", 10)
        top = before[0]
        neighbour = items(client, f"/v1/items/{top}/similar", 1)[0]
        assert top in items(client, f"/v1/items/{neighbour}/similar", 59)

    def on_each_worker_of_b(check: Callable[[httpx.Client], None], what: str) -> None:
        """Run ``check`` on new connections to b until both its workers have passed it."""
        pids: set[int] = set()

        def one_connection() -> bool:
            with httpx.Client(base_url=b.url, timeout=10) as c:
                pids.add(c.get("/healthz").json()["pid"])
                check(c)
            return len(pids) == 2

        wait_until(one_connection, what, poll=0)

    def blocked(c: httpx.Client) -> None:
        assert top not in items(c, "/v1/users/u0/recommendations", 10)
        assert top not in items(c, f"/v1/items/{neighbour}/similar", 59)

    def unblocked(c: httpx.Client) -> None:
        assert items(c, "/v1/users/u0/recommendations", 10) == before
        assert top in items(c, f"/v1/items/{neighbour}/similar", 59)

    post = httpx.post(f"{a.url}/v1/admin/blocklist", json={"add": [top]}, timeout=10)
    assert post.json() == {"blocked": 1, "unblocked": 0, "not_in_catalogue": []}
    on_each_worker_of_b(blocked, "both workers of b leaving the blocked item out")
    assert httpx.get(f"{b.url}/v1/admin/blocklist", timeout=10).json() == {"item_ids": [top]}
    post = httpx.post(f"{a.url}/v1/admin/blocklist", json={"remove": [top]}, timeout=10)
    assert post.json() == {"blocked": 0, "unblocked": 1, "not_in_catalogue": []}
    on_each_worker_of_b(unblocked, "both workers of b listing the unblocked item again")
