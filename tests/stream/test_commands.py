"""``gemrec consume`` as real processes: kill -9 of a consumer mid-batch loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gemrec.serve import open_store
from tests.serve._process import wait_until

pytestmark = pytest.mark.redis

SRC = str(Path(__file__).resolve().parents[2] / "src")
N = 20_000


def _stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped (state ``T`` in ``/proc/PID/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] in ("T", "t")


def consume(svd_dir: Path, shop: Path, url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "gemrec.cli", "consume", str(svd_dir), "--dataset", str(shop)]
    cmd += ["--from", url, "--stream", "ev", "--group", "g", "--consumer", name]
    cmd += ["--batch", "200", "--claim-idle-ms", "500", "--stats-seconds", "1"]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def test_kill9_consumer_mid_batch_then_another_claims_its_pending(
    svd_dir, shop, fresh_redis, tmp_path
):
    import redis

    r = redis.Redis.from_url(fresh_redis, decode_responses=True)
    pipe = r.pipeline(transaction=False)
    for n in range(N):
        pipe.xadd("ev", {"user_id": f"w{n % 97}", "item_id": f"i{n % 60}", "event_type": "view"})
    pipe.execute()
    store = open_store(fresh_redis)
    first = consume(svd_dir, shop, fresh_redis, "first", tmp_path / "first.log")

    def frozen_mid_batch() -> bool:
        """Stop the first consumer; true when it holds a batch it has not acknowledged."""
        if store.count_events() < 2000:
            return False
        os.killpg(first.pid, signal.SIGSTOP)
        # the signal takes effect asynchronously, and commands the consumer already sent may still
        # be on their way to Redis: read the pending count once it is stopped and its last
        # acknowledgement (if any) has been applied
        wait_until(lambda: _stopped(first.pid), "the first consumer stopped", poll=0.01)
        before = None
        while True:
            pending = {c["name"]: c["pending"] for c in r.xinfo_consumers("ev", "g")}
            if pending == before:
                break
            before = pending
            time.sleep(0.05)
        if pending.get("first", 0) > 0:
            return True
        os.killpg(first.pid, signal.SIGCONT)
        return False

    try:
        wait_until(frozen_mid_batch, "the first consumer in the middle of a batch")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    left = {c["name"]: c["pending"] for c in r.xinfo_consumers("ev", "g")}
    assert left["first"] > 0
    assert store.count_events() < N

    second = consume(svd_dir, shop, fresh_redis, "second", tmp_path / "second.log")
    try:
        wait_until(
            lambda: r.xpending("ev", "g")["pending"] == 0 and store.count_events() == N,
            "the second consumer finishing the stream",
            poll=0.1,
        )
    finally:
        second.terminate()
        second.wait(timeout=30)
    log = (tmp_path / "second.log").read_text()
    claimed = int(log.rsplit("claimed ", 1)[1].split()[0])
    assert claimed == left["first"], log
    ids = [e.event_id for e in store.events()]
    assert len(ids) == len(set(ids)) == N  # nothing lost, nothing stored twice
    assert sum(store.item_counts().values()) == N  # nor counted twice
    store.close()
    r.close()
