"""Item2Vec (EGES) accuracy and fit time on Gowalla, Taobao, Amazon Scientific and MovieLens-1M.

Usage::

    python benchmarks/bench_item2vec.py [--datasets gowalla taobao amazon movielens-1m]
        [--repeats 1] [--split test|valid] [--early-stop] [--set epochs=5 ...]

Prints Recall@20 / NDCG@20 (full ranking, training items excluded) and the median fit time of
``--repeats`` fits, next to global popularity measured in the same run. The datasets are imported
by ``benchmarks/_data.py`` (gemrec's importer); models are fit on train + valid and scored on
test, or with ``--split valid`` fit on train and scored on the importer's validation split (10 %
of each user's training edges), the split hyperparameters are chosen on. ``--early-stop`` fits as
``gemrec train`` does: on train, validated on valid (early stopping, ``popularity_weight="auto"``'s
choice), then refit on train + valid; scored on test.

- gowalla: the LightGCN split (train.txt / test.txt), no timestamps, no side information.
- taobao: UserBehavior_prefix.csv imported with ``--format taobao`` (behaviour weights of the
  importer); test = events after one global time cut (the latest 20 %); side information =
  category. Test items never seen in training are cold: only side information can rank them.
- movielens-1m: the UltraGCN implicit split (train.txt / test.txt), no timestamps, no side
  information.
- amazon: Scientific leave-one-out (each sequence of Scientific.test.inter, its last item held
  out); positions in the sequence serve as timestamps; side information = category path and brand
  parsed from Scientific.text ("title. categories. brand.").
"""

from __future__ import annotations

import argparse
import ast
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import load as load_dataset

from gemrec.data.holdout import union
from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.eval import evaluate
from gemrec.models.fitting import fit_model
from gemrec.models.item2vec import Item2Vec
from gemrec.models.popularity import Popularity

#: benchmark name -> dataset of benchmarks/_data.py
DATASETS = {
    "gowalla": "gowalla",
    "taobao": "taobao",
    "amazon": "amazon-scientific",
    "movielens-1m": "movielens-1m",
}


def load(
    name: str, split: str = "test", early_stop: bool = False
) -> tuple[Interactions, Interactions | None, Interactions, pd.DataFrame | None]:
    """``(fitted on, validated on or None, scored on, side information or None)`` of a benchmark
    dataset: train + valid and test; with ``split="valid"`` train and valid; with ``early_stop``
    train, valid and test."""
    ds = load_dataset(DATASETS[name])
    side = [c for c in ds.items.columns if c not in ("item", "item_id")]
    feats = ds.items[["item", *side]] if side else None
    if split == "valid":
        return ds.interactions("train"), None, ds.interactions("valid"), feats
    if early_stop:
        return ds.interactions("train"), ds.interactions("valid"), ds.interactions("test"), feats
    return ds.interactions("train", "valid"), None, ds.interactions("test"), feats


# --------------------------------------------------------------------------- runs
def _fit_timed(make, repeats: int):  # type: ignore[no-untyped-def]
    times, model = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        model = make()
        times.append(time.perf_counter() - start)
    return model, statistics.median(times)


def bench(
    name: str,
    params: dict[str, object],
    repeats: int,
    split: str = "test",
    early_stop: bool = False,
) -> list[dict[str, object]]:
    # with early_stop: fit on train, validate on valid, refit on train + valid
    fit_on, valid, test, feats = load(name, split, early_stop)
    train = fit_on if valid is None else union(fit_on, valid)
    print(
        f"\n## {name}: {train.n_users} users, {train.n_items} items, {train.nnz} train, "
        f"{test.nnz} {split} interactions",
        flush=True,
    )
    rows = []
    pop, pop_s = _fit_timed(lambda: Popularity().fit(train), repeats)
    variants: list[tuple[str, pd.DataFrame | None]] = [("item2vec", None)]
    if feats is not None:
        variants.append(("item2vec + side info", feats))
    results = [("pop", pop, pop_s)]
    for label, f in variants:
        model, secs = _fit_timed(
            lambda f=f: (
                fit_model(
                    Item2Vec(**params),
                    fit_on,
                    valid=valid,
                    side=SideInformation(item_features=f),
                ).model
            ),
            repeats,
        )
        results.append((label, model, secs))
        print(
            f"{label}: popularity_weight {model.popularity_weight_}, epochs "
            f"{getattr(model, 'best_epoch_', model.epochs)}",
            flush=True,
        )
    base = None
    for label, model, secs in results:
        r = evaluate(model, test, ks=[20])
        rec, ndcg = r["recall@20"], r["ndcg@20"]
        base = base or rec
        row = {"dataset": name, "model": label, "recall@20": rec, "ndcg@20": ndcg, "fit_s": secs}
        rows.append(row)
        print(
            f"{label:24s} Recall@20 {rec:.4f}  NDCG@20 {ndcg:.4f}  (x{rec / base:.2f} pop)  "
            f"fit {secs:7.1f} s  users {r.n_users}",
            flush=True,
        )
    if name == "taobao":
        _cold_items(train, test, feats, results)
    print(f"peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return rows


def _cold_items(train, test, feats, results) -> None:  # type: ignore[no-untyped-def]
    """Test interactions on items absent from training: only side information can reach them."""
    seen_items = np.asarray(train.matrix.sum(axis=0)).ravel() > 0
    te = test.matrix.tocoo()
    cold = ~seen_items[te.col]
    print(f"cold test interactions (item unseen in train): {cold.sum()} of {te.nnz}")
    for label, model, _ in results:
        if label == "pop":
            continue
        ids, _ = model.recommend(np.unique(te.row), k=20)
        users = np.unique(te.row)
        pos = {u: i for i, u in enumerate(users)}
        hit = sum(
            c in set(ids[pos[r]].tolist()) for r, c in zip(te.row[cold], te.col[cold], strict=True)
        )
        print(f"{label:24s} cold test items hit in top-20: {hit}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--datasets", nargs="+", default=["taobao", "amazon", "gowalla"], choices=list(DATASETS)
    )
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument(
        "--split",
        choices=["test", "valid"],
        default="test",
        help="test: fit on train + valid, score test; valid: fit on train, score valid",
    )
    p.add_argument(
        "--early-stop",
        action="store_true",
        help="fit on train with valid (early stopping, choices on valid), refit on train + valid",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    params: dict[str, object] = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        try:
            params[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            params[k] = v
    print(f"Item2Vec params: {Item2Vec(**params).get_params()}")
    if args.early_stop and args.split == "valid":
        raise SystemExit("--early-stop scores test: it validates on the valid split")
    for name in args.datasets:
        bench(name, params, args.repeats, args.split, args.early_stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
