"""Serving benchmark: latency at a fixed request rate, freshness and ingest throughput.

Model: a Gowalla-sized embedding model (29,858 users x 40,981 items, d=64) -- the `svd` model
(PureSVD) fit on the Gowalla train split (`--model svd`, ~40 s to fit, cached in --workdir) or
random embeddings of the same size (`--model random`). Both are valid for latency: serving cost
depends on sizes, not on quality. The service runs as a real `gemrec serve` subprocess (uvicorn,
--workers N) on 127.0.0.1; the load generator is a small asyncio HTTP/1.1 keep-alive client in
this process, open loop (latency is measured from each request's *scheduled* send time: queueing
is not hidden).

Run:  PYTHONPATH=src python benchmarks/bench_serve.py [--rate 300] [--seconds 20] [--model svd]

Per-model mode (``--models``): every model type the service serves (the models and training
settings of ``benchmarks/bench_score_cpu.py``, fit on Gowalla and cached in --workdir), each served
by ``gemrec serve`` with its default settings; per model an open-loop run at ``--rate``, then a rate
search for the highest rate whose p99 stays within ``--p99-budget`` ms without errors. The table
(model, p50, p99, errors at ``--rate``, highest rate, server CPU ms per request) is printed as
Markdown and, with ``--write-docs``, replaces the one in docs/benchmarks.md::

    PYTHONPATH=src python benchmarks/bench_serve.py --models all --write-docs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _data import load  # noqa: E402
from bench_score_cpu import MODELS, model_dir  # noqa: E402

from gemrec.data.store import Dataset  # noqa: E402
from gemrec.models.base import EmbeddingRecommender  # noqa: E402
from gemrec.models.svd import PureSVD  # noqa: E402

#: Gowalla imported by the importer, with 50 random item categories (benchmarks/_data.py)
DATASET = "gowalla-categories"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(
    model_dir: Path, dataset: Path, port: int, store: str, *options: str
) -> list[str]:
    """The argv of ``gemrec serve MODEL_DIR --dataset DATASET --store STORE`` on
    127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "gemrec.cli",
        "serve",
        str(model_dir),
        "--dataset",
        str(dataset),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--store",
        store,
        *options,
    ]


