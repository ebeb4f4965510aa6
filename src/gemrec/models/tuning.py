"""Hyperparameter search on a validation split carved from train (never test), with Optuna.

:data:`SEARCH_SPACES` declares, per model name, the hyperparameters worth searching and their
ranges. :func:`tune` runs an Optuna study (TPE sampler, seeded) within a time budget and/or a
number of trials: each trial fits the model on the tuning part of the data through the one fit
path and scores Recall@20 on the held-out part. The best setting is then refit on the whole
train + valid split by :func:`gemrec.models.fitting.fit_on_dataset`, as ``gemrec train`` would.

The tuning split is the dataset's validation split when it has one (the model then fits on the
train split alone), else a per-user holdout of train (:func:`gemrec.data.holdout.user_holdout`:
each user's latest 10 % when timestamps exist).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gemrec._optional import require
from gemrec.data.holdout import user_holdout
from gemrec.data.interactions import Interactions
from gemrec.data.store import Dataset
from gemrec.errors import ParameterError
from gemrec.models import get_model_class
from gemrec.models.fitting import FitResult, fit_model, fit_on_dataset, make_configured
from gemrec.tracking import active_run, untracked

__all__ = ["SEARCH_SPACES", "Dimension", "TuningResult", "parse_budget", "tune"]


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: ``kind`` "int", "float" or "choice"."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any, name: str) -> Any:
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(name, self.low, self.high, log=self.log)
        return trial.suggest_categorical(name, list(self.choices))


def _int(low: int, high: int, *, log: bool = False) -> Dimension:
    return Dimension("int", low, high, log)


def _float(low: float, high: float, *, log: bool = False) -> Dimension:
    return Dimension("float", low, high, log)


#: the searched hyperparameters of each model (models not listed have nothing worth searching)
SEARCH_SPACES: dict[str, dict[str, Dimension]] = {
    "pop": {"half_life_days": _float(0.5, 365.0, log=True)},
    "itemknn": {
        "n_neighbors": _int(20, 1000, log=True),
        "shrink": _float(0.0, 200.0),
        "asymmetry": _float(0.0, 1.0),
    },
    "userknn": {"n_neighbors": _int(20, 1000, log=True), "shrink": _float(0.0, 200.0)},
    "rp3beta": {
        "alpha": _float(0.2, 1.5),
        "beta": _float(0.0, 1.0),
        "n_neighbors": _int(50, 1000, log=True),
    },
    "graphfilter": {
        "beta": _float(0.0, 1.0),
        # a share of the items (the default 0.02 is 2 %)
        "n_components": _float(0.003, 0.1, log=True),
        "input_exponent": _float(0.0, 1.0),
        "output_exponent": _float(0.0, 1.0),
    },
    "svd": {"factors": _int(16, 512, log=True)},
    "lightgcn": {"lr": _float(1e-3, 5e-2, log=True), "reg": _float(1e-5, 1e-2, log=True)},
    "mf": {"lr": _float(1e-3, 5e-2, log=True), "reg": _float(1e-5, 1e-2, log=True)},
    "ncf": {"lr": _float(1e-4, 1e-2, log=True)},
    "item2vec": {"lr": _float(5e-3, 1e-1, log=True), "window": _int(2, 10)},
}


@dataclass
class TuningResult:
    """The refit best model and every trial."""

    fit: FitResult
    best_params: dict[str, Any]
    best_value: float
    trials: list[dict[str, Any]]
    tuning_split: str


def parse_budget(text: str) -> float:
    """Seconds from ``"90s"``, ``"10m"``, ``"1.5h"`` or a bare number of seconds."""
    raw = str(text).strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(raw[-1:], None)
    number = raw[:-1] if scale is not None else raw
    try:
        value = float(number) * (scale or 1.0)
    except ValueError:
        raise ParameterError.invalid("budget", "a duration such as 90s, 10m or 1h", text) from None
    if not math.isfinite(value) or value <= 0:
        raise ParameterError.invalid("budget", "a positive duration", text)
    return value


def _tuning_split(dataset: Dataset, seed: int) -> tuple[Interactions, Interactions, str]:
    valid = dataset.interactions("valid")
    if valid.nnz > 0:
        return dataset.interactions("train"), valid, "the dataset's validation split"
    fit, held = user_holdout(dataset.interactions("train"), 0.1, seed=seed)
    return fit, held, "a 10% per-user holdout of train"


def tune(
    dataset: Dataset,
    name: str,
    *,
    budget_s: float | None = None,
    n_trials: int | None = None,
    fixed: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> TuningResult:
    """Search ``name``'s :data:`SEARCH_SPACES` on a split carved from train; refit the best.

    Parameters
    ----------
    dataset : Dataset
    name : str
        A model of :data:`gemrec.models.MODELS` with a search space.
    budget_s : float, optional
        Stop starting new trials after this many seconds (the running one finishes).
    n_trials : int, optional
        At most this many trials; with neither limit, 20 trials.
    fixed : dict, optional
        Hyperparameters kept as given (not searched).
    seed : int
        Seeds the sampler and the holdout.
    progress : bool
        Print one line per trial on stderr.
    log : callable, optional
        Where trial lines go (default: stderr when ``progress``).

    Returns
    -------
    TuningResult
        The first trial is the model's defaults (with ``fixed``; a default of None, such as
        ``pop``'s ``half_life_days``, is sampled), so tuning does not return a setting worse on
        the tuning split than the defaults.
    """
    optuna = require("optuna", "gemrec tune")
    from gemrec.eval.evaluate import evaluate

    get_model_class(name)  # a one-line error for an unknown model
    space = SEARCH_SPACES.get(name)
    if not space:
        raise ParameterError(
            f"model '{name}' has no search space; models that can be tuned: "
            f"{', '.join(sorted(SEARCH_SPACES))}"
        )
    fixed = dict(fixed or {})
    searched = {k: d for k, d in space.items() if k not in fixed}
    if n_trials is None and budget_s is None:
        n_trials = 20
    if n_trials is not None and n_trials < 1:
        raise ParameterError.invalid("trials", "a positive integer", n_trials)
    fit_part, held, split_name = _tuning_split(dataset, seed)
    side = dataset.side_information()
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    start = time.perf_counter()
    run = active_run()

    def objective(trial: Any) -> float:
        params = {**fixed, **{k: d.suggest(trial, k) for k, d in searched.items()}}
        model = make_configured(name, params)
        t0 = time.perf_counter()
        with untracked():  # a trial's epochs are not the run's curves; its result is, below
            fitted = fit_model(model, fit_part, side=side).model
            value = float(evaluate(fitted, held, ks=[20])["recall@20"])
        trial.set_user_attr("fit_seconds", round(time.perf_counter() - t0, 3))
        if run is not None:
            run.log_metrics({"trial/recall@20": value}, step=trial.number + 1)
        if progress:
            say(
                f"tune {name}: trial {trial.number + 1} recall@20 {value:.4f} "
                f"({time.perf_counter() - start:.0f}s) {params}"
            )
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    defaults = get_model_class(name)().get_params()
    study.enqueue_trial({k: defaults[k] for k in searched if defaults.get(k) is not None})
    study.optimize(objective, n_trials=n_trials, timeout=budget_s)
    best = {**fixed, **study.best_params}
    trials = [
        {
            "number": t.number,
            "params": t.params,
            "recall@20": t.value,
            "fit_seconds": t.user_attrs.get("fit_seconds"),
            "state": t.state.name,
        }
        for t in study.trials
    ]
    result = fit_on_dataset(dataset, make_configured(name, best, progress=progress))
    result.record["params"] = best
    result.record["tuning"] = {
        "split": split_name,
        "objective": "recall@20",
        "best_value": study.best_value,
        "n_trials": len(study.trials),
        "seconds": round(time.perf_counter() - start, 3),
        "trials": trials,
    }
    if run is not None:
        run.log_params({"tuning_split": split_name, "tuning_objective": "recall@20"})
        run.log_metrics({"tuning/best_recall@20": study.best_value, "tuning/n_trials": len(trials)})
    return TuningResult(result, best, float(study.best_value), trials, split_name)
