"""Benchmark the pipeline at scale: generate, import, graphfilter fit and scoring against events
(and, with ``--steps``, the behaviour analysis, the evaluation and one cluster-mode ``lightgcn``
epoch).

Each step is the ``gemrec`` command a user would run, in its own process; the script records its
wall time and its peak memory (resident set of the process and all its children, sampled every
0.1 s, so a Dask cluster's workers count) and appends one JSON line per step to ``--json``::

    python benchmarks/bench_scale.py --events 1000000                      # about a minute
    python benchmarks/bench_scale.py --events 1000000 10000000 100000000 \\
        --engines memory duckdb dask --workdir /big/disk/gemrec-scale \\
        --json docs/benchmarks/scaling.jsonl --plot docs/scaling_growth.png

The shop is Taobao-shaped: ``events / 100`` users and ``events / 25`` items (the Taobao
UserBehavior log has about 1M users, 4M items and 100M events). ``--dry-run`` prints the commands.
The 100M-event run needs about 20 GB of disk under ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("generate", "import", "fit", "score", "lightgcn", "analyze", "evaluate")
#: what a run measures unless ``--steps`` says otherwise
DEFAULT_STEPS = ("generate", "import", "fit", "score")
ENGINES = ("memory", "duckdb", "dask")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--events", type=int, nargs="+", default=[1_000_000], metavar="E")
    p.add_argument("--users-per-event", type=float, default=0.01, metavar="R")
    p.add_argument("--items-per-event", type=float, default=0.04, metavar="R")
    p.add_argument("--steps", nargs="+", choices=STEPS, default=list(DEFAULT_STEPS))
    p.add_argument(
        "--engines",
        nargs="+",
        choices=ENGINES,
        default=["duckdb"],
        help="import engines to measure (fit and score read the first one's dataset); with "
        "dask, also the Dask fit and Dask scoring",
    )
    p.add_argument("--memory-limit", default="4GB", help="duckdb's memory limit (4GB)")
    p.add_argument("--rank", type=int, default=64, help="graphfilter n_components (64)")
    p.add_argument("-k", type=int, default=20, help="list length scored (20)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("TMPDIR", "/tmp")) / "gemrec-scale",
        help="where shops, datasets and models go (kept between runs: reused if present)",
    )
    p.add_argument("--json", type=Path, help="append one JSON line per step")
    p.add_argument("--plot", type=Path, help="time and peak memory against events (PNG)")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    return p


def commands(args: argparse.Namespace, events: int) -> list[tuple[str, str, list[str]]]:
    """``(step, engine, argv)`` of every measured command at ``events``."""
    w = args.workdir / f"e{events}"
    shop, first = w / "shop", args.engines[0]
    users = max(1, round(events * args.users_per_event))
    items = max(1, round(events * args.items_per_event))
    out: list[tuple[str, str, list[str]]] = []
    if "generate" in args.steps:
        out.append(
            ("generate", "-", ["generate", "-o", str(shop), "--users", str(users), "--items",
             str(items), "--events", str(events), "--seed", "0", "--quiet"])
        )  # fmt: skip
    if "import" in args.steps:
        for engine in args.engines:
            out.append(
                ("import", engine, ["import", str(shop / "events"), "--format", "events",
                 "--items", str(shop / "items.parquet"), "--users", str(shop / "users.parquet"),
                 "-o", str(w / f"ds-{engine}"), "--engine", engine, "--memory-limit",
                 args.memory_limit, "--quiet"])
            )  # fmt: skip
    ds = str(w / f"ds-{first}")
    if "fit" in args.steps:
        fit = ["train", ds, "--model", "graphfilter", "--set", f"n_components={args.rank}",
               "--set", "item_item=truncated", "--no-tune", "--quiet", "--no-track"]  # fmt: skip
        out.append(("fit", "memory", [*fit, "-o", str(w / "gf")]))
        if "dask" in args.engines:
            out.append(("fit", "dask", [*fit, "-o", str(w / "gf-dask"), "--engine", "dask"]))
    if "score" in args.steps:
        out.append(
            ("score", "memory", ["recommend", str(w / "gf"), "--dataset", ds, "--users", "all",
             "-k", str(args.k), "-o", str(w / "recs.jsonl"), "--quiet"])
        )  # fmt: skip
        if "dask" in args.engines:
            out.append(
                ("score", "dask", ["recommend", str(w / "gf"), "--dataset", ds, "--users",
                 "all", "-k", str(args.k), "-o", str(w / "recs-dask"), "--engine", "dask",
                 "--quiet"])
            )  # fmt: skip
    if "lightgcn" in args.steps:  # one cluster-mode epoch, as in bench_lightgcn.py cluster-growth
        out.append(
            ("lightgcn", "cluster", ["train", ds, "--model", "lightgcn", "--set", "mode=cluster",
             "--set", "epochs=1", "--set", "embedding_dim=64", "--set", "init=normal",
             "--set", "train_batch_size=16384", "--no-refit", "--quiet", "--no-track",
             "-o", str(w / "lgn-cluster")])
        )  # fmt: skip
    if "analyze" in args.steps:
        out.append(("analyze", "memory", ["analyze", ds, "-o", str(w / "report"), "--quiet"]))
    if "evaluate" in args.steps:  # pop beside the fitted model, the same protocol
        out.append(("fit", "pop", ["train", ds, "--model", "pop", "-o", str(w / "pop"),
                    "--quiet", "--no-track"]))  # fmt: skip
        for model in ("pop", "gf"):
            out.append(
                ("evaluate", model, ["evaluate", str(w / model), "--dataset", ds, "--no-track"])
            )
    return out


def measure(argv: Sequence[str]) -> dict[str, Any]:
    """Run ``gemrec ARGV``; wall seconds, peak resident memory of its process tree, exit code."""
    import psutil

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    cmd = ["-m", "gemrec.cli", *argv]
    proc = subprocess.Popen([sys.executable, *cmd], env=env, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                rss = 0
                for p in tree:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    done.set()
    sampler.join()
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "peak_rss_gib": round(peak / 2**30, 3),
        "exit": proc.returncode,
        "output": stdout.strip().splitlines()[-1:] if stdout else [],
    }


def epoch_seconds(model_dir: Path) -> dict[str, float]:
    """``{"epoch_seconds": ...}``: the last epoch's time, from the model's ``training.json``."""
    record = model_dir / "training.json"
    if not record.is_file():
        return {}
    history = json.loads(record.read_text()).get("early_stopping", {}).get("history", [])
    return {"epoch_seconds": round(float(history[-1]["seconds"]), 1)} if history else {}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    latest = {(r["step"], r["engine"], r["events"]): r for r in rows}  # the last run of each
    series: dict[str, list[dict[str, Any]]] = {}
    for r in latest.values():
        if r["exit"] == 0:
            label = r["step"] if r["engine"] in ("-", None) else f"{r['step']} ({r['engine']})"
            series.setdefault(label, []).append(r)
    for label, rs in sorted(series.items()):
        rs = sorted(rs, key=lambda r: r["events"])
        x = [r["events"] for r in rs]
        axes[0].plot(x, [r["seconds"] for r in rs], marker="o", label=label)
        axes[1].plot(x, [r["peak_rss_gib"] for r in rs], marker="o", label=label)
    for ax, ylabel in zip(axes, ("wall time (s)", "peak memory (GiB)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("events")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    sizes = ", ".join(f"{e / 1e6:g}M" for e in sorted({r["events"] for r in latest.values()}))
    fig.suptitle(f"gemrec at scale (Taobao-shaped synthetic shop; measured at {sizes} events)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# {os.cpu_count()} CPUs, load average {load}", flush=True)
    rows: list[dict[str, Any]] = []
    if args.json and args.json.is_file():
        rows = [json.loads(line) for line in args.json.read_text().splitlines() if line.strip()]
    for events in args.events:
        for step, engine, cmd in commands(args, events):
            shown = "gemrec " + " ".join(cmd)
            print("$ " + shown, flush=True)
            if args.dry_run:
                continue
            if step == "generate" and (Path(cmd[2]) / "generate.json").is_file():
                print("  (shop already generated: reused)")
                continue
            result = measure(cmd)
            row = {
                "step": step,
                "engine": engine,
                "events": events,
                **result,
                **(epoch_seconds(Path(cmd[-1])) if step == "lightgcn" else {}),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "cpus": os.cpu_count(),
            }
            print(
                f"  {step:8s} {engine:7s} {events:>12,} events  {result['seconds']:9.1f} s  "
                f"peak {result['peak_rss_gib']:7.2f} GiB  exit {result['exit']}"
                + (f"  (epoch {row['epoch_seconds']} s)" if "epoch_seconds" in row else ""),
                flush=True,
            )
            rows.append(row)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                with args.json.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
            if result["exit"] != 0:
                print(f"  failed: {' '.join(result['output'])}", file=sys.stderr)
    if args.plot and not args.dry_run:
        plot(rows, args.plot)
        print(f"plot -> {args.plot}")
    if not args.dry_run and shutil.disk_usage(args.workdir).free < 5 * 2**30:
        print(f"note: less than 5 GiB free under {args.workdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
