"""Item2Vec (EGES) accuracy and fit time on Gowalla, Taobao, Amazon Scientific and MovieLens-1M.

Usage::

    python benchmarks/bench_item2vec.py [--datasets gowalla taobao amazon movielens-1m]
        [--repeats 1] [--set epochs=5 --set walks_per_item=10 ...]

Prints Recall@20 / NDCG@20 (full ranking, training items excluded) and the median fit time of
``--repeats`` fits, next to global popularity measured in the same run. Reads the raw files in
../shared/data with small readers of its own (no importer needed).

- gowalla: the LightGCN split (train.txt / test.txt), no timestamps, no side information.
- taobao: UserBehavior_prefix.csv; edge weight = strongest behaviour (pv 1, fav 2, cart 3, buy 4);
  per user, the latest 20% of distinct items (by last event time) are the test set; side
  information = category. Test items never seen in training are cold: only side information can
  rank them.
- movielens-1m: the UltraGCN implicit split (train.txt / test.txt), no timestamps, no side
  information.
- amazon: Scientific leave-one-out (train = history of the test row, test = its target item);
  positions in the sequence serve as timestamps; side information = category path and brand parsed
  from Scientific.text ("title. categories. brand.").
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

from _gowalla import load_benchmark

from gemrec.data.interactions import Interactions
from gemrec.eval import evaluate
from gemrec.models.item2vec import Item2Vec
from gemrec.models.popularity import Popularity

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# --------------------------------------------------------------------------- readers
def _lightgcn_lines(path: Path) -> tuple[np.ndarray, np.ndarray]:
    users: list[int] = []
    items: list[int] = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) > 1:
            users += [int(parts[0])] * (len(parts) - 1)
            items += [int(x) for x in parts[1:]]
    return np.array(users), np.array(items)


def load_gowalla() -> tuple[Interactions, Interactions, pd.DataFrame | None]:
    root = DATA / "gowalla"
    tu, ti = _lightgcn_lines(root / "train.txt")
    su, si = _lightgcn_lines(root / "test.txt")
    nu, ni = int(max(tu.max(), su.max())) + 1, int(max(ti.max(), si.max())) + 1
    train = Interactions.from_arrays(tu, ti, n_users=nu, n_items=ni)
    test = Interactions.from_arrays(su, si, n_users=nu, n_items=ni)
    return train, test, None


BEHAVIOUR_WEIGHT = {"pv": 1.0, "fav": 2.0, "cart": 3.0, "buy": 4.0}


def load_taobao(test_share: float = 0.2) -> tuple[Interactions, Interactions, pd.DataFrame]:
    df = pd.read_csv(
        DATA / "taobao-userbehavior-sample" / "UserBehavior_prefix.csv",
        header=None,
        names=["user", "item", "category", "behavior", "timestamp"],
        dtype={"user": str, "item": str, "category": str, "behavior": str, "timestamp": np.int64},
    )
    df["w"] = df["behavior"].map(BEHAVIOUR_WEIGHT).fillna(1.0)
    pairs = df.groupby(["user", "item"], sort=False).agg(w=("w", "max"), t=("timestamp", "max"))
    pairs = pairs.reset_index()
    uid, users = np.unique(pairs["user"].to_numpy(), return_inverse=True)
    iid, items = np.unique(pairs["item"].to_numpy(), return_inverse=True)
    t = pairs["t"].to_numpy(np.float64)
    # per user: rank of each item by time; the latest test_share of them are test
    order = np.lexsort((t, users))
    rank = np.empty(len(order), np.int64)
    counts = np.bincount(users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
    n_test = np.floor(counts * test_share).astype(np.int64)
    is_test = rank >= (counts - n_test)[users]
    w = pairs["w"].to_numpy(np.float32)
    kw = dict(n_users=len(uid), n_items=len(iid), user_ids=uid, item_ids=iid)
    tr, te = ~is_test, is_test
    train = Interactions.from_arrays(users[tr], items[tr], w[tr], timestamps=t[tr], **kw)
    test = Interactions.from_arrays(users[te], items[te], w[te], timestamps=t[te], **kw)
    cat = df.drop_duplicates("item").set_index("item")["category"]
    feats = pd.DataFrame({"item": np.arange(len(iid)), "category": cat.reindex(iid).to_numpy()})
    return train, test, feats


def _inter_rows(path: Path) -> list[tuple[int, list[int], int]]:
    rows = []
    for line in path.read_text().splitlines()[1:]:
        u, hist, target = line.split("\t")
        rows.append((int(u), [int(x) for x in hist.split()], int(target)))
    return rows


def load_amazon() -> tuple[Interactions, Interactions, pd.DataFrame]:
    root = DATA / "amazon-scientific-text"
    rows = _inter_rows(root / "Scientific.test.inter")
    index = {}
    for line in (root / "Scientific.item2index").read_text().splitlines():
        asin, idx = line.split("\t")
        index[asin] = int(idx)
    n_items = len(index)
    n_users = max(r[0] for r in rows) + 1
    tu, ti, tt, su, si = [], [], [], [], []
    for u, hist, target in rows:
        tu += [u] * len(hist)
        ti += hist
        tt += list(range(len(hist)))
        su.append(u)
        si.append(target)
    kw = dict(n_users=n_users, n_items=n_items)
    train = Interactions.from_arrays(
        np.array(tu), np.array(ti), timestamps=np.array(tt, dtype=np.float64), **kw
    )
    test = Interactions.from_arrays(np.array(su), np.array(si), **kw)
    cats = np.empty(n_items, dtype=object)
    brands = np.empty(n_items, dtype=object)
    for line in (root / "Scientific.text").read_text().splitlines()[1:]:
        asin, _, text = line.partition("\t")
        if asin not in index:
            continue
        parts = [p.strip() for p in text.strip().rstrip(".").split(". ")]
        brands[index[asin]] = parts[-1] if len(parts) >= 3 else None
        cats[index[asin]] = parts[-2] if len(parts) >= 3 else None
    feats = pd.DataFrame({"item": np.arange(n_items), "category": cats, "brand": brands})
    return train, test, feats


def load_movielens_1m() -> tuple[Interactions, Interactions, pd.DataFrame | None]:
    train, test = load_benchmark("movielens-1m")
    return train, test, None


LOADERS = {
    "gowalla": load_gowalla,
    "taobao": load_taobao,
    "amazon": load_amazon,
    "movielens-1m": load_movielens_1m,
}


# --------------------------------------------------------------------------- runs
def _fit_timed(make, repeats: int):  # type: ignore[no-untyped-def]
    times, model = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        model = make()
        times.append(time.perf_counter() - start)
    return model, statistics.median(times)


def bench(name: str, params: dict[str, object], repeats: int) -> list[dict[str, object]]:
    train, test, feats = LOADERS[name]()
    print(
        f"\n## {name}: {train.n_users} users, {train.n_items} items, {train.nnz} train, "
        f"{test.nnz} test interactions",
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
            lambda f=f: Item2Vec(**params).fit(train, item_features=f), repeats
        )
        results.append((label, model, secs))
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--datasets", nargs="+", default=["taobao", "amazon", "gowalla"], choices=list(LOADERS)
    )
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    params: dict[str, object] = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        try:
            params[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            params[k] = v
    print(f"Item2Vec params: {Item2Vec(**params).get_params()}")
    for name in args.datasets:
        bench(name, params, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
