"""Fusion vs its best single channel on Gowalla and on MovieLens-100k with a temporal split.

Target: the default fusion beats its best single channel by >= 2 % relative Recall@20 with no loss
in NDCG@20.

    PYTHONPATH=src python benchmarks/bench_fusion.py [--datasets gowalla ml100k] [--channels ...]

Protocol
--------
* Gowalla: the LightGCN split (train.txt / test.txt). Single channels are fit on all of train.txt;
  fusion tunes on a holdout it carves from train.txt itself (10 % of each user's items, random:
  Gowalla's split has no timestamps) and then refits its channels on all of train.txt.
* MovieLens-100k, temporal: ``gemrec import --format movielens --split temporal``: test = ratings
  after a global time cut (latest 20 %); valid = each user's latest 10 % of the remaining ratings.
  Single channels are fit on train + valid; fusion tunes on valid and refits on train + valid.
* The single channels' numbers are those of the fusion's refit channels where each is the channel
  fit on train + valid, exactly what a single channel is. Channels the fusion dropped, channels
  it carried over without training them on train + valid (LightGCN: its tuning-split ego
  embeddings propagated over the full graph), or all with ``--refit-channels``, are fit anew with
  the fusion's channel hyperparameters.
* Metrics: full ranking, training items excluded (``gemrec.eval.evaluate``). Accuracy is
  deterministic; fit times are medians over ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _data import load, train_test  # noqa: E402

from gemrec.data.holdout import union  # noqa: E402
from gemrec.data.interactions import Interactions  # noqa: E402
from gemrec.data.side import SideInformation  # noqa: E402
from gemrec.errors import GemrecError  # noqa: E402
from gemrec.eval import evaluate  # noqa: E402
from gemrec.fusion import DEFAULT_CHANNELS, Fusion  # noqa: E402
from gemrec.fusion.channels import channel_specs  # noqa: E402
from gemrec.fusion.fusion import REFITS  # noqa: E402
from gemrec.models import get_model_class, make_model  # noqa: E402
from gemrec.models.base import Recommender  # noqa: E402
from gemrec.models.fitting import fit_model  # noqa: E402


def gowalla() -> tuple[Interactions, Interactions | None, Interactions, None]:
    """Gowalla's train.txt (all of it: Fusion carves its own holdout) and test.txt."""
    train, test = train_test("gowalla")
    return train, None, test, None


def ml100k() -> tuple[Interactions, Interactions, Interactions, np.ndarray | None]:
    ds = load("movielens-100k-temporal")
    return (
        ds.interactions("train"),
        ds.interactions("valid"),
        ds.interactions("test"),
        ds.item_categories(),
    )


def available(names: list[str]) -> list[str]:
    out = []
    for n in names:
        try:
            get_model_class(n)
        except GemrecError:
            continue
        out.append(n)
    return out


def carried_over(fused: Fusion, channel: Recommender) -> bool:
    """Whether the fusion brought ``channel`` to train + valid without training it there
    (LightGCN's ego embeddings propagated over the full graph): not a single channel's fit."""
    extends = type(channel)._extended is not Recommender._extended
    return extends and REFITS[fused.refit] == "extend"


def run(name: str, data: tuple, channels: list[str] | None, repeats: int, reuse: bool) -> dict:
    train, valid, test, cats = data
    full = train if valid is None else union(train, valid)
    has_ts = full.timestamps is not None and full.timestamps.nnz > 0
    times, fused = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        side = SideInformation(item_categories=cats)
        fused = fit_model(Fusion(channels=channels), train, valid=valid, side=side).model
        times.append(time.perf_counter() - t)
    assert fused is not None
    res = evaluate(fused, test, ks=[20])
    print(
        f"  {name:8s} {'fusion':12s} recall@20 {res['recall@20']:.4f} ndcg@20 {res['ndcg@20']:.4f} "
        f"fit {statistics.median(times):.1f}s method={fused.method_} "
        f"channels={fused.channel_names_} weights={[float(w) for w in fused.weights_]} "
        f"(s: {', '.join(f'{k} {v:.1f}' for k, v in fused.fit_seconds_.items())})",
        flush=True,
    )
    rows: dict[str, dict] = {}
    for ch, model_name, params in channel_specs(channels, None, has_timestamps=has_ts):
        kept = (
            fused.channels_[fused.channel_names_.index(ch)] if ch in fused.channel_names_ else None
        )
        if reuse and kept is not None and not carried_over(fused, kept):
            # the fusion's refit channel is this channel fit on train + valid: the same model
            model, fit_s = kept, None
        else:
            ch_times = []
            for _ in range(repeats):
                t = time.perf_counter()
                model = fit_model(make_model(model_name, **params), full).model
                ch_times.append(time.perf_counter() - t)
            fit_s = statistics.median(ch_times)
        r = evaluate(model, test, ks=[20])
        rows[ch] = {"recall@20": r["recall@20"], "ndcg@20": r["ndcg@20"], "fit_s": fit_s}
        print(
            f"  {name:8s} {ch:12s} recall@20 {r['recall@20']:.4f} ndcg@20 {r['ndcg@20']:.4f} "
            + (f"fit {fit_s:.1f}s" if fit_s is not None else "(the fusion's refit channel)"),
            flush=True,
        )
        if kept is not None and carried_over(fused, kept):
            c = evaluate(kept, test, ks=[20])
            rows[ch]["carried_over"] = {"recall@20": c["recall@20"], "ndcg@20": c["ndcg@20"]}
            print(
                f"  {name:8s} {ch:12s} recall@20 {c['recall@20']:.4f} ndcg@20 "
                f"{c['ndcg@20']:.4f} (the fusion's channel: trained on its tuning split, "
                "propagated over all data)",
                flush=True,
            )
    best = max(rows, key=lambda c: rows[c]["recall@20"])
    out = {
        "channels": rows,
        "fusion": {
            "recall@20": res["recall@20"],
            "ndcg@20": res["ndcg@20"],
            "fit_s": statistics.median(times),
            "method": fused.method_,
            "fit_seconds": fused.fit_seconds_,
            "kept_channels": fused.channel_names_,
            "weights": [float(w) for w in fused.weights_],
            "validation": fused.validation_,
        },
        "best_channel": best,
        "recall_ratio": res["recall@20"] / rows[best]["recall@20"],
        "ndcg_ratio": res["ndcg@20"] / rows[best]["ndcg@20"],
    }
    ok = out["recall_ratio"] >= 1.02 and out["ndcg_ratio"] >= 1.0
    print(
        f"  {name:8s} fusion / best channel ({best}): recall x{out['recall_ratio']:.3f}, "
        f"ndcg x{out['ndcg_ratio']:.3f} -> target {'MET' if ok else 'NOT met'}",
        flush=True,
    )
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--datasets", nargs="+", default=["ml100k", "gowalla"], choices=["ml100k", "gowalla"]
    )
    p.add_argument(
        "--channels", nargs="+", default=None, help=f"default: available of {DEFAULT_CHANNELS}"
    )
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json", metavar="FILE")
    p.add_argument(
        "--refit-channels",
        action="store_true",
        help="fit every single channel anew (default: score the fusion's refit channels, which "
        "are the same models fit on the same data, and fit only the channels it dropped)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    channels = available(args.channels) if args.channels else None
    print(f"channels: {channels or 'fusion defaults: ' + str(available(list(DEFAULT_CHANNELS)))}")
    results = {}
    for name in args.datasets:
        data = gowalla() if name == "gowalla" else ml100k()
        results[name] = run(name, data, channels, args.repeats, not args.refit_channels)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
