"""Hyperparameter search for the neighbourhood baselines on a validation split carved from train.

Procedure (never touches the test split): the importer carves 20 % of each user's training edges
at random as the validation split (``benchmarks/_data.py``, ``valid_fraction=0.2``, seed 0); fit
on the rest, score Recall@20 on the validation split, and run coordinate search: for each parameter
in turn, try every value of its grid with the others held at the current best; repeat the passes
until nothing changes (at most three). The winner is then refit on all of train and evaluated on
test by ``benchmarks/bench_cf.py``.

Finally the shipped defaults are scored on the same validation split, to see how far they are
from the per-dataset optimum (on datasets other than the one they were tuned on).

Run: ``PYTHONPATH=src python benchmarks/studies/tune_cf.py {rp3beta|itemknn|userknn} [DATASET]``
with DATASET one of gowalla (default), movielens-1m, movielens-100k, lastfm-2k.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _data import DATASETS, splits

from gemrec.eval import evaluate
from gemrec.models import make_model

GRIDS: dict[str, dict[str, list[Any]]] = {
    "rp3beta": {
        "alpha": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        "beta": [0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4],
        "n_neighbors": [100, 200, 400],
        "normalize": [False, True],
    },
    "itemknn": {
        "asymmetry": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "shrink": [0.0, 10.0, 50.0, 100.0, 300.0],
        "n_neighbors": [25, 50, 100, 200, 400],
        "weighting": ["none", "tfidf"],
    },
    "userknn": {
        "n_neighbors": [25, 50, 100, 200, 400, 800],
        "shrink": [0.0, 10.0, 50.0, 100.0, 300.0],
        "weighting": ["none", "tfidf"],
    },
}
START: dict[str, dict[str, Any]] = {
    # where a first coarse pass (alpha 0.5..1.2, beta 0..0.5, n_neighbors 50..800) from
    # (1.0, 0.3, 200) ended
    "rp3beta": {"alpha": 0.7, "beta": 0.2, "n_neighbors": 200, "normalize": False},
    # where a first pass over shrink / n_neighbors / weighting (asymmetry fixed at 0.5) from
    # (200, 10, none) ended
    "itemknn": {"n_neighbors": 200, "shrink": 50.0, "weighting": "none", "asymmetry": 0.5},
    "userknn": {"n_neighbors": 200, "shrink": 10.0, "weighting": "none"},
}


def tune(model_name: str, dataset: str = "gowalla") -> dict[str, Any]:
    fit_part, valid, _ = splits(dataset, valid_fraction=0.2, seed=0)
    cache: dict[str, tuple[float, float]] = {}

    def score(params: dict[str, Any]) -> tuple[float, float]:
        key = json.dumps(params, sort_keys=True)
        if key not in cache:
            t = time.perf_counter()
            model = make_model(model_name, **params).fit(fit_part)
            r = evaluate(model, valid, ks=[20])
            cache[key] = (r["recall@20"], r["ndcg@20"])
            print(
                f"{model_name} {key} valid recall@20 {cache[key][0]:.4f} "
                f"ndcg@20 {cache[key][1]:.4f}"
                f" ({time.perf_counter() - t:.0f}s)",
                flush=True,
            )
        return cache[key]

    best = dict(START[model_name])
    best_score = score(best)
    for _ in range(3):
        changed = False
        for pname, grid in GRIDS[model_name].items():
            for value in grid:
                cand = {**best, pname: value}
                s = score(cand)
                if s > best_score:
                    best, best_score, changed = cand, s, True
        if not changed:
            break
    print(
        f"BEST {model_name} {json.dumps(best)} valid recall@20 {best_score[0]:.4f} "
        f"ndcg@20 {best_score[1]:.4f} after {len(cache)} fits",
        flush=True,
    )
    defaults = {k: v for k, v in make_model(model_name).get_params().items() if k in best}
    d_score = score(defaults)
    print(
        f"DEFAULTS {model_name} {json.dumps(defaults)} valid recall@20 {d_score[0]:.4f} "
        f"ndcg@20 {d_score[1]:.4f} = {100 * d_score[0] / best_score[0]:.1f}% / "
        f"{100 * d_score[1] / best_score[1]:.1f}% of the tuned best on {dataset}",
        flush=True,
    )
    return best


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", choices=sorted(GRIDS))
    parser.add_argument("dataset", nargs="?", default="gowalla", choices=sorted(DATASETS))
    args = parser.parse_args()
    tune(args.model, args.dataset)
