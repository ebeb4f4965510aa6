"""Neighbourhood baselines: fit time, evaluation time and accuracy against the published figures.

Every model runs with its shipped defaults. Times are medians of ``--repeats`` runs; the
popularity baseline is measured in the same run as the reference for the time ratios. Accuracy is
the standard full-ranking protocol (Recall@20 / NDCG@20, train items excluded).

Run: ``PYTHONPATH=src python benchmarks/bench_cf.py [--datasets gowalla movielens-1m ...]
[--models pop itemknn userknn rp3beta] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _gowalla import load_benchmark

from gemrec.eval import evaluate
from gemrec.models import make_model

#: published Recall@20 / NDCG@20 on the LightGCN Gowalla split
PUBLISHED = {("gowalla", "rp3beta"): (0.183, 0.152), ("gowalla", "itemknn"): (0.156, 0.123)}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench(dataset: str, models: list[str], repeats: int) -> list[dict[str, object]]:
    train, test = load_benchmark(dataset)
    print(f"\n## {dataset}: {train!r}, {test.nnz} test interactions", flush=True)
    rows: list[dict[str, object]] = []
    for name in models:
        fits, evals = [], []
        result = None
        for _ in range(repeats):
            model = make_model(name)
            t = time.perf_counter()
            model.fit(train)
            fits.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = evaluate(model, test, ks=[20])
            evals.append(time.perf_counter() - t)
        assert result is not None
        row = {
            "model": name,
            "params": model.get_params(),
            "fit_s": statistics.median(fits),
            "eval_s": statistics.median(evals),
            "recall@20": result["recall@20"],
            "ndcg@20": result["ndcg@20"],
            "peak_rss_mb": _peak_rss_mb(),
        }
        rows.append(row)
        ref = PUBLISHED.get((dataset, name))
        ref_txt = (
            f"  published {ref[0]:.3f}/{ref[1]:.3f} "
            f"(diff {row['recall@20'] - ref[0]:+.4f}/{row['ndcg@20'] - ref[1]:+.4f})"
            if ref
            else ""
        )
        print(
            f"{name:8s} fit {row['fit_s']:6.2f}s  eval {row['eval_s']:6.2f}s  "
            f"recall@20 {row['recall@20']:.4f}  ndcg@20 {row['ndcg@20']:.4f}  "
            f"peak RSS so far {row['peak_rss_mb']:.0f} MB{ref_txt}",
            flush=True,
        )
    base = next((r for r in rows if r["model"] == "pop"), None)
    if base is not None:
        for r in rows:
            print(
                f"{r['model']:8s} fit+eval time / pop's: "
                f"{(r['fit_s'] + r['eval_s']) / (base['fit_s'] + base['eval_s']):.1f}x"  # type: ignore[operator]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["gowalla"])
    parser.add_argument("--models", nargs="+", default=["pop", "itemknn", "userknn", "rp3beta"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for ds in args.datasets:
        bench(ds, args.models, args.repeats)


if __name__ == "__main__":
    main()
