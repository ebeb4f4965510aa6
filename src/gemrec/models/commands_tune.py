"""``gemrec tune``: search hyperparameters on a split carved from train, refit the best."""

from __future__ import annotations

import argparse

from gemrec._cli_util import add_command, add_quiet, add_tracking, tracked
from gemrec.data.store import Dataset
from gemrec.errors import ParameterError
from gemrec.models.commands import params_from_args, save_fitted

__all__ = ["add_parser", "run_tuning"]

HELP = "search a model's hyperparameters (Optuna) and save the best model"
DESCRIPTION = (
    "Search the model's declared hyperparameters with Optuna (TPE) on DATASET_DIR's validation "
    "split (or a 10%% per-user holdout of train; never the test split), then refit the best "
    "setting on train + valid and save it with every trial in training.json."
)
EXAMPLE = """example:
  gemrec tune data/gowalla --model graphfilter --budget 2m -o models/gf
  gemrec tune data/shop --model rp3beta --trials 30 --set n_neighbors=200 -o models/rp3
  gemrec train data/shop --model itemknn --tune 1m -o models/knn   # the same from train"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "tune", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    p.add_argument("dataset", metavar="DATASET_DIR")
    p.add_argument("--model", required=True, metavar="NAME")
    p.add_argument("--budget", metavar="DURATION", help="time limit, e.g. 90s, 10m, 1h")
    p.add_argument(
        "--trials", type=int, metavar="N", help="most trials (default 20 without --budget)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed hyperparameter")
    p.add_argument("--config", metavar="FILE", help="TOML file of fixed hyperparameters")
    p.add_argument("-o", "--output", required=True, metavar="MODEL_DIR")
    add_quiet(p, "no per-trial lines on stderr")
    add_tracking(p)
    p.set_defaults(func=_run)


def run_tuning(
    args: argparse.Namespace,
    fixed: dict[str, object],
    *,
    budget: str | None,
    trials: int | None = None,
    seed: int = 0,
) -> int:
    """Tune, refit and save; print one summary line (trial lines on stderr unless quiet)."""
    from gemrec.models.tuning import parse_budget, tune

    seconds = parse_budget(budget) if budget is not None else None
    if trials is not None and trials < 1:
        raise ParameterError.invalid("--trials", "a positive integer", trials)
    dataset = Dataset.open(args.dataset)
    with tracked(args, "tune", args.model):
        result = tune(
            dataset,
            args.model,
            budget_s=seconds,
            n_trials=trials,
            fixed=fixed,
            seed=seed,
            # one line per trial, in a terminal and in logs alike; --quiet silences them
            progress=not args.quiet,
        )
        save_fitted(result.fit, args.output)
    print(
        f"tuned {args.model} on {dataset.path}: {len(result.trials)} trials on "
        f"{result.tuning_split}, best recall@20 {result.best_value:.4f} with {result.best_params}"
        f" -> {args.output}"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    return run_tuning(
        args, params_from_args(args), budget=args.budget, trials=args.trials, seed=args.seed
    )
