"""Training-free models as `gemrec train` fits them by default: tuned, then scored on test.

For each dataset and model, :func:`gemrec.models.commands.fit_dataset` tunes the model's knobs on
the dataset's validation split (10 % of each user's training edges, carved by the importer; never
test) within its default budget, refits the chosen setting on train + valid, and the model is
scored on the test split (full ranking, training items excluded). Fit + tune time is wall time of
that one call; the load average is printed with it. After a dataset's models, the first model's
per-user Recall@20 is compared with each other's: the mean paired difference and its standard
error over the test users (``paired_difference``), which says whether a gap between two close
models is more than the luck of the test split.

Usage::

    python benchmarks/bench_tuned.py                     # every dataset, every model
    python benchmarks/bench_tuned.py --datasets gowalla --models graphfilter
    python benchmarks/bench_tuned.py --datasets gowalla --models graphfilter --trials 80
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import load

from gemrec.eval import EvaluationResult, evaluate, paired_difference
from gemrec.models.commands import fit_dataset
from gemrec.models.tuning import tune as search

DATASETS = ["gowalla", "movielens-100k", "movielens-1m", "lastfm-2k", "taobao"]
MODELS = ["graphfilter", "rp3beta", "itemknn", "userknn"]


def run(
    dataset: str,
    model: str,
    *,
    tune: bool,
    trials: int | None = None,
    fixed: dict[str, object] | None = None,
) -> tuple[dict[str, object], EvaluationResult]:
    """Fit (tuning first unless ``tune`` is False; ``trials``: a search of that many trials
    in place of the default budget; ``fixed``: hyperparameters set, never searched) and score on
    test: the printed row, the per-user scores."""
    fixed = dict(fixed or {})
    ds = load(dataset)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    if trials is None:
        fitted = fit_dataset(ds, model, fixed, tune=tune)
    else:
        fitted = search(ds, model, n_trials=trials, fixed=fixed).fit
    seconds = time.perf_counter() - t0
    test = ds.interactions("test")
    scores = evaluate(fitted.model, test, ks=[20], per_user=True)
    tuning = fitted.record.get("tuning") or {}
    row = {
        "dataset": dataset,
        "model": model,
        "tuned": tune,
        "recall@20": round(float(scores["recall@20"]), 4),
        "ndcg@20": round(float(scores["ndcg@20"]), 4),
        "fit_tune_s": round(seconds, 1),
        "trials": tuning.get("n_trials", 0),
        "valid_default": tuning.get("default_value"),
        "valid_tuned": tuning.get("best_value"),
        "params": {
            k: fitted.record["params"].get(k)
            for k in [*(tuning.get("trials") or [{}])[0].get("params", {}), *fixed]
        },
        "load": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    return row, scores


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--no-tune", dest="tune", action="store_false", help="shipped defaults")
    parser.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="search N trials with no time budget (what `gemrec tune --trials N` runs) instead "
        "of the default search",
    )
    parser.add_argument(
        "--set",
        dest="fixed",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a hyperparameter of every model run, never searched (repeatable)",
    )
    return parser


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    fixed = {k: _value(v) for k, _, v in (item.partition("=") for item in args.fixed)}
    for dataset in args.datasets.split(","):
        scored = {}
        for model in args.models.split(","):
            row, scored[model] = run(
                dataset, model, tune=args.tune, trials=args.trials, fixed=fixed
            )
            print(json.dumps(row), flush=True)
        first, *others = scored
        for other in others:
            mean, se, n = paired_difference(scored[first], scored[other])
            line = {"dataset": dataset, "difference": f"{first} - {other}", "recall@20": mean}
            print(json.dumps({**line, "standard_error": se, "users": n}), flush=True)


if __name__ == "__main__":
    main()
