"""Neighbourhood baselines: fit time, evaluation time and accuracy against the published figures.

Every model runs with its shipped defaults. Times are medians of ``--repeats`` runs; the
popularity baseline is measured in the same run as the reference for the time ratios. Accuracy is
the standard full-ranking protocol (Recall@20 / NDCG@20, train items excluded).

Run: ``PYTHONPATH=src python benchmarks/bench_cf.py [--datasets gowalla movielens-1m ...]
[--models pop itemknn userknn rp3beta] [--repeats 3] [--check]``

``--check`` compares each accuracy figure with the one recorded in ``docs/benchmarks/cf.md``
(:data:`RECORDED`) and exits with status 1 when one differs by more than :data:`TOLERANCE`.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import DATASETS, train_test

from gemrec.eval import evaluate
from gemrec.models import make_model
from gemrec.models.fitting import fit_model

#: published Recall@20 / NDCG@20 on the LightGCN Gowalla split
PUBLISHED = {("gowalla", "rp3beta"): (0.183, 0.152), ("gowalla", "itemknn"): (0.156, 0.123)}
#: Recall@20 / NDCG@20 recorded in docs/benchmarks/cf.md for the shipped defaults
RECORDED = {
    ("gowalla", "pop"): (0.0416, 0.0317),
    ("gowalla", "itemknn"): (0.1597, 0.1304),
    ("gowalla", "userknn"): (0.1524, 0.1254),
    ("gowalla", "rp3beta"): (0.1852, 0.1525),
    ("movielens-1m", "pop"): (0.1161, 0.1176),
    ("movielens-1m", "itemknn"): (0.2403, 0.2357),
    ("movielens-1m", "userknn"): (0.2175, 0.2157),
    ("movielens-1m", "rp3beta"): (0.1607, 0.1681),
    ("movielens-100k", "pop"): (0.1487, 0.3006),
    ("movielens-100k", "itemknn"): (0.2686, 0.4924),
    ("movielens-100k", "userknn"): (0.2492, 0.4592),
    ("movielens-100k", "rp3beta"): (0.2579, 0.4590),
    ("lastfm-2k", "pop"): (0.0374, 0.0213),
    ("lastfm-2k", "itemknn"): (0.2606, 0.2025),
    ("lastfm-2k", "userknn"): (0.2306, 0.1791),
    ("lastfm-2k", "rp3beta"): (0.2712, 0.2124),
}
#: accuracy is deterministic; the tolerance absorbs float32 summation order and the order of tied
#: scores, which move a figure by far less than this
TOLERANCE = 0.001


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench(dataset: str, models: list[str], repeats: int) -> list[dict[str, object]]:
    train, test = train_test(dataset)
    print(f"\n## {dataset}: {train!r}, {test.nnz} test interactions", flush=True)
    rows: list[dict[str, object]] = []
    for name in models:
        fits, evals = [], []
        result = None
        for _ in range(repeats):
            t = time.perf_counter()
            model = fit_model(make_model(name), train).model  # what `gemrec train` runs
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


def check(dataset: str, rows: list[dict[str, object]]) -> tuple[int, list[str]]:
    """How many figures have a recorded value, and those that differ from it by more than
    :data:`TOLERANCE`."""
    checked, out = 0, []
    for r in rows:
        want = RECORDED.get((dataset, str(r["model"])))
        if want is None:
            continue
        checked += 1
        got = (float(r["recall@20"]), float(r["ndcg@20"]))  # type: ignore[arg-type]
        if max(abs(g - w) for g, w in zip(got, want, strict=True)) > TOLERANCE:
            out.append(
                f"{dataset} {r['model']}: {got[0]:.4f} / {got[1]:.4f}, recorded "
                f"{want[0]:.4f} / {want[1]:.4f} (tolerance {TOLERANCE})"
            )
    return checked, out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["gowalla"], choices=sorted(DATASETS))
    parser.add_argument("--models", nargs="+", default=["pop", "itemknn", "userknn", "rp3beta"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a figure differs from the recorded one"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    checked, differ = 0, []
    for ds in args.datasets:
        n, bad = check(ds, bench(ds, args.models, args.repeats))
        checked, differ = checked + n, differ + bad
    for line in differ:
        print(f"DIFFERS from docs/benchmarks/cf.md: {line}")
    if checked and not differ:
        print(f"{checked} recorded figures reproduced within {TOLERANCE}")
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
