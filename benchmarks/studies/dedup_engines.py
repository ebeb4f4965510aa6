"""Which engine drops duplicates across parts best: DuckDB, Polars or pandas on Arrow datasets.

The step measured is the one the partitioned importer hands to an engine
(:mod:`gemrec.data.import_parts`): spilled parts (raw ids, type code, timestamp, value, event id,
part, line) -> exact duplicates dropped, then repeated event ids (first in part, line order wins)
-> distinct user and item ids -> the kept rows in part, line order.

    PYTHONPATH=src python benchmarks/studies/dedup_engines.py --events 1000000 5000000

Each engine runs in its own process (peak memory = that process's maximum resident set). Polars
is not a gemrec dependency: ``pip install polars`` to include it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
KEY = ["user_id", "item_id", "type", "timestamp", "value", "event_id"]

_RUN = r"""
import json, resource, sys, time
engine, spill, key = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
start = time.perf_counter()
if engine == "duckdb":
    import duckdb
    con = duckdb.connect(config={"memory_limit": "2GB", "threads": 2})
    con.execute("SET enable_progress_bar = false")
    con.execute(
        f"CREATE TEMP TABLE k1 AS SELECT * FROM read_parquet('{spill}/*.parquet') QUALIFY "
        f"row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY source, line) = 1"
    )
    con.execute(
        "CREATE TEMP TABLE k2 AS SELECT * FROM k1 QUALIFY event_id IS NULL OR "
        "row_number() OVER (PARTITION BY event_id ORDER BY source, line) = 1"
    )
    users = con.execute("SELECT DISTINCT user_id FROM k2").to_arrow_table().num_rows
    items = con.execute("SELECT DISTINCT item_id FROM k2").to_arrow_table().num_rows
    rows = con.execute("SELECT * FROM k2 ORDER BY source, line").to_arrow_table().num_rows
elif engine == "polars":
    import polars as pl
    lf = pl.scan_parquet(f"{spill}/*.parquet").sort(["source", "line"])
    lf = lf.unique(subset=key, keep="first", maintain_order=True)
    lf = lf.filter(pl.col("event_id").is_null() | pl.col("event_id").is_first_distinct())
    df = lf.collect(engine="streaming")
    users, items, rows = df["user_id"].n_unique(), df["item_id"].n_unique(), len(df)
else:
    import pyarrow.dataset as ds
    df = ds.dataset(spill).to_table().to_pandas()
    df = df[~df.duplicated(subset=key, keep="first").to_numpy()]
    eid = df["event_id"]
    df = df[~(eid.notna() & eid.duplicated()).to_numpy()]
    users, items, rows = df["user_id"].nunique(), df["item_id"].nunique(), len(df)
print(json.dumps({"engine": engine, "rows": rows, "users": users, "items": items,
                  "seconds": round(time.perf_counter() - start, 2),
                  "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def spill_parts(shop: Path, out: Path) -> None:
    """The spilled parts of a generated shop, as the importer writes them."""
    types = pa.array(["view", "click", "fav", "cart", "purchase"])
    out.mkdir(parents=True, exist_ok=True)
    for k, part in enumerate(sorted((shop / "events").glob("*.parquet"))):
        t = pq.read_table(part)
        n = t.num_rows
        pq.write_table(
            pa.table(
                {
                    "user_id": t["user_id"],
                    "item_id": t["item_id"],
                    "type": pc.index_in(t["event_type"], types).cast(pa.int8()),
                    "timestamp": t["timestamp"].cast(pa.float64()),
                    "value": t["value"],
                    "event_id": t["event_id"],
                    "source": pa.array(np.full(n, k, np.int32)),
                    "line": pa.array(np.arange(1, n + 1)),
                }
            ),
            out / f"part-{k:05d}.parquet",
        )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    p.add_argument("--engines", nargs="+", default=["duckdb", "polars", "pandas"])
    return p


def main() -> int:
    args = build_parser().parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for events in args.events:
            shop, spill = Path(tmp) / f"shop{events}", Path(tmp) / f"spill{events}"
            subprocess.run(
                [sys.executable, "-m", "gemrec.cli", "generate", "-o", str(shop), "--users",
                 str(events // 100), "--items", str(events // 25), "--events", str(events),
                 "--quiet"],
                check=True, env={"PYTHONPATH": str(ROOT / "src")},
            )  # fmt: skip
            spill_parts(shop, spill)
            for engine in args.engines:
                out = subprocess.run(
                    [sys.executable, "-c", _RUN, engine, str(spill), json.dumps(KEY)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                result = out.stdout.strip() or json.dumps(
                    {"engine": engine, "error": out.stderr.strip().splitlines()[-1:]}
                )
                print(events, result, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