def wait_healthy(
    proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 300.0
) -> dict:
    """Poll ``/healthz`` until it answers 200; fail if the server exits or ``timeout`` passes."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            if r.status_code == 200:
                return dict(r.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not become healthy within {timeout:.0f} s")


def wait_precomputed(port: int, health: dict, timeout: float = 1800.0) -> float:
    """Seconds until every known user's list is precomputed (0 when the service scores each
    request: ``precomputed_users`` is null); the requests that follow read those lists."""
    import httpx

    if health.get("precomputed_users") is None:
        return 0.0
    start = deadline = time.monotonic()
    deadline += timeout
    while time.monotonic() < deadline:
        h = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        if h["precomputed_users"] >= h["n_users"]:
            return time.monotonic() - start
        time.sleep(1.0)
    raise SystemExit(f"lists not precomputed within {timeout:.0f} s")


class RandomEmbeddings(PureSVD):
    """Same shapes as the SVD model, Gaussian embeddings (no fit cost)."""

    def _fit(self, interactions, valid):  # type: ignore[no-untyped-def]
        rng = np.random.default_rng(self.seed)
        self.user_embeddings_ = rng.standard_normal((interactions.n_users, self.factors)).astype(
            np.float32
        )
        self.item_embeddings_ = rng.standard_normal((interactions.n_items, self.factors)).astype(
            np.float32
        )
        self.singular_values_ = np.ones(self.factors, np.float32)


def build_model(workdir: Path, dataset: Dataset, kind: str) -> tuple[Path, float]:
    path = workdir / f"model-{kind}-{dataset.path.name}"
    if (path / "manifest.json").is_file():
        return path, json.loads((path / "fit.json").read_text())["seconds"]
    klass: type[EmbeddingRecommender] = PureSVD if kind == "svd" else RandomEmbeddings
    start = time.perf_counter()
    model = klass(factors=64).fit(dataset.interactions("train", "valid"))
    seconds = time.perf_counter() - start
    model.save(path)  # saved as "svd": random embeddings load through the same class
    (path / "fit.json").write_text(json.dumps({"seconds": seconds}))
    return path, seconds


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (server + workers)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 (pgrp) is index 2 after the command name
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


# ------------------------------------------------- a tiny HTTP/1.1 keep-alive client
class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def fixed_rate(
    port: int, rate: float, seconds: float, users: np.ndarray, k: int
) -> dict[str, float]:
    """Open-loop GET recommendations at ``rate`` req/s; latency from the scheduled send time."""
    n = int(rate * seconds)
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await Conn.open(port))
    lat: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.1

    async def one(i: int) -> None:
        nonlocal errors
        scheduled = t0 + i / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        conn = await pool.get()
        try:
            status, _ = await conn.request(
                "GET", f"/v1/users/{users[i % len(users)]}/recommendations?k={k}"
            )
            if status != 200:
                errors += 1
        finally:
            pool.put_nowait(conn)
        lat.append(loop.time() - scheduled)

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.gather(*tasks)
    wall = loop.time() - t0
    while not pool.empty():
        pool.get_nowait().close()
    a = np.asarray(lat) * 1000
    return {
        "requests": n,
        "errors": errors,
        "achieved_rps": n / wall,
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }


async def freshness(port: int, n: int, users: np.ndarray, k: int) -> dict[str, float]:
    """POST an event on the user's current top item, then GET: time until the list drops it."""
    conn = await Conn.open(port)
    lat, reflected = [], 0
    for j in range(n):
        u = f"fresh{j % 50}" if j % 2 else str(users[j])
        status, body = await conn.request("GET", f"/v1/users/{u}/recommendations?k={k}")
        top = json.loads(body)["items"][0]["item_id"]
        ev = json.dumps({"events": [{"user_id": u, "item_id": top, "event_type": "view"}]}).encode()
        start = time.perf_counter()
        status, _ = await conn.request("POST", "/v1/events", ev)
        assert status == 200
        _status, body = await conn.request("GET", f"/v1/users/{u}/recommendations?k={k}")
        lat.append(time.perf_counter() - start)
        reflected += top not in {x["item_id"] for x in json.loads(body)["items"]}
    conn.close()
    a = np.asarray(lat) * 1000
    return {
        "samples": n,
        "reflected": reflected,
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
    }


