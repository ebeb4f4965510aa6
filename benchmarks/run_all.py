"""Run every benchmark script under benchmarks/ (``make bench``), one after another.

Each ``bench_*.py`` prints its own table (medians of several runs, ratios against a baseline
measured in the same run). Pass names to run a subset:
``python benchmarks/run_all.py graphfilter serve``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: the arguments each benchmark runs with under ``make bench`` (the headline measurement of each
#: section of docs/benchmarks.md; run a script with --help for its other modes)
ARGS: dict[str, list[str]] = {
    "bench_cf": ["--datasets", "gowalla", "--repeats", "3"],
    "bench_fusion": ["--datasets", "ml100k"],
    "bench_graphfilter": ["gowalla", "--repeat", "3", "--threads", "2"],
    "bench_ingest": ["--rows", "1000000", "--repeat", "3"],
    "bench_item2vec": ["--datasets", "amazon"],
    "bench_lightgcn": ["speed", "--batches", "10", "--repeat", "3"],
    "bench_serve": ["--model", "svd", "--workers", "1"],
}


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(a in s.stem for a in argv)]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        start = time.perf_counter()
        cmd = [sys.executable, str(script), *ARGS.get(script.stem, [])]
        print("$ " + " ".join(cmd[1:]), flush=True)
        rc = subprocess.call(
            cmd, cwd=HERE.parent, env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
        )
        print(f"=== {script.name}: exit {rc} in {time.perf_counter() - start:.0f}s", flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
