"""Social ties in ranking: fusion with and without the ``social`` channel on Last.fm and Ciao.

Each dataset is imported with its social graph (Last.fm friendships, Ciao trust) and a random
per-user split (``benchmarks/_data.py``: 20 % of each user's items as test, 10 % of the rest as
validation, seed 0). Every model is fit on train + valid through the one fit path
(``fit_on_dataset``, what ``gemrec train`` runs; the fusion tunes on the validation split) and
evaluated on test with ``gemrec evaluate``'s protocol (full ranking, training items excluded).

Rows: each channel alone, then ``Fusion`` over the same channels without and with ``social``
(``gemrec.models.social.SocialRecommender``: friends' items, trust propagated two hops).

Run: ``PYTHONPATH=src python benchmarks/bench_social.py [--datasets lastfm-2k ciao] [-k 20]
[--channels rp3beta userknn pop] [--method weighted]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import load

from gemrec.eval.commands import evaluate_on_dataset
from gemrec.fusion.fusion import Fusion
from gemrec.models.base import Recommender
from gemrec.models.fitting import fit_on_dataset, make_configured

#: benchmark name -> benchmark dataset of ``_data.py``
DATASETS = {"lastfm-2k": "lastfm-2k-social", "ciao": "ciao-social"}


def _run(ds: object, label: str, model: Recommender, k: int) -> dict[str, object]:
    start = time.perf_counter()
    fitted = fit_on_dataset(ds, model).model  # type: ignore[arg-type]
    result = evaluate_on_dataset(fitted, ds, [k])  # type: ignore[arg-type]
    row: dict[str, object] = {
        "model": label,
        "recall": result[f"recall@{k}"],
        "ndcg": result[f"ndcg@{k}"],
        "seconds": time.perf_counter() - start,
    }
    if isinstance(fitted, Fusion):
        row["kept"] = dict(
            zip(fitted.channel_names_, fitted.weights_.round(3).tolist(), strict=False)
        )
    print(
        f"{label:32s} recall@{k} {row['recall']:.4f}  ndcg@{k} {row['ndcg']:.4f}  "
        f"({row['seconds']:.1f} s){'  kept ' + str(row['kept']) if 'kept' in row else ''}",
        flush=True,
    )
    return row


def bench(name: str, k: int, channels: list[str], method: str) -> list[dict[str, object]]:
    """Channels alone, fusion without and with ``social`` on ``name``."""
    ds = load(DATASETS[name])
    print(
        f"\n## {name} ({DATASETS[name]}): {ds.n_users:,} users, {ds.n_items:,} items, "
        f"{ds.social.nnz:,} ties",
        flush=True,
    )
    rows = [_run(ds, c, make_configured(c, {}), k) for c in [*channels, "social"]]
    for with_social in (False, True):
        chosen = [*channels, "social"] if with_social else channels
        label = f"fusion({method}: {'+'.join(chosen)})"
        rows.append(_run(ds, label, Fusion(channels=chosen, method=method, seed=0), k))
    base, social = (float(r["recall"]) for r in rows[-2:])  # type: ignore[arg-type]
    print(f"social channel: fusion recall@{k} x{social / base:.3f}", flush=True)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("-k", type=int, default=20, help="cut-off (20)")
    parser.add_argument(
        "--channels", nargs="+", default=["rp3beta", "userknn", "pop"], help="fusion channels"
    )
    parser.add_argument("--method", default="weighted", choices=["auto", "weighted", "rrf", "ltr"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in args.datasets:
        bench(name, args.k, args.channels, args.method)
    return 0


if __name__ == "__main__":
    sys.exit(main())