async def ingest(port: int, n_events: int, batch: int, n_items: int) -> dict[str, float]:
    conns = [await Conn.open(port) for _ in range(2)]
    rng = np.random.default_rng(1)
    bodies = []
    for b in range(n_events // batch):
        events = [
            {
                "user_id": f"ing{int(x) % 5000}",
                "item_id": str(int(x) % n_items),
                "event_type": "view",
                "event_id": f"bench-{time.time_ns()}-{b}-{j}",
            }
            for j, x in enumerate(rng.integers(0, 10**9, batch))
        ]
        bodies.append(json.dumps({"events": events}).encode())
    accepted = 0

    async def worker(c: Conn, mine: list[bytes]) -> None:
        nonlocal accepted
        for body in mine:
            status, out = await c.request("POST", "/v1/events", body)
            assert status == 200, out
            accepted += json.loads(out)["accepted"]

    start = time.perf_counter()
    await asyncio.gather(*(worker(c, bodies[i::2]) for i, c in enumerate(conns)))
    wall = time.perf_counter() - start
    for c in conns:
        c.close()
    return {"events": accepted, "batch": batch, "seconds": wall, "events_per_s": accepted / wall}


def in_process_retrieval(model_dir: Path, dataset: Path, users: np.ndarray) -> dict[str, float]:
    """Median in-process time of one list (engine only): exact scan vs faiss HNSW, and the HNSW
    recall@20 against the exact lists (same users, seen items excluded)."""
    from threadpoolctl import threadpool_limits

    from gemrec.serve import ServeSettings, load_engine

    threadpool_limits(1)  # as the service does
    out: dict[str, float] = {}
    lists: dict[str, list[set[str]]] = {}
    for label, threshold in (("exact", 10**9), ("faiss-hnsw", 1)):
        start = time.perf_counter()
        engine = load_engine(
            ServeSettings(model_dir=model_dir, dataset_dir=dataset, ann_threshold=threshold)
        )
        out[f"{label}_load_s"] = time.perf_counter() - start
        times, lists[label] = [], []
        for u in users[:300]:
            t = time.perf_counter()
            recs = engine.recommend(str(u), 20, [], with_reasons=True)
            times.append(time.perf_counter() - t)
            lists[label].append({r.item_id for r in recs.items})
        out[f"{label}_median_ms"] = float(np.median(times) * 1000)
    out["exact_over_ann"] = out["exact_median_ms"] / out["faiss-hnsw_median_ms"]
    out["ann_recall_at_20"] = float(
        np.mean([len(a & b) / 20 for a, b in zip(lists["exact"], lists["faiss-hnsw"], strict=True)])
    )
    return out


#: rates tried by the rate search (req/s), after ``--rate`` itself
SEARCH_RATES = (400, 500, 650, 800, 1000, 1250, 1500, 2000, 2500, 3000)
#: where the per-model table lives in docs/benchmarks.md
TABLE_START, TABLE_END = "<!-- serve-per-model:start -->", "<!-- serve-per-model:end -->"


def serve_one(
    path: Path, dataset: Path, workdir: Path, args: argparse.Namespace
) -> dict[str, float | str]:
    """Serve the model at ``path`` with default settings and measure it (module docstring)."""
    store = workdir / f"events-{os.getpid()}.sqlite3"
    log = workdir / f"serve-{os.getpid()}.log"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        serve_command(path, dataset, port, f"sqlite:///{store}"),
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    out: dict[str, float | str] = {}
    try:
        health = wait_healthy(proc, port, log)
        out["retrieval"] = str(health["retrieval"])
        out["precompute_s"] = wait_precomputed(port, health)
        users = np.random.default_rng(0).permutation(29858)
        asyncio.run(fixed_rate(port, args.rate, 3.0, users, args.k))  # warm-up
        cpu0 = group_cpu_seconds(proc.pid)
        run = asyncio.run(fixed_rate(port, args.rate, args.seconds, users[5000:], args.k))
        out["cpu_ms_per_request"] = (group_cpu_seconds(proc.pid) - cpu0) * 1000 / run["requests"]
        out.update({f"at_rate_{key}": value for key, value in run.items()})
        best = 0.0
        if run["p99_ms"] <= args.p99_budget and not run["errors"]:
            best = args.rate
            for rate in (r for r in SEARCH_RATES if r > args.rate):
                r = asyncio.run(fixed_rate(port, rate, args.search_seconds, users, args.k))
                if r["p99_ms"] > args.p99_budget or r["errors"]:
                    break
                best = rate
        out["max_rate"] = best
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
    return out


def per_model_table(results: dict[str, dict[str, float | str]], rate: float, budget: float) -> str:
    """The Markdown table of the per-model mode."""
    lines = [
        f"| model | retrieval | p50 at {rate:.0f} req/s | p99 | errors | highest rate with p99 <= "
        f"{budget:.0f} ms | server CPU per request |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['retrieval']} | {float(r['at_rate_p50_ms']):.2f} ms | "
            f"{float(r['at_rate_p99_ms']):.2f} ms | {int(float(r['at_rate_errors']))} | "
            f"{'< ' + str(int(rate)) if not r['max_rate'] else str(int(float(r['max_rate'])))} "
            f"req/s | {float(r['cpu_ms_per_request']):.2f} ms |"
        )
    return "\n".join(lines)


def write_table(doc: Path, table: str, conditions: str) -> None:
    """Replace the text between the per-model markers of ``doc`` with ``table``."""
    text = doc.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        raise SystemExit(f"{doc}: expected the markers {TABLE_START} and {TABLE_END}")
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    doc.write_text(f"{head}{TABLE_START}\n{table}\n\n{conditions}\n{TABLE_END}{tail}")


def main_per_model(args: argparse.Namespace) -> None:
    names = list(MODELS) if args.models == "all" else args.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; expected 'all' or some of {list(MODELS)}")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = load(DATASET)
    load_start = os.getloadavg()[0]
    results: dict[str, dict[str, float | str]] = {}
    for name in names:
        results[name] = serve_one(model_dir(workdir, data, name), data.path, workdir, args)
        print(f"{name}: {results[name]}", flush=True)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    conditions = (
        f"Measured at {commit}: 1 worker, {args.seconds:.0f} s at {args.rate:.0f} req/s after a "
        f"3 s warm-up, {args.search_seconds:.0f} s per searched rate; load average "
        f"{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end. Command: "
        f"`PYTHONPATH=src python benchmarks/bench_serve.py --models {args.models} "
        f"--seconds {args.seconds:g} --search-seconds {args.search_seconds:g} --write-docs`."
    )
    table = per_model_table(results, args.rate, args.p99_budget)
    print(table + "\n\n" + conditions)
    if args.write_docs:
        write_table(ROOT / "docs" / "benchmarks.md", table, conditions)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3, help="fixed-rate runs (medians reported)")
    ap.add_argument("--model", choices=["svd", "random"], default="svd")
    ap.add_argument("--ann-threshold", type=int, default=20_000)
    ap.add_argument("-k", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "gemrec-bench-serve"))
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument(
        "--models",
        help=f"per-model mode: 'all' or comma-separated, of {','.join(MODELS)} (module docstring)",
    )
    ap.add_argument("--p99-budget", type=float, default=20.0, help="ms, for the rate search")
    ap.add_argument("--search-seconds", type=float, default=5.0, help="seconds per searched rate")
    ap.add_argument(
        "--write-docs", action="store_true", help="per-model mode: update docs/benchmarks.md"
    )
    return ap


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.models:
        main_per_model(args)
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = load(DATASET)
    dataset = data.path
    model_dir, fit_s = build_model(workdir, data, args.model)
    store = workdir / f"events-{os.getpid()}.sqlite3"
    log = workdir / f"serve-{os.getpid()}.log"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        serve_command(
            model_dir,
            dataset,
            port,
            f"sqlite:///{store}",
            "--ann-threshold",
            str(args.ann_threshold),
            "--workers",
            str(args.workers),
        ),
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    results: dict[str, object] = {
        "workers": args.workers,
        "load_average_at_start": os.getloadavg()[0],
        "model": args.model,
        "fit_seconds": round(fit_s, 1),
        "n_users": 29858,
        "n_items": 40981,
        "dim": 64,
    }
    try:
        h = wait_healthy(proc, port, log)
        results["retrieval"] = h["retrieval"]
        users = np.random.default_rng(0).permutation(29858)
        asyncio.run(fixed_rate(port, args.rate, 3.0, users, args.k))  # warm-up
        cpu0 = group_cpu_seconds(proc.pid)
        runs = [
            asyncio.run(fixed_rate(port, args.rate, args.seconds, users[i * 5000 :], args.k))
            for i in range(args.runs)
        ]
        cpu_ms = (group_cpu_seconds(proc.pid) - cpu0) * 1000 / sum(r["requests"] for r in runs)
        med = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
        results["recommendations"] = {
            "runs": runs,
            "median": med,
            "server_cpu_ms_per_request": cpu_ms,
        }
        print(
            f"GET recommendations @ {args.rate:.0f} req/s x {args.seconds:.0f} s, "
            f"{args.runs} runs (median): p50 {med['p50_ms']:.2f} ms, p99 {med['p99_ms']:.2f} ms, "
            f"achieved {med['achieved_rps']:.0f} req/s, "
            f"errors {int(sum(r['errors'] for r in runs))}; server CPU {cpu_ms:.2f} ms per request "
            f"(load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        fr = asyncio.run(freshness(port, 400, users, args.k))
        results["freshness"] = fr
        print(
            f"freshness (POST event -> next GET without the item): p50 {fr['p50_ms']:.2f} ms, "
            f"p99 {fr['p99_ms']:.2f} ms, reflected {fr['reflected']}/{fr['samples']}",
            flush=True,
        )
        ing = [asyncio.run(ingest(port, 50_000, 1000, 40981)) for _ in range(3)]
        eps = float(np.median([r["events_per_s"] for r in ing]))
        results["ingest"] = {"runs": ing, "median_events_per_s": eps}
        print(
            f"ingest (batches of 1000, durable SQLite WAL+FULL, 3 runs): "
            f"median {eps:,.0f} events/s",
            flush=True,
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
    ret = in_process_retrieval(model_dir, dataset, np.random.default_rng(2).permutation(29858))
    results["in_process"] = ret
    print(
        f"in-process list of 20 (engine only, median): exact {ret['exact_median_ms']:.3f} ms, "
        f"faiss HNSW {ret['faiss-hnsw_median_ms']:.3f} ms "
        f"(exact/ANN = {ret['exact_over_ann']:.2f}x), "
        f"HNSW recall@20 vs exact {ret['ann_recall_at_20']:.3f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
