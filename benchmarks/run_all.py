"""Run the benchmarks, each script with the arguments of the figures it measures.

    python benchmarks/run_all.py                 # the `make bench` set (the shorter runs)
    python benchmarks/run_all.py --full          # every figure in docs/benchmarks (hours)
    python benchmarks/run_all.py --dry-run       # print the commands and check their arguments
    python benchmarks/run_all.py cf serve        # the runs whose name contains one of the words

:data:`RUNS` is the list of record: every figure in ``docs/benchmarks.md`` and
``docs/benchmarks/*.md`` names the run that measures it. Before running anything, every selected
command's arguments are parsed by its script's own parser (``build_parser()``), so a wiring
mistake fails at once instead of after an hour of benchmarks. Each run is preceded by the
conditions it ran under (commit, CPUs, thread settings, load average).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Run:
    """One benchmark command."""

    name: str
    script: str
    args: tuple[str, ...]
    #: the page of docs/benchmarks that holds its figures (a path ending in .md: under docs/)
    page: str
    #: run only with ``--full`` (too long for ``make bench``)
    full_only: bool = False

    def argv(self) -> list[str]:
        return [f"benchmarks/{self.script}.py", *self.args]

    def doc(self) -> str:
        if self.page.endswith(".md"):
            return f"docs/{self.page}"
        return f"docs/benchmarks/{self.page}.md"


RUNS: tuple[Run, ...] = (
    Run("cf-gowalla", "bench_cf", ("--datasets", "gowalla", "--repeats", "3", "--check"), "cf"),
    Run(
        "cf-other-datasets",
        "bench_cf",
        ("--datasets", "movielens-1m", "movielens-100k", "lastfm-2k", "--repeats", "1", "--check"),
        "cf",
        full_only=True,
    ),
    Run(
        "graphfilter-gowalla",
        "bench_graphfilter",
        ("gowalla", "--repeat", "3", "--threads", "2"),
        "graphfilter",
    ),
    Run(
        "graphfilter-datasets",
        "bench_graphfilter",
        ("datasets", "--threads", "2"),
        "graphfilter",
        full_only=True,
    ),
    Run(
        "graphfilter-chebycf",
        "bench_graphfilter",
        ("chebycf", "--whole-spectrum", "--threads", "2"),
        "graphfilter",
        full_only=True,
    ),
    Run(
        "graphfilter-growth",
        "bench_graphfilter",
        ("growth", "--repeat", "1", "--threads", "2"),
        "graphfilter",
        full_only=True,
    ),
    Run(
        "graphfilter-scale",
        "bench_graphfilter",
        ("scale", "--threads", "2"),
        "graphfilter",
        full_only=True,
    ),
    Run(
        "graphfilter-truncation",
        "bench_graphfilter",
        ("truncation", "--threads", "2"),
        "graphfilter",
        full_only=True,
    ),
    Run("tuned-gowalla", "bench_tuned", ("--datasets", "gowalla"), "graphfilter", full_only=True),
    Run(
        "tuned-datasets",
        "bench_tuned",
        ("--datasets", "movielens-100k,movielens-1m,lastfm-2k,taobao"),
        "graphfilter",
        full_only=True,
    ),
    Run(
        "tuned-unseen",
        "bench_tuned",
        (
            "--datasets",
            "amazon-scientific,amazon-scientific-random,ciao-social",
            "--models",
            "graphfilter,itemknn,rp3beta",
        ),
        "graphfilter",
        full_only=True,
    ),
    Run(
        "lightgcn-speed",
        "bench_lightgcn",
        ("speed", "--batches", "20", "--repeat", "3"),
        "lightgcn",
    ),
    Run(
        "lightgcn-accuracy",
        "bench_lightgcn",
        ("accuracy", "--report-every", "40"),
        "lightgcn",
        full_only=True,
    ),
    *(
        Run(
            f"lightgcn-early-stop-{dataset}",
            "bench_lightgcn",
            ("accuracy", "--early-stop", "--dataset", dataset),
            "lightgcn",
            full_only=True,
        )
        for dataset in ("lastfm-2k", "movielens-100k", "movielens-1m")
    ),
    Run(
        "lightgcn-growth",
        "bench_lightgcn",
        ("growth", "--batches", "6"),
        "lightgcn",
        full_only=True,
    ),
    Run(
        # against lightgcn-accuracy, the faithful mode's curve on the same schedule
        "lightgcn-cluster-accuracy",
        "bench_lightgcn",
        ("accuracy", "--set", "mode=cluster", "--report-every", "40"),
        "lightgcn",
        full_only=True,
    ),
    Run(
        "lightgcn-cluster-growth",
        "bench_lightgcn",
        ("cluster-growth", "--sizes", "1000000", "3000000", "10000000"),
        "lightgcn",
        full_only=True,
    ),
    Run(
        "mf-gowalla",
        "bench_lightgcn",
        ("baselines", "--model", "mf", "--early-stop"),
        "lightgcn",
        full_only=True,
    ),
    Run(
        "ncf-movielens-1m",
        "bench_lightgcn",
        ("baselines", "--model", "ncf", "--dataset", "movielens-1m", "--set", "epochs=2"),
        "lightgcn",
        full_only=True,
    ),
    Run("item2vec-amazon", "bench_item2vec", ("--datasets", "amazon"), "item2vec"),
    Run(
        "item2vec-gowalla-taobao",
        "bench_item2vec",
        ("--datasets", "gowalla", "taobao"),
        "item2vec",
        full_only=True,
    ),
    Run("item2vec-movielens-1m", "bench_item2vec", ("--datasets", "movielens-1m"), "item2vec"),
    Run(
        "item2vec-amazon-early-stop",
        "bench_item2vec",
        ("--datasets", "amazon", "--early-stop"),
        "item2vec",
    ),
    Run(
        "item2vec-gowalla-early-stop",
        "bench_item2vec",
        ("--datasets", "gowalla", "--early-stop"),
        "item2vec",
    ),
    Run(
        "item2vec-movielens-1m-early-stop",
        "bench_item2vec",
        ("--datasets", "movielens-1m", "--early-stop"),
        "item2vec",
    ),
    Run(
        "item2vec-valid-window3-negatives5",
        "bench_item2vec",
        (
            "--datasets",
            "movielens-1m",
            "gowalla",
            "--split",
            "valid",
            *("--set", "window=3", "--set", "negatives=5", "--set", "walks_per_item=5"),
            *("--set", "epochs=3", "--set", "lr_decay=1.0"),
        ),
        "item2vec",
        full_only=True,
    ),
    *(
        Run(
            f"item2vec-valid-walks-{walks}",
            "bench_item2vec",
            ("--datasets", "movielens-1m", "--split", "valid", "--set", f"walks_per_item={walks}"),
            "item2vec",
            full_only=walks > 50,
        )
        for walks in (5, 20, 50, 100, 200)
    ),
    *(
        Run(
            f"item2vec-gowalla-valid-walks-{walks}",
            "bench_item2vec",
            ("--datasets", "gowalla", "--split", "valid", "--set", f"walks_per_item={walks}"),
            "item2vec",
            full_only=True,
        )
        for walks in (5, 10, 20)
    ),
    *(
        Run(
            f"distributed-{model}-ml100k",
            "bench_distributed",
            (
                *("--dataset", "movielens-100k", "--model", model, "--epochs", "3"),
                # item2vec's figures: 5 walks per item, the default when they were measured
                *(("--set", "walks_per_item=5") if model == "item2vec" else ()),
            ),
            "scaling.md",
        )
        for model in ("lightgcn", "mf", "ncf", "item2vec")
    ),
    Run(
        "distributed-lightgcn-gowalla",
        "bench_distributed",
        ("--dataset", "gowalla", "--model", "lightgcn", "--epochs", "3"),
        "scaling.md",
    ),
    Run(
        "distributed-mf-gowalla",
        "bench_distributed",
        ("--dataset", "gowalla", "--model", "mf", "--epochs", "3"),
        "scaling.md",
        full_only=True,
    ),
    Run("fusion-ml100k", "bench_fusion", ("--datasets", "ml100k"), "fusion"),
    Run("fusion-gowalla", "bench_fusion", ("--datasets", "gowalla"), "fusion", full_only=True),
    Run("ingest", "bench_ingest", ("--rows", "1000000", "--repeat", "3"), "ingest"),
    Run(
        "scale-1m",
        "bench_scale",
        ("--events", "1000000", "--engines", "memory", "duckdb", "dask"),
        "scaling",
    ),
    Run(
        "scale-growth",
        "bench_scale",
        (
            "--events",
            "1000000",
            "10000000",
            "100000000",
            "--engines",
            "duckdb",
            "dask",
            "--json",
            "docs/benchmarks/scaling.jsonl",
            "--plot",
            "docs/scaling_growth.png",
        ),
        "scaling",
        full_only=True,
    ),
    Run(
        "lightgcn-scale",
        "bench_scale",
        (
            "--events",
            "1000000",
            "10000000",
            "100000000",
            "--steps",
            "generate",
            "import",
            "lightgcn",
            "--engines",
            "duckdb",
            "--json",
            "docs/benchmarks/scaling.jsonl",
            "--plot",
            "docs/scaling_growth.png",
        ),
        "scaling.md",
        full_only=True,
    ),
    Run(
        "ann-recs-gowalla",
        "bench_ann_recs",
        ("--datasets", "gowalla", "--indexes", "hnsw", "ivf", "--candidates", "100", "200"),
        "scaling.md",
    ),
    Run(
        "ann-recs-shop",
        "bench_ann_recs",
        ("--datasets", "shop", "--shop-events", "10000000", "--indexes", "hnsw", "ivf"),
        "scaling.md",
        full_only=True,
    ),
    Run(
        "scale-memory-engine",
        "bench_scale",
        (
            "--events",
            "1000000",
            "10000000",
            "--engines",
            "memory",
            "--steps",
            "generate",
            "import",
            "--json",
            "docs/benchmarks/scaling.jsonl",
        ),
        "scaling",
        full_only=True,
    ),
    Run(
        "coldstart",
        "bench_coldstart",
        ("--datasets", "amazon", "movielens-1m", "movielens-100k", "lastfm-2k", "ciao"),
        "coldstart",
    ),
    Run(
        "coldstart-text",
        "bench_coldstart",
        ("--datasets", "amazon", "amazon-warm", "--text-throughput", "512"),
        "coldstart",
    ),
    Run("serve", "bench_serve", ("--model", "svd", "--workers", "1"), "serve"),
    Run("social", "bench_social", ("--datasets", "lastfm-2k", "ciao"), "coldstart"),
    Run("replicas", "bench_replicas", ("--model", "svd"), "deployment.md"),
    Run("serve-score-cpu", "bench_score_cpu", (), "serve"),
    Run(
        "serve-per-model",
        "bench_serve",
        ("--models", "all", "--write-docs"),
        "serve",
        full_only=True,
    ),
)


def _parser_of(script: str) -> argparse.ArgumentParser:
    """The script's own ``build_parser()`` (imports the script without running it)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{script}", HERE / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser: argparse.ArgumentParser = module.build_parser()
    return parser


