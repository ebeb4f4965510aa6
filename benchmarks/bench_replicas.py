"""Replicas benchmark: 2 `gemrec serve` replicas behind nginx on one Redis, with `gemrec consume`
applying a stream of events, while reads run open-loop.

Two phases of ``--seconds`` each:

1. ingest: events produced to the Redis stream as fast as one producer process can (pipelined
   XADD) and the events the consumer durably applied per second (Redis AOF ``appendfsync always``
   unless ``--appendfsync everysec``),
   nothing else running; the consumer then drains the backlog;
2. mixed: events produced at a steady ``--event-rate`` while open-loop GET recommendations run at
   ``--rate`` req/s through nginx (latency from each request's scheduled send time, bench_serve's
   client), and freshness: every 0.1 s an event for a new user is produced to the stream; the time
   until replica 2 (which did not consume it: the consumer writes Redis, replica 2 reads it)
   answers that user's list from the event (``strategy == "fold_in"``).

Model and data: bench_serve's (Gowalla-sized embedding model, ``--model svd`` or ``random``).
Needs redis-server and nginx on PATH.

Run:  PYTHONPATH=src python benchmarks/bench_replicas.py [--rate 300] [--event-rate 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _data import load  # noqa: E402
from bench_serve import (  # noqa: E402
    DATASET,
    Conn,
    build_model,
    fixed_rate,
    free_port,
    serve_command,
    wait_healthy,
)

STREAM = "gemrec:events"


def produce(
    url: str,
    seconds: float,
    n_items: int,
    counter: multiprocessing.Value,  # type: ignore[valid-type]
    rate: float = 0.0,
) -> None:
    """XADD events in pipelined batches for ``seconds`` (a separate process): as fast as possible,
    or ``rate`` events per second (batches of 100 on a fixed schedule)."""
    import redis

    r = redis.Redis.from_url(url)
    rng = np.random.default_rng(3)
    batch = 100 if rate > 0 else 1000
    start = time.monotonic()
    end = start + seconds
    sent = 0
    while time.monotonic() < end:
        if rate > 0:
            time.sleep(max(0.0, start + sent / rate - time.monotonic()))
        pipe = r.pipeline(transaction=False)
        for x in rng.integers(0, 10**9, batch):
            pipe.xadd(
                STREAM,
                {
                    "user_id": f"s{int(x) % 20000}",
                    "item_id": str(int(x) % n_items),
                    "event_type": "view",
                },
            )
        pipe.execute()
        sent += batch
        counter.value += batch  # type: ignore[attr-defined]


async def freshness(url: str, port: int, seconds: float, n_items: int) -> list[float]:
    """Produce one event for a new user every 0.1 s; time until replica ``port`` reflects it."""
    import redis.asyncio as aredis

    r = aredis.Redis.from_url(url)
    conn = await Conn.open(port)
    lat: list[float] = []
    end = time.monotonic() + seconds
    j = 0
    while time.monotonic() < end:
        user = f"probe-{os.getpid()}-{j}"
        start = time.perf_counter()
        await r.xadd(STREAM, {"user_id": user, "item_id": str(j % n_items), "event_type": "view"})
        while True:
            _, body = await conn.request("GET", f"/v1/users/{user}/recommendations?k=20")
            if json.loads(body)["strategy"] == "fold_in":
                break
            if time.perf_counter() - start > 10:
                raise SystemExit(f"event for {user} not reflected within 10 s")
        lat.append(time.perf_counter() - start)
        j += 1
        await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - start)))
    conn.close()
    await r.aclose()
    return lat


def start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="per phase")
    ap.add_argument(
        "--event-rate", type=float, default=2000.0, help="events/s produced while reads run"
    )
    ap.add_argument("--model", choices=["svd", "random"], default="svd")
    ap.add_argument(
        "--appendfsync",
        choices=["always", "everysec"],
        default="always",
        help="Redis AOF fsync policy (always: an applied event survives a power cut)",
    )
    ap.add_argument(
        "--consumer-nice",
        type=int,
        default=0,
        metavar="N",
        help="run the consumer at this niceness (reads preempt its batches on shared cores)",
    )
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "gemrec-bench-serve"))
    ap.add_argument("--json", help="also write the results here")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    load_at_start = os.getloadavg()[0]
    for binary in ("redis-server", "nginx"):
        if shutil.which(binary) is None:
            raise SystemExit(f"{binary} not found on PATH (apt-get install -y {binary})")
    workdir = Path(args.workdir)
    run_dir = Path(tempfile.mkdtemp(prefix="replicas-", dir=workdir if workdir.is_dir() else None))
    data = load(DATASET)
    model_dir, _ = build_model(workdir, data, args.model)
    n_items = 40981
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        rport = free_port()
        url = f"redis://127.0.0.1:{rport}/0"
        procs.append(
            start(
                [
                    "redis-server",
                    "--port",
                    str(rport),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    args.appendfsync,
                    "--dir",
                    str(run_dir),
                ],
                run_dir / "redis.log",
                env,
            )
        )
        ports = [free_port(), free_port()]
        for n, port in enumerate(ports):
            procs.append(
                start(
                    serve_command(model_dir, data.path, port, url), run_dir / f"serve{n}.log", env
                )
            )
        for n, port in enumerate(ports):
            wait_healthy(procs[1 + n], port, run_dir / f"serve{n}.log")
        consume = [
            *(["nice", "-n", str(args.consumer_nice)] if args.consumer_nice else []),
            sys.executable,
            "-m",
            "gemrec.cli",
            "consume",
            str(model_dir),
            "--dataset",
            str(data.path),
            "--from",
            url,
            "--stream",
            STREAM,
            "--batch",
            "5000",
        ]
        procs.append(start(consume, run_dir / "consume.log", env))
        prefix = run_dir / "nginx"
        for d in ("logs", "tmp"):
            (prefix / d).mkdir(parents=True, exist_ok=True)
        front = free_port()
        conf = (ROOT / "deploy" / "nginx.conf").read_text()
        conf = conf.replace("127.0.0.1:8001", f"127.0.0.1:{ports[0]}")
        conf = conf.replace("127.0.0.1:8002", f"127.0.0.1:{ports[1]}")
        conf = conf.replace("127.0.0.1:8080", f"127.0.0.1:{front}")
        (prefix / "nginx.conf").write_text(conf)
        procs.append(
            start(
                ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                run_dir / "nginx.log",
                env,
            )
        )
        wait_healthy(procs[-1], front, run_dir / "nginx.log")
        from gemrec.serve import open_store

        store = open_store(url)
        users = np.random.default_rng(0).permutation(29858)
        asyncio.run(fixed_rate(front, args.rate, 3.0, users, 20))  # warm-up

        def producing(seconds: float, rate: float) -> tuple[multiprocessing.Process, Any]:
            count = multiprocessing.Value("q", 0)
            proc = multiprocessing.Process(
                target=produce, args=(url, seconds, n_items, count, rate)
            )
            proc.start()
            return proc, count

        # phase 1: ingest alone, as fast as one producer can
        stored0, t0 = store.count_events(), time.perf_counter()
        producer, produced = producing(args.seconds, 0.0)
        producer.join()
        window = time.perf_counter() - t0
        applied = store.count_events() - stored0
        ingest = {
            "seconds": round(window, 1),
            "produced_events_per_s": produced.value / window,
            "applied_events_per_s": applied / window,
        }
        deadline = time.monotonic() + 120  # the consumer drains the backlog
        while store.count_events() - stored0 < produced.value and time.monotonic() < deadline:
            time.sleep(0.2)

        # phase 2: steady events, reads and freshness at the same time
        stored1, t1 = store.count_events(), time.perf_counter()
        producer, produced = producing(args.seconds, args.event_rate)

        async def together() -> tuple[dict[str, float], list[float]]:
            reads = asyncio.create_task(fixed_rate(front, args.rate, args.seconds, users, 20))
            fresh = asyncio.create_task(freshness(url, ports[1], args.seconds, n_items))
            return await reads, await fresh

        reads, fresh = asyncio.run(together())
        producer.join()
        window = time.perf_counter() - t1
        applied = store.count_events() - stored1
        store.close()
        f = np.asarray(fresh) * 1000
        results = {
            "load_average_at_start": load_at_start,
            "appendfsync": args.appendfsync,
            "consumer_nice": args.consumer_nice,
            "ingest": ingest,
            "mixed": {
                "seconds": round(window, 1),
                "event_rate": args.event_rate,
                "produced_events_per_s": produced.value / window,
                "applied_events_per_s": applied / window,
                "reads": reads,
                "freshness_p50_ms": float(np.percentile(f, 50)),
                "freshness_p99_ms": float(np.percentile(f, 99)),
                "freshness_samples": len(f),
            },
        }
        mixed = results["mixed"]
        print(
            f"ingest alone: produced {ingest['produced_events_per_s']:,.0f} events/s, applied "
            f"{ingest['applied_events_per_s']:,.0f} events/s (AOF fsync {args.appendfsync}, "
            f"consumer niceness {args.consumer_nice})\n"
            f"with {mixed['produced_events_per_s']:,.0f} events/s produced "
            f"({mixed['applied_events_per_s']:,.0f} applied):\n"
            f"  reads through nginx @ {args.rate:.0f} req/s: p50 {reads['p50_ms']:.2f} ms, "
            f"p99 {reads['p99_ms']:.2f} ms, errors {reads['errors']}\n"
            f"  freshness (stream -> other replica): p50 {mixed['freshness_p50_ms']:.1f} ms, "
            f"p99 {mixed['freshness_p99_ms']:.1f} ms ({len(f)} samples)\n"
            f"load average at start {load_at_start:.1f}, now {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=30)


if __name__ == "__main__":
    main()
