"""Fusion on Gowalla from cached channel lists: fit each channel once, replay the tuning often.

A default ``Fusion()`` on Gowalla fits each channel twice (on train.txt minus a 10 % per-user
random holdout to tune, then on all of train.txt) and LightGCN alone takes minutes, so comparing
tuning variants end to end is slow on a shared machine. This script makes the same fits once and
caches each channel's top-100 lists:

    PYTHONPATH=src python benchmarks/studies/fusion_replay.py cache /tmp/gw [--channels ...]
    PYTHONPATH=src python benchmarks/studies/fusion_replay.py replay /tmp/gw [--set method=ltr]
    PYTHONPATH=src python benchmarks/studies/fusion_replay.py replay /tmp/gw --test

``cache`` fits on the holdout split ``Fusion(seed=0)`` would carve
(``user_holdout(train, 0.1, seed=0)``) and on all of train.txt (the refit). ``replay`` runs
``Fusion``'s own tuning (:func:`gemrec.fusion.tuning.tune`: the 2-fold cross-fit choice of the
method, the weight search, the learned blend) on the cached lists and prints the validation report;
with ``--test`` it also combines the refit channels' lists for the test users
(:func:`gemrec.fusion.tuning.combine`) and scores them (Recall@20 /
NDCG@20, training items excluded, as ``gemrec.eval.evaluate``). The channels are seeded, so the
single-channel test numbers equal ``bench_fusion.py``'s. Only Gowalla (no timestamps, no item
categories) is supported.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from benchmarks.bench_fusion import gowalla  # noqa: E402

from gemrec.data.holdout import user_holdout  # noqa: E402
from gemrec.data.interactions import Interactions  # noqa: E402
from gemrec.fusion import Fusion  # noqa: E402
from gemrec.fusion.channels import DEFAULT_CHANNEL_PARAMS  # noqa: E402
from gemrec.fusion.features import side_features  # noqa: E402
from gemrec.fusion.tuning import combine, recall_ndcg, tune  # noqa: E402
from gemrec.models import make_model  # noqa: E402
from gemrec.models.popularity import Popularity  # noqa: E402

N_CANDIDATES = 100


def _lists(model: Any, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    parts = [model.recommend(users[s : s + 4096], N_CANDIDATES) for s in range(0, len(users), 4096)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def cache(out: Path, channels: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    train, _, test, _ = gowalla()
    tr, holdout = user_holdout(train, 0.1, seed=0)
    has = np.diff(holdout.matrix.indptr) > 0
    tune_users = np.flatnonzero(has & (np.diff(tr.matrix.indptr) > 0))
    test_users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    np.savez(out / "split.npz", tune_users=tune_users, test_users=test_users)
    for name, m in (("tr", tr), ("tune_truth", holdout), ("full", train), ("test_truth", test)):
        sp.save_npz(out / f"{name}.npz", m.matrix.tocsr())
    for ch in channels:
        params = dict(DEFAULT_CHANNEL_PARAMS.get(ch, {}))
        for tag, data, users in (("tune", tr, tune_users), ("test", train, test_users)):
            t = time.perf_counter()
            ids, scores = _lists(make_model(ch, **params).fit(data), users)
            np.savez(out / f"{ch}_{tag}.npz", ids=ids, scores=scores)
            print(f"{ch:12s} {tag:5s} fit + lists {time.perf_counter() - t:.0f}s", flush=True)


class _Cached(Popularity):
    """Serves a channel's cached top-N lists to the tuning code."""

    def __init__(
        self, ids: np.ndarray, scores: np.ndarray, users: np.ndarray, n_users: int
    ) -> None:
        self._ids, self._scores = ids, scores
        self._row = np.full(n_users, -1)
        self._row[users] = np.arange(len(users))

    def recommend(self, users: Any, k: int = 10, **_: Any) -> tuple[np.ndarray, np.ndarray]:
        r = self._row[np.asarray(users)]
        if (r < 0).any():
            raise KeyError("user not in the cache")
        return self._ids[r, :k], self._scores[r, :k]


