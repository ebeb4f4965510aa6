"""Cold start: the non-text baselines on cold-item and cold-user splits, the figures to beat.

Each dataset is imported with a cold-start split (``benchmarks/_data.py``: 20 % of the items or
users held out entirely as test, 10 % as cold validation ones, seed 0), every baseline is fit on
train + valid through the one fit path and evaluated with the dataset's protocol
(``gemrec evaluate``'s path: cold items ranked only among themselves; cold users against every
item). The expected Recall@20 of a random ranking of the candidates is printed as the floor.

- ``amazon``: Amazon Scientific, cold items. ``pop`` (global popularity: every cold item scores
  0, so its list is the id order), ``category-pop`` (a cold item scored by the mean popularity of
  the warm items of its category, the category path from the item text), and the text-aware
  ``content`` model (MiniLM embeddings of the item text mapped into a 128-factor SVD space, plus
  the users' text profiles; needs ``gemrec[text]``). ``--text-throughput N`` also times the
  embedding of the first N item texts without the cache and prints the cache file's size.
- ``amazon-warm``: the same files with their published leave-one-out split (every test item
  has training interactions): ``pop``, ``svd`` (128 factors) and ``content`` on top of it, the
  warm figures next to the cold ones.
- ``amazon-fusion``: the same warm split; item text as a fusion channel for items with few
  interactions. ``content`` alone, ``fusion`` (``method="weighted"`` over ``svd`` and
  ``content``, weights tuned on the validation split) and ``fusion-gated`` (the same with the
  ``content`` channel's weight decaying with the item's training interactions,
  ``support_gated=["content"]``, the gate's scale tuned with the weights), each also on the
  test items with at most 5 training interactions (``--low-support``).
- ``amazon-fusion-equal``: the two fusions with the weights fixed at 1:1 (only the gate's scale,
  or no gate, chosen on validation).
- ``movielens-100k``: cold users with their attributes. ``pop``, ``similar-users`` (the
  items of the training users with the same gender, age bin and occupation, shrunk toward
  global popularity by the estimated prior: ``gemrec.models.popularity.UserGroupPopularity``,
  the service's ``similar_users`` path) and ``similar-users-age`` (the age bin alone).
- ``movielens-1m``, ``lastfm-2k``, ``ciao``: cold users. ``pop``; on Last.fm and Ciao also
  ``social`` (the items of the people a cold user follows or trusts, two hops of trust
  propagation: ``gemrec.models.social.SocialRecommender``).

Run: ``PYTHONPATH=src python benchmarks/bench_coldstart.py [--datasets amazon movielens-1m
movielens-100k lastfm-2k ciao] [-k 20]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import load

from gemrec.data.store import Dataset
from gemrec.eval.commands import evaluate_on_dataset
from gemrec.eval.metrics import mean_metrics, random_recall
from gemrec.eval.protocols import protocol_of
from gemrec.fusion import Fusion
from gemrec.models.base import Recommender
from gemrec.models.fitting import fit_on_dataset, make_configured
from gemrec.models.popularity import CategoryPopularity, UserGroupPopularity

#: benchmark name -> (benchmark dataset of ``_data.py``, baselines measured on it)
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "amazon": ("amazon-scientific-cold-items", ("pop", "category-pop", "content")),
    "amazon-warm": ("amazon-scientific-text", ("pop", "svd", "content")),
    "amazon-fusion": ("amazon-scientific-text", ("pop", "content", "fusion", "fusion-gated")),
    "amazon-fusion-equal": (
        "amazon-scientific-text",
        ("pop", "fusion-equal", "fusion-equal-gated"),
    ),
    "movielens-1m": ("movielens-1m-cold-users", ("pop",)),
    "movielens-100k": ("movielens-100k-cold-users", ("pop", "similar-users", "similar-users-age")),
    "lastfm-2k": ("lastfm-2k-cold-users", ("pop", "social")),
    "ciao": ("ciao-cold-users", ("pop", "social")),
}


#: hyperparameters of the measured models (the rest use their defaults). similar-users: every
#: column but the zip code (a group of one user each), the shrinkage estimated; -age: age alone
PARAMS: dict[str, dict[str, object]] = {
    "svd": {"factors": 128},
    "content": {"base_params": {"factors": 128}},
    "similar-users-age": {"columns": ["age"]},
    "fusion": {
        "channels": ["svd", "content"],
        "channel_params": {"svd": {"factors": 128}, "content": {"base_params": {"factors": 128}}},
        "method": "weighted",
    },
}
PARAMS["fusion-gated"] = {**PARAMS["fusion"], "support_gated": ["content"]}
PARAMS["fusion-equal"] = {**PARAMS["fusion"], "weights": [1.0, 1.0]}
PARAMS["fusion-equal-gated"] = {**PARAMS["fusion-gated"], "weights": [1.0, 1.0]}
#: benchmark names that are not model names
MODEL_OF = {
    **{name: "fusion" for name in PARAMS if name.startswith("fusion-")},
    "similar-users-age": "similar-users",
}


def _baseline(name: str) -> Recommender:
    return (
        CategoryPopularity()
        if name == "category-pop"
        else make_configured(MODEL_OF.get(name, name), PARAMS.get(name, {}))
    )


def low_support_metrics(
    model: Recommender, ds: Dataset, k: int, max_support: int
) -> tuple[float, float, int]:
    """Recall / NDCG at ``k`` on the test items with at most ``max_support`` interactions in
    train + valid (what the model trained on), over the users with such an item; the lists rank
    every item with the training items excluded, as the warm protocol does."""
    seen = ds.interactions("train", "valid").matrix
    support = np.diff(sp.csc_matrix(seen).indptr)
    test = sp.csr_matrix(ds.interactions("test").matrix)
    test = test.multiply(support[None, :] <= max_support).tocsr()
    test.eliminate_zeros()
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    ids, _ = model.recommend(users, k)
    result = mean_metrics(ids, test[users], k)
    return result["recall"], result["ndcg"], len(users)


def text_throughput(n: int) -> None:
    """Embed the first ``n`` Amazon item texts without the cache: items/s, and the cache's size."""
    from gemrec.models._side_info import align_features
    from gemrec.text import TextEncoder, default_cache_dir, item_texts, text_fingerprint

    ds = load(DATASETS["amazon"][0])
    texts = item_texts(align_features(ds.items, ds.n_items))
    encoder = TextEncoder()
    start = time.perf_counter()
    encoder.encode(texts[:8])  # loads the model
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    encoder.encode(texts[:n])
    seconds = time.perf_counter() - start
    cached = default_cache_dir() / f"item_text_embeddings-{text_fingerprint(texts)}.npy"
    size = f"{cached.stat().st_size / 2**20:.1f} MiB" if cached.is_file() else "not cached yet"
    print(
        f"\n## text embedding ({encoder.model}, {encoder.dim} dims)\nmodel load {load_s:.1f} s; "
        f"{n} texts in {seconds:.1f} s = {n / seconds:.0f} items/s; cache of all "
        f"{len(texts):,} items: {size} ({cached})",
        flush=True,
    )


