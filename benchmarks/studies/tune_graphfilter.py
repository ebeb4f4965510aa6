"""Hyperparameter sweep for ``graphfilter`` on a validation split carved from train (never test).

    PYTHONPATH=src python benchmarks/studies/tune_graphfilter.py --dataset movielens-100k

Prints Recall@20 / NDCG@20 on the validation split (the importer's: 20% of each user's training
edges at random, seed 0; ``benchmarks/_data.py``).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _data import DATASETS, splits

from gemrec.eval import evaluate
from gemrec.models.graphfilter import GraphFilter


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="movielens-100k", choices=sorted(DATASETS))
    parser.add_argument("--ranks", default="0.01,0.02,0.04")
    parser.add_argument("--betas", default="0.15,0.3,0.5")
    parser.add_argument("--exponents", default="0.5:0.5,0.6:0.4,0.7:0.3")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--svd-n-iter", type=int, default=4)
    args = parser.parse_args()
    fit_part, valid, _ = splits(args.dataset, valid_fraction=0.2, seed=0)
    ranks = [float(x) if "." in x else int(x) for x in args.ranks.split(",")]
    betas = [float(x) for x in args.betas.split(",")]
    exps = [tuple(float(v) for v in e.split(":")) for e in args.exponents.split(",")]
    for (a, c), k, beta in itertools.product(exps, ranks, betas):
        t0 = time.perf_counter()
        model = GraphFilter(
            n_components=k,
            beta=beta,
            input_exponent=a,
            output_exponent=c,
            num_threads=args.threads,
            svd_n_iter=args.svd_n_iter,
        )
        model.fit(fit_part)
        res = evaluate(model, valid, ks=[20])
        print(
            f"{args.dataset} a={a} c={c} k={k} beta={beta} n_iter={args.svd_n_iter} "
            f"recall@20={res['recall@20']:.4f} ndcg@20={res['ndcg@20']:.4f} "
            f"({time.perf_counter() - t0:.1f}s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