def _inter(m: sp.csr_matrix) -> Interactions:
    m = m.astype(np.float32).tocsr()
    return Interactions(m, np.arange(m.shape[0]), np.arange(m.shape[1]))


def replay(d: Path, channels: list[str], params: dict[str, Any], test: bool) -> None:
    split = np.load(d / "split.npz")
    tr, full = _inter(sp.load_npz(d / "tr.npz")), _inter(sp.load_npz(d / "full.npz"))
    holdout = _inter(sp.load_npz(d / "tune_truth.npz"))

    def chans(tag: str, users: np.ndarray, data: Interactions) -> list[_Cached]:
        out = []
        for ch in channels:
            if ch == "pop":
                ids, sc = _lists(Popularity().fit(data), users)
            else:
                z = np.load(d / f"{ch}_{tag}.npz")
                ids, sc = z["ids"], z["scores"]
            out.append(_Cached(ids, sc, users, data.n_users))
        return out

    # Fusion's parameters, defaults filled in (Gowalla has no item categories)
    p = Fusion(**params).get_params()
    no_categories = np.full(tr.n_items, -1, np.int64)
    t = time.perf_counter()
    tuned = tune(
        chans("tune", split["tune_users"], tr),
        channels,
        tr,
        holdout,
        side_features(tr, no_categories),
        method=p["method"],
        weights=None if p["weights"] is None else np.asarray(p["weights"], np.float64),
        normalization=p["normalization"],
        rrf_k=p["rrf_k"],
        n_candidates=p["n_candidates"],
        min_gain=p["min_gain"],
        tune_users=p["tune_users"],
        ltr_params=p["ltr_params"],
        seed=p["seed"],
    )
    weights, method, report = tuned.weights, tuned.method, tuned.report
    print(f"tuned in {time.perf_counter() - t:.0f}s on {report['n_users_tune']} users: {method}")
    fmt = {
        k: f"{v['recall@20']:.4f}/{v['ndcg@20']:.4f}" for k, v in report["single_channels"].items()
    }
    print(f"  validation, single channels: {fmt}")
    fmt = {k: f"{v['recall@20']:.4f}/{v['ndcg@20']:.4f}" for k, v in report["methods"].items()}
    print(f"  validation, methods (2-fold cross-fit): {fmt}; weights {weights.tolist()}")
    if not test:
        return
    users = split["test_users"]
    lists = [c.recommend(users, N_CANDIDATES) for c in chans("test", users, full)]
    side = side_features(full, no_categories)
    ids = np.concatenate(
        [
            combine(
                users[s : s + 4096],
                [(a[s : s + 4096], b[s : s + 4096]) for a, b in lists],
                20,
                method=method,
                weights=weights,
                normalization=p["normalization"],
                rrf_k=p["rrf_k"],
                side=side,
                ranker=tuned.ranker,
            )[0]
            for s in range(0, len(users), 4096)
        ]
    )
    truth = sp.load_npz(d / "test_truth.npz").tocsr()[users]
    single = {c: recall_ndcg(ids_c, truth) for c, (ids_c, _) in zip(channels, lists, strict=True)}
    best = max(single, key=lambda c: single[c][0])
    r, n = recall_ndcg(ids, truth)
    print(
        "  TEST single channels: "
        + ", ".join(f"{c} {a:.4f}/{b:.4f}" for c, (a, b) in single.items())
    )
    print(
        f"  TEST fusion {r:.4f}/{n:.4f}: x{r / single[best][0]:.3f} Recall@20, "
        f"x{n / single[best][1]:.3f} NDCG@20 vs {best}"
    )


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("mode", choices=["cache", "replay"])
    p.add_argument("dir", type=Path)
    p.add_argument(
        "--channels", nargs="+", default=["rp3beta", "userknn", "graphfilter", "lightgcn", "pop"]
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="Fusion parameter"
    )
    p.add_argument(
        "--test", action="store_true", help="also score the test split (record every look)"
    )
    a = p.parse_args()
    if a.mode == "cache":
        cache(a.dir, [c for c in a.channels if c != "pop"])
    else:
        params = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in a.set)}
        replay(a.dir, a.channels, params, a.test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