def bench(name: str, k: int, low_support: int = 0) -> list[dict[str, object]]:
    """Every baseline of ``name``: Recall / NDCG at ``k`` and the ratio to ``pop``'s recall; with
    ``low_support`` also on the test items with at most that many training interactions."""
    spec, baselines = DATASETS[name]
    ds = load(spec)
    protocol = protocol_of(ds)
    cold = ds.manifest.get("split", {}).get("cold")
    split = (
        f"cold {cold['entity']}: {cold['test']:,} test, {cold['valid']:,} valid, "
        f"{cold['warm']:,} warm"
        if cold
        else "warm split"
    )
    print(f"\n## {name} ({spec}): {ds.n_users:,} users, {ds.n_items:,} items; {split}", flush=True)
    print(protocol.describe(), flush=True)
    rows: list[dict[str, object]] = []
    for baseline in baselines:
        start = time.perf_counter()
        model = fit_on_dataset(ds, _baseline(baseline)).model
        result = evaluate_on_dataset(model, ds, [k])
        row: dict[str, object] = {
            "model": baseline,
            "recall": result[f"recall@{k}"],
            "ndcg": result[f"ndcg@{k}"],
            "users": result.n_users,
        }
        if low_support:
            row["low"] = low_support_metrics(model, ds, k, low_support)
        row["gate"] = model.support_scale_ if isinstance(model, Fusion) else "-"
        if isinstance(model, UserGroupPopularity):
            row["shrinkage"] = model.shrinkage_
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    n_ranked = ds.n_items if protocol.candidates is None else len(protocol.candidates)
    pop = next(float(r["recall"]) for r in rows if r["model"] == "pop")  # type: ignore[arg-type]
    for r in rows:
        ratio = float(r["recall"]) / pop if pop else float("nan")  # type: ignore[arg-type]
        low = r.get("low")
        low_text = (
            f"  | items <= {low_support} interactions: recall@{k} {low[0]:.4f} "  # type: ignore[index]
            f"ndcg@{k} {low[1]:.4f} ({low[2]:,} users)"  # type: ignore[index]
            if low is not None
            else ""
        )
        gate = "" if r["gate"] == "-" else f"  gate scale {r['gate']}"
        if "shrinkage" in r:
            gate += f"  shrinkage {r['shrinkage']:.1f}"
        print(
            f"{r['model']:17s} recall@{k} {r['recall']:.4f}  ndcg@{k} {r['ndcg']:.4f}  "
            f"x{ratio:.2f} of pop  ({r['users']:,} users, fit + evaluation "
            f"{r['seconds']:.1f} s){low_text}{gate}",
            flush=True,
        )
    print(
        f"{'random':17s} recall@{k} {random_recall(n_ranked, k):.4f}  (expected, "
        f"{n_ranked:,} items ranked)",
        flush=True,
    )
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["amazon", "movielens-1m", "lastfm-2k"],
        choices=list(DATASETS),
    )
    parser.add_argument("-k", type=int, default=20, help="cut-off (20)")
    parser.add_argument(
        "--text-throughput", type=int, default=0, metavar="N", help="time embedding N item texts"
    )
    parser.add_argument(
        "--low-support",
        type=int,
        default=0,
        metavar="N",
        help="also measure on the test items with at most N training interactions",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in args.datasets:
        bench(name, args.k, args.low_support)
    if args.text_throughput:
        text_throughput(args.text_throughput)
    return 0


if __name__ == "__main__":
    sys.exit(main())
