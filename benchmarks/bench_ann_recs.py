"""Benchmark batch top-k through an ANN index against exact scoring: build time, per-user time,
recall@k of the ANN lists against the exact lists, and the time extrapolated to every user.

For each dataset, model and index kind the script fits the model (or loads it from the work
directory), builds :class:`gemrec.models.ann.ANNRecommender` over it, and ranks the same seeded
sample of users both ways (train + valid items excluded, as ``gemrec recommend`` does)::

    python benchmarks/bench_ann_recs.py --datasets gowalla --models svd graphfilter
    python benchmarks/bench_ann_recs.py --datasets shop --shop-events 10000000 \\
        --models graphfilter svd --indexes hnsw ivf --workdir /big/disk/gemrec-ann

``shop`` is a Taobao-shaped shop made by ``gemrec generate`` (``events / 100`` users and
``events / 25`` items: 1M users and 4M items at 100M events) and imported with
``gemrec import --engine duckdb``; it is kept under ``--workdir`` between runs. Gowalla is read
through ``benchmarks/_data.py``. One JSON line per measurement goes to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import load

from gemrec.data.store import Dataset
from gemrec.models import make_model
from gemrec.models.ann import ANNRecommender, list_recall
from gemrec.models.base import Recommender
from gemrec.models.fitting import fit_on_dataset

ROOT = Path(__file__).resolve().parents[1]

#: hyperparameters of each benchmarked model (graphfilter: rank 64 and the truncated item-item
#: part, as the scale benchmark fits it and as "auto" picks it on large catalogues)
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "svd": {"factors": 64},
    "graphfilter": {"n_components": 64, "item_item": "truncated"},
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--datasets", nargs="+", default=["gowalla"], choices=["gowalla", "shop"])
    p.add_argument("--models", nargs="+", default=["svd", "graphfilter"], choices=MODEL_PARAMS)
    p.add_argument("--indexes", nargs="+", default=["hnsw"], choices=["hnsw", "ivf"])
    p.add_argument("--candidates", type=int, nargs="+", default=[200], metavar="N")
    p.add_argument("--nprobe", type=int, default=32, help="IVF cells scanned per query (32)")
    p.add_argument("-k", type=int, default=20)
    p.add_argument("--sample", type=int, default=2000, help="users ranked both ways (2000)")
    p.add_argument("--shop-events", type=int, default=10_000_000, metavar="E")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("TMPDIR", "/tmp")) / "gemrec-ann",
        help="where the generated shop and fitted models are kept",
    )
    p.add_argument("--json", type=Path, help="append one JSON line per measurement")
    return p


def shop_dataset(workdir: Path, events: int) -> Dataset:
    """The generated shop of ``events`` events, imported (both kept under ``workdir``)."""
    w = workdir / f"shop-e{events}"
    ds_dir = w / "ds"
    if not (ds_dir / "manifest.json").is_file():
        users, items = max(1, events // 100), max(1, events // 25)
        gemrec = [sys.executable, "-m", "gemrec"]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        subprocess.run(
            [*gemrec, "generate", "-o", str(w / "shop"), "--users", str(users), "--items",
             str(items), "--events", str(events), "--seed", "0", "--quiet"],
            check=True, env=env,
        )  # fmt: skip
        subprocess.run(
            [*gemrec, "import", str(w / "shop" / "events"), "--format", "events", "--items",
             str(w / "shop" / "items.parquet"), "-o", str(ds_dir), "--engine", "duckdb",
             "--quiet"],
            check=True, env=env,
        )  # fmt: skip
    return Dataset.open(ds_dir)


def fitted(ds: Dataset, name: str, workdir: Path) -> tuple[Recommender, float | None]:
    """The model fitted on ``ds`` (saved under ``workdir``; loaded when already there)."""
    path = workdir / "models" / f"{ds.path.name}-{ds.n_items}-{name}"
    if (path / "manifest.json").is_file():
        return Recommender.load(path), None
    start = time.perf_counter()
    model = fit_on_dataset(ds, make_model(name, **MODEL_PARAMS[name])).model
    seconds = time.perf_counter() - start
    model.save(path)
    return model, seconds


def measure(
    ds: Dataset, name: str, model: Recommender, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Exact and ANN lists of one sample of users; one row per (index, candidates)."""
    rng = np.random.default_rng(0)
    users = np.sort(rng.choice(ds.n_users, size=min(args.sample, ds.n_users), replace=False))
    seen = ds.interactions("train", "valid").matrix[users]
    model.recommend(users[:8], args.k, exclude=seen[:8])  # compiled kernels load outside the timing
    start = time.perf_counter()
    exact, _ = model.recommend(users, args.k, exclude=seen)
    exact_per_user = (time.perf_counter() - start) / len(users)
    rows = []
    for kind in args.indexes:
        for n_candidates in args.candidates:
            ann = ANNRecommender(
                model=model, n_candidates=n_candidates, index=kind, nprobe=args.nprobe
            ).build()
            ann.recommend(users[:8], args.k, exclude=seen[:8])
            start = time.perf_counter()
            approx, _ = ann.recommend(users, args.k, exclude=seen)
            per_user = (time.perf_counter() - start) / len(users)
            row = {
                "dataset": ds.path.name if ds.path.name != "ds" else ds.path.parent.name,
                "n_users": ds.n_users,
                "n_items": ds.n_items,
                "model": name,
                "dim": int(model.item_embeddings_.shape[1]),  # type: ignore[attr-defined]
                "index": kind,
                "n_candidates": n_candidates,
                "nprobe": args.nprobe if kind == "ivf" else None,
                "sparse_prune": ann.sparse_prune if model.tags.low_rank_plus_sparse else None,
                "sample": len(users),
                f"recall_at_{args.k}": round(list_recall(approx, exact), 4),
                "build_s": round(ann.build_seconds_, 2),
                "ann_ms_per_user": round(1e3 * per_user, 3),
                "exact_ms_per_user": round(1e3 * exact_per_user, 3),
                "ann_all_users_min": round((ann.build_seconds_ + per_user * ds.n_users) / 60, 1),
                "exact_all_users_min": round(exact_per_user * ds.n_users / 60, 1),
                "load_average": round(os.getloadavg()[0], 2),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            del ann
    return rows


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for dataset in args.datasets:
        if dataset == "gowalla":
            ds = load("gowalla")
        else:
            ds = shop_dataset(args.workdir, args.shop_events)
        for name in args.models:
            model, fit_s = fitted(ds, name, args.workdir)
            if fit_s is not None:
                print(f"# {name} fitted on {ds.path} in {fit_s:.1f}s", flush=True)
            for row in measure(ds, name, model, args):
                if args.json:
                    with open(args.json, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