def check_arguments(runs: list[Run]) -> list[str]:
    """``name: error`` for every run whose arguments its script's parser rejects."""
    errors = []
    parsers: dict[str, argparse.ArgumentParser] = {}
    for run in runs:
        if run.script not in parsers:
            parsers[run.script] = _parser_of(run.script)
        parser = parsers[run.script]
        parser.exit_on_error = False
        try:
            parser.parse_args(list(run.args))
        except (argparse.ArgumentError, SystemExit) as exc:
            errors.append(f"{run.name}: {' '.join(run.argv())}: {exc}")
    return errors


def conditions() -> str:
    """Commit, CPUs, thread settings and load average: the conditions of a measurement."""
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"commit {commit or 'unknown'}, {os.cpu_count()} CPUs, "
        f"threads {threads or 'default'}, load average {load}"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("names", nargs="*", help="run only the runs whose name contains one of these")
    p.add_argument("--full", action="store_true", help="also the long runs (hours)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the commands and check their arguments"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runs = [r for r in RUNS if args.full or not r.full_only]
    if args.names:
        runs = [r for r in runs if any(n in r.name for n in args.names)]
    if not runs:
        print(f"no run matches {args.names}; runs: {', '.join(r.name for r in RUNS)}")
        return 2
    errors = check_arguments(runs)
    for e in errors:
        print(f"bad arguments: {e}")
    if errors:
        return 2
    if args.dry_run:
        for r in runs:
            print(f"{r.name:28s} {r.doc()}  python {' '.join(r.argv())}")
        print(f"arguments of all {len(runs)} runs parse")
        return 0
    failed = []
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for run in runs:
        print(f"\n=== {run.name} ({conditions()})", flush=True)
        print("$ python " + " ".join(run.argv()), flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, *run.argv()], cwd=ROOT, env=env)
        print(
            f"=== {run.name}: exit {rc} in {time.perf_counter() - start:.0f} s "
            f"(load at the end {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        if rc != 0:
            failed.append(run.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
