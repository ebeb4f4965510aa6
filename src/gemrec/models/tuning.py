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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gemrec._optional import require
from gemrec.data.holdout import user_holdout
from gemrec.data.import_edges import VALID_LAST_IN_ORDER, VALID_LATEST
from gemrec.data.interactions import Interactions
from gemrec.data.store import Dataset
from gemrec.errors import ParameterError
from gemrec.models import get_model_class
from gemrec.models.fitting import FitResult, fit_model, fit_on_dataset, make_configured
from gemrec.models.training import watching_validation
from gemrec.tracking import active_run, untracked

__all__ = [
    "SEARCH_SPACES",
    "Dimension",
    "TuningResult",
    "parse_budget",
    "tune",
    "tuning_split",
]


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: ``kind`` "int", "float" or "choice"; not searched when a
    fixed hyperparameter has a value of ``unless`` (``(name, value)`` pairs) that rules it out,
    or when it ``needs_later_held_out`` and the tuning split is not one."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()
    unless: tuple[tuple[str, Any], ...] = ()
    #: searched only when the held-out part follows the fitted part in time (each user's latest
    #: edges) and the fitted interactions carry times or an order: a random held-out part cannot
    #: tell how much the order should weigh
    needs_later_held_out: bool = False

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
        "heat": _float(0.0, 8.0),
        # the plateau response's flatness (the default 1 is the linear filter; ChebyCF: 1.5 on
        # Gowalla, 15 on Last.fm)
        "flatness": _float(1.0, 20.0, log=True),
        # a share of the items (the default 0.02 is 2 %)
        "n_components": _float(0.005, 0.15, log=True),
        "input_exponent": _float(0.0, 1.0),
        "output_exponent": _float(0.0, 1.0),
        # the item-item part's shrinkage (the default 0 is none; the factored part has no entries
        # to shrink)
        "shrink": Dimension("float", 0.0, 100.0, unless=(("item_item", "factored"),)),
        # the graph's user-degree normalisation (1/2 is GF-CF's); a choice of three, as each
        # value needs its own gram and SVD
        "user_exponent": Dimension("choice", choices=(0.3, 0.5, 0.7)),
        # the weight of a user's older interactions (time ranks), where validation is later
        "recency": Dimension("float", 0.0, 3.0, needs_later_held_out=True),
    },
    "svd": {"factors": _int(16, 512, log=True)},
    "lightgcn": {"lr": _float(1e-3, 5e-2, log=True), "reg": _float(1e-5, 1e-2, log=True)},
    "mf": {"lr": _float(1e-3, 5e-2, log=True), "reg": _float(1e-5, 1e-2, log=True)},
    "ncf": {"lr": _float(1e-4, 1e-2, log=True)},
    "item2vec": {
        "embedding_dim": _int(32, 256, log=True),
        "lr": _float(5e-3, 1e-1, log=True),
        "window": _int(1, 5),
        "negatives": _int(1, 5),
    },
}


#: settings tried right after the defaults, before the sampler's own (each over the defaults;
#: searched knobs only): ones that won elsewhere, so a short search on a new dataset starts from
#: more than one good region
STARTING_POINTS: dict[str, list[dict[str, Any]]] = {
    "graphfilter": [
        # the item-item part shrunk (sparse product catalogues: Amazon Scientific's and Ciao's
        # validation splits), and where recency is searched, recent interactions weighing more
        # (Gowalla's lines in order, validated on their last tenth)
        {"shrink": 20.0, "recency": 1.5},
        # a flat response with popular items favoured (Ciao's and MovieLens' validation splits)
        {"flatness": 10.0, "output_exponent": 0.1},
        # ChebyCF's published Gowalla setting, in the searched knobs
        {"flatness": 1.5, "beta": 0.2, "input_exponent": 0.9, "output_exponent": 0.1},
        # shrunk, with heavy users weighing more (Amazon Scientific's validation splits); last,
        # as it needs a gram and an SVD of its own
        {"shrink": 20.0, "user_exponent": 0.3},
    ],
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


#: :func:`tuning_split`'s description of a dataset's own validation split
_VALID_SPLIT = "the dataset's validation split"


def tuning_split(dataset: Dataset, seed: int = 0) -> tuple[Interactions, Interactions, str]:
    """``(fit, held, description)``: where trials fit and where they are scored; never test.

    The dataset's validation split when it has one (trials fit on the train split alone), else a
    10 % per-user holdout of train (each user's latest edges when there are timestamps).
    """
    valid = dataset.interactions("valid")
    if valid.nnz > 0:
        return dataset.interactions("train"), valid, _VALID_SPLIT
    fit, held = user_holdout(dataset.interactions("train"), 0.1, seed=seed)
    return fit, held, "a 10% per-user holdout of train"


def _held_out_later(dataset: Dataset, fit: Interactions, split_name: str) -> bool:
    """Whether :func:`tuning_split`'s held-out part (``split_name``) is each user's latest edges
    of an ordered fit part: a validation split carved by time, or the holdout of train that
    timestamps give."""
    if fit.timestamps is None and fit.order is None:
        return False
    if split_name == _VALID_SPLIT:
        split = dataset.manifest.get("split") or {}
        return split.get("valid_from") in (VALID_LATEST, VALID_LAST_IN_ORDER)
    return fit.timestamps is not None


def _costliest(searched: dict[str, Dimension]) -> dict[str, Any]:
    """Each numeric dimension at its upper bound: the largest rank, the most neighbours (choices
    are left to the trial: shared work is kept per choice)."""
    out: dict[str, Any] = {}
    for key, dim in searched.items():
        if dim.kind == "int":
            out[key] = int(dim.high)
        elif dim.kind == "float":
            out[key] = float(dim.high)
    return out


def _sample_users(held: Interactions, n: int | None, seed: int) -> Any:
    import numpy as np

    users = np.flatnonzero(np.diff(held.matrix.indptr) > 0)
    if n is None or len(users) <= n:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, n, replace=False))


