"""Benchmark ``gemrec import``: wall time against a bare ``pandas.read_csv`` of the same file.

Run: ``python benchmarks/bench_ingest.py [--rows 1000000] [--repeat 3]``

Prints the median of ``--repeat`` runs for
- a synthetic event log (CSV, ISO and epoch timestamps mixed, 1% bad rows, 1% duplicates) imported
  with ``--on-error skip`` (validation, dedup, weights, random split, Parquet output), and the same
  file read by ``pandas.read_csv`` with no validation at all (the baseline);
- ../shared/data/gowalla in LightGCN format (target: well under 20 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import SHARED_DATA

from gemrec.data.importer import import_dataset

GOWALLA = SHARED_DATA / "gowalla"


def make_log(path: Path, n_rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_rows // 20 + 1, n_rows)
    items = (rng.pareto(1.2, n_rows) * 50).astype(np.int64) % 200_000
    types = np.array(["view", "click", "fav", "cart", "purchase"])[
        rng.choice(5, n_rows, p=[0.7, 0.15, 0.05, 0.06, 0.04])
    ]
    ts = 1_600_000_000 + rng.integers(0, 90 * 86400, n_rows)
    ts_text = ts.astype(str).astype(object)
    iso = rng.random(n_rows) < 0.3
    ts_text[iso] = pd.to_datetime(ts[iso], unit="s").strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
    df = pd.DataFrame(
        {
            "user_id": "u" + users.astype(str),
            "item_id": "sku" + items.astype(str),
            "event_type": types,
            "timestamp": ts_text,
        }
    )
    bad = rng.random(n_rows) < 0.01
    df.loc[bad, "timestamp"] = "not-a-date"
    dup = df.sample(frac=0.01, random_state=seed)
    pd.concat([df, dup]).to_csv(path, index=False)


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    return ap


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "events.csv"
        make_log(log, args.rows)
        size_mb = log.stat().st_size / 1e6
        t_base = median_time(lambda: pd.read_csv(log, dtype=str), args.repeat)
        t_ours = median_time(
            lambda: import_dataset([log], Path(tmp) / "ds", on_error="skip"), args.repeat
        )
        print(f"events CSV {args.rows:,} rows ({size_mb:.0f} MB), median of {args.repeat}:")
        print(f"  pandas.read_csv(dtype=str) baseline   {t_base:6.2f} s")
        print(
            f"  gemrec import --on-error skip         {t_ours:6.2f} s  "
            f"({t_ours / t_base:.2f}x baseline)"
        )
        if GOWALLA.exists():
            t_g = median_time(
                lambda: import_dataset([GOWALLA], Path(tmp) / "gw", format="lightgcn"), args.repeat
            )
            print(f"  gowalla (lightgcn, 1,027,370 edges)   {t_g:6.2f} s")


if __name__ == "__main__":
    main()