def tune(
    dataset: Dataset,
    name: str,
    *,
    budget_s: float | None = None,
    n_trials: int | None = None,
    fit_multiple: float | None = None,
    min_fits: float | None = None,
    min_trials: int = 1,
    fixed: dict[str, Any] | None = None,
    eval_users: int | None = 5_000,
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
        Stop starting new trials after this many seconds (the running one finishes). The
        first trial, the defaults, runs whatever the budget (the work trials share may use it
        all on a large catalogue).
    n_trials : int, optional
        At most this many trials; with no limit at all, 20 trials.
    fit_multiple : float, optional
        Also stop starting new trials once the search has taken this many times one fit: the
        work the trials share plus the fastest trial so far (a budget in units of one fit on the
        user's own data, as ``gemrec train`` uses for training-free models).
    min_fits : float, optional
        Extend ``budget_s`` to this many times one fit when one fit takes longer than
        ``budget_s / min_fits`` (known after the first trial): on a large catalogue, where the
        defaults' own fit uses a short budget up, the search still gets time for its first
        starting points (``gemrec train`` passes 1.5).
    min_trials : int
        Run at least this many trials before ``fit_multiple`` may stop the search.
    fixed : dict, optional
        Hyperparameters kept as given (not searched).
    eval_users : int, optional
        Score each trial on at most this many held-out users (a seeded sample; None: all).
    seed : int
        Seeds the sampler, the holdout and the user sample.
    progress : bool
        Print one line per trial on stderr.
    log : callable, optional
        Where trial lines go (default: stderr when ``progress``).

    Returns
    -------
    TuningResult
        The first trial is the model's defaults (with ``fixed``; a default of None, such as
        ``pop``'s ``half_life_days``, is sampled), so tuning does not return a setting worse on
        the tuning split than the defaults; the next are :data:`STARTING_POINTS`. Work that
        trials can share (:meth:`~gemrec.models.base.Recommender.reusable_work`, e.g.
        graphfilter's gram and SVD) is computed for the defaults, and once more, at the largest
        rank searched, when a trial first needs more; a searched choice the work depends on
        (graphfilter's ``user_exponent``) gets work of its own the same way.
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
    searched = {
        k: d
        for k, d in space.items()
        if k not in fixed and not any(fixed.get(p, object()) == v for p, v in d.unless)
    }
    if n_trials is None and budget_s is None:
        n_trials = 20
    if n_trials is not None and n_trials < 1:
        raise ParameterError.invalid("trials", "a positive integer", n_trials)
    if fit_multiple is not None and not fit_multiple >= 1:
        raise ParameterError.invalid("fit_multiple", "a number >= 1", fit_multiple)
    start = time.perf_counter()
    run = active_run()
    fit_part, held, split_name = tuning_split(dataset, seed)
    if held.nnz == 0:
        raise ParameterError(
            f"dataset {dataset.path}: no interactions to tune on (the validation split is empty "
            "and a 10% per-user holdout of train holds none); import it with a validation split"
        )
    if not _held_out_later(dataset, fit_part, split_name):
        searched = {k: d for k, d in searched.items() if not d.needs_later_held_out}
    side = dataset.side_information()
    users = _sample_users(held, eval_users, seed)
    setup_seconds = time.perf_counter() - start  # reading and splitting: not the model's cost
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    defaults = get_model_class(name)().get_params()
    start_point = {k: defaults[k] for k in searched if defaults.get(k) is not None}
    choices = [k for k, d in searched.items() if d.kind == "choice"]

    def choice_key(params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(params.get(k) for k in choices)

    t_shared = time.perf_counter()
    # the work trials share starts at what the defaults need (at the costly end of every range
    # it can take a whole budget on a large catalogue) and grows once, when a trial needs more;
    # a searched choice (graphfilter's user_exponent) may need work of its own
    first = make_configured(name, {**fixed, **start_point}).reusable_work(fit_part)
    shared_seconds = time.perf_counter() - t_shared
    works = {choice_key(start_point): first}
    trial_seconds: list[float] = []

    def objective(trial: Any) -> float:
        params = {**fixed, **{k: d.suggest(trial, k) for k, d in searched.items()}}
        model = make_configured(name, params)
        shared = works.get(choice_key(params))
        if first is not None and (shared is None or not model.reuses(shared)):
            if budget_s is not None and time.perf_counter() - start + shared_seconds > budget_s:
                # new work costs at least what the first cost, more than the budget has left:
                # the search ends here
                trial.study.stop()
                raise optuna.TrialPruned("needs more shared work than the budget has time for")
            costliest = make_configured(name, {**params, **_costliest(searched)})
            shared = works[choice_key(params)] = costliest.reusable_work(fit_part)
        t0 = time.perf_counter()
        with untracked():  # a trial's epochs are not the run's curves; its result is, below
            if model.tags.validation == "early_stopping":
                # the epochs stop early on the held-out part; each validation goes to the pruner
                def report(epoch: int, metrics: Mapping[str, float]) -> None:
                    trial.report(float(metrics[f"recall@{getattr(model, 'eval_k', 20)}"]), epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned at epoch {epoch}")

                with watching_validation(report):
                    fitted = fit_model(model, fit_part, valid=held, side=side, refit=False).model
            elif shared is None:
                fitted = fit_model(model, fit_part, side=side).model
            else:
                fitted = model.fit_reusing(fit_part, shared, side=side)
            value = float(evaluate(fitted, held, ks=[20], users=users)["recall@20"])
        trial.set_user_attr("fit_seconds", round(time.perf_counter() - t0, 3))
        trial_seconds.append(time.perf_counter() - t0)
        if run is not None:
            run.log_metrics({"trial/recall@20": value}, step=trial.number + 1)
        if progress:
            say(
                f"tune {name}: trial {trial.number + 1} recall@20 {value:.4f} "
                f"({time.perf_counter() - start:.0f}s) {params}"
            )
        return value

    def stop_at_multiple(study: Any, trial: Any) -> None:
        if fit_multiple is None or not trial_seconds or trial.number + 1 < min_trials:
            return
        # one fit: the work trials share plus the fastest trial (the first one also pays
        # one-off costs such as compiling the ranking kernel)
        one_fit = shared_seconds + min(trial_seconds)
        if time.perf_counter() - start >= fit_multiple * one_fit + setup_seconds:
            study.stop()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        # a few random trials, then TPE modelling the knobs jointly: searches here are short
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=6, multivariate=True),
        # iterative models report each validation; a trial below the median of the earlier
        # trials at the same epoch stops there
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2),
    )
    study.enqueue_trial(start_point)
    for point in STARTING_POINTS.get(name, []):
        study.enqueue_trial({**start_point, **{k: v for k, v in point.items() if k in searched}})
    # the defaults are always scored, even when the shared work used up the budget: the search
    # then returns them rather than nothing
    study.optimize(objective, n_trials=1)
    if budget_s is not None and min_fits is not None and trial_seconds:
        one_fit = shared_seconds + trial_seconds[0]
        budget_s = max(budget_s, min_fits * one_fit + setup_seconds)
    remaining = None if budget_s is None else budget_s - (time.perf_counter() - start)
    if (n_trials is None or n_trials > 1) and (remaining is None or remaining > 0):
        study.optimize(
            objective,
            n_trials=None if n_trials is None else n_trials - 1,
            timeout=remaining,
            callbacks=[stop_at_multiple],
        )
    best = {**fixed, **study.best_params}
    trials = [
        {
            "number": t.number,
            "params": t.params,
            "recall@20": t.value,
            "fit_seconds": t.user_attrs.get("fit_seconds"),
            "state": t.state.name,
            "reported": {int(k): v for k, v in t.intermediate_values.items()},
        }
        # starting points the budget left unrun stay queued: not trials
        for t in study.trials
        if t.state.is_finished()
    ]
    search_seconds = time.perf_counter() - start
    result = fit_on_dataset(dataset, make_configured(name, best, progress=progress))
    result.record["params"] = best
    result.record["tuning"] = {
        "split": split_name,
        "objective": "recall@20",
        "eval_users": len(users),
        "default_value": study.trials[0].value,
        "best_value": study.best_value,
        "n_trials": len(trials),
        "seconds": round(search_seconds, 3),
        "trials": trials,
    }
    if run is not None:
        run.log_params({"tuning_split": split_name, "tuning_objective": "recall@20"})
        run.log_metrics({"tuning/best_recall@20": study.best_value, "tuning/n_trials": len(trials)})
    return TuningResult(result, best, float(study.best_value), trials, split_name)
