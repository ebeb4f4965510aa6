"""The one way to fit a model: ``train``, ``retrain``, fusion's channels and the benchmarks call it.

:func:`fit_model` handles the validation split as the model declares in its
:class:`~gemrec.models.base.ModelTags`, so that every saved model has seen train + validation:

- ``validation="none"``: fit once on train + valid.
- ``validation="early_stopping"``: fit on train watching valid, which picks the best epoch; then
  refit a fresh model on train + valid for that many epochs (the same seed and learning-rate
  schedule, so the refit follows the early-stopped run's schedule). ``refit=False`` keeps the
  early-stopped model, which has not trained on the validation edges.
- ``validation="tuning"``: the model tunes on valid and refits itself on train + valid (fusion).

:func:`fit_on_dataset` reads the splits and side information of a dataset directory (optionally
with extra interactions, e.g. online events folded in by ``gemrec retrain``) and calls
:func:`fit_model`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from gemrec.data.holdout import union
from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.data.store import Dataset
from gemrec.errors import ParameterError
from gemrec.models import get_model_class
from gemrec.models.base import Recommender
from gemrec.tracking import active_run, curve_prefix

__all__ = ["FitResult", "fit_model", "fit_on_dataset", "make_configured"]


class FitResult:
    """A fitted model and the record of how it was fit (written as ``training.json``).

    Attributes
    ----------
    model : Recommender
    record : dict
        ``model``, ``fit_seconds``, ``trained_on`` ("train" or "train+valid") and, for models that
        early-stop, ``early_stopping`` (best epoch, whether the model was refit, the validation
        history).
    """

    def __init__(self, model: Recommender, record: dict[str, Any]) -> None:
        self.model = model
        self.record = record


def make_configured(name: str, params: dict[str, Any], *, progress: bool = False) -> Recommender:
    """Instantiate model ``name``; its epoch bar follows ``progress`` unless ``params`` set it."""
    klass = get_model_class(name)
    if klass.tags.progress and "progress" not in params:
        params = {**params, "progress": progress}
    return klass(**params)


def fit_model(
    model: Recommender,
    train: Interactions,
    *,
    valid: Interactions | None = None,
    side: SideInformation | None = None,
    refit: bool = True,
) -> FitResult:
    """Fit ``model`` on ``train`` (+ ``valid``) as its tags declare; see the module docstring.

    Parameters
    ----------
    model : Recommender
        An unfitted model; with early stopping and ``refit`` the returned model is a new instance
        of the same class.
    train, valid : Interactions
        Splits over the same id space; ``valid`` may be None or empty.
    side : SideInformation, optional
    refit : bool
        Refit early-stopping models on train + valid for the best number of epochs.

    Returns
    -------
    FitResult
    """
    start = time.perf_counter()
    has_valid = valid is not None and valid.nnz > 0
    record: dict[str, Any] = {"model": model.name}
    validation = model.tags.validation
    if not has_valid:
        model.fit(train, side=side)
        record["trained_on"] = "train"
    elif validation == "none":
        model.fit(union(train, valid), side=side)  # type: ignore[arg-type]
        record["trained_on"] = "train+valid"
    elif validation == "tuning":
        model.fit(train, valid=valid, side=side)
        record["trained_on"] = "train+valid"
    else:
        model.fit(train, valid=valid, side=side)
        best = int(getattr(model, "best_epoch_", 0))
        history = getattr(model, "history_", [])
        record["early_stopping"] = {"best_epoch": best, "refit": refit, "history": history}
        record["trained_on"] = "train"
        if refit and best > 0:
            with curve_prefix("refit/"):  # its epochs 1..best again: curves of their own
                model = _refit(model, best, union(train, valid), side)  # type: ignore[arg-type]
            record["trained_on"] = "train+valid"
    record["fit_seconds"] = round(time.perf_counter() - start, 3)
    return FitResult(model, record)


def _refit(
    model: Recommender, epochs: int, data: Interactions, side: SideInformation | None
) -> Recommender:
    params = model.get_params()
    if "epochs" not in params:
        raise ParameterError(
            f"model '{model.name}' declares early stopping but has no 'epochs' parameter"
        )
    params["epochs"] = epochs
    # choices the fit made on the validation split, which the refit does not have
    params.update(getattr(model, "chosen_params_", {}))
    for key in ("checkpoint_dir", "log_dir"):  # the refit is a run of its own
        if params.get(key) is not None:
            params[key] = str(Path(params[key]) / "refit")
    final = type(model)(**params).fit(data, side=side)
    # the refit watched nothing: keep what the early-stopped run learned about the schedule
    final.history_ = getattr(model, "history_", [])  # type: ignore[attr-defined]
    final.best_epoch_ = epochs  # type: ignore[attr-defined]
    return final


def fit_on_dataset(
    dataset: Dataset,
    model: Recommender,
    *,
    extra: Interactions | None = None,
    drop_users: np.ndarray | None = None,
    refit: bool = True,
) -> FitResult:
    """Fit ``model`` on ``dataset``'s train and valid splits with its side information.

    Parameters
    ----------
    dataset : Dataset
    model : Recommender
        An unfitted model (see :func:`make_configured`).
    extra : Interactions, optional
        More training interactions, over id maps that extend the dataset's (new users and items
        appended): ``gemrec retrain`` passes the online events here.
    drop_users : ndarray of int, optional
        Dataset users (internal ids) whose train and valid edges are left out: ``gemrec retrain``
        passes the users forgotten online here.
    refit : bool
        See :func:`fit_model`.

    Notes
    -----
    Inside a tracked command (:func:`gemrec.tracking.record_run`) the run records the model's
    hyperparameters, the dataset and its fingerprint, ``fit_seconds`` and, for early-stopping
    models, ``best_epoch``; the training loop adds the curves as the epochs end.
    """
    params = model.get_params()
    train = dataset.interactions("train")
    valid = dataset.interactions("valid")
    if drop_users is not None and len(drop_users):
        train, valid = train.without_users(drop_users), valid.without_users(drop_users)
    side = dataset.side_information()
    if extra is not None:
        train = union(train.grown(extra.user_ids, extra.item_ids), extra)
        valid = valid.grown(extra.user_ids, extra.item_ids)
        side = side.resized(extra.n_items)
    result = fit_model(model, train, valid=valid, side=side, refit=refit)
    result.record["dataset"] = str(Path(dataset.path).resolve())
    result.record["dataset_fingerprint"] = dataset.manifest.get("fingerprint")
    run = active_run()
    if run is not None:
        run.set_tags(
            {
                "gemrec.model": model.name,
                "gemrec.dataset": result.record["dataset"],
                "gemrec.dataset_fingerprint": result.record["dataset_fingerprint"],
                "gemrec.trained_on": result.record["trained_on"],
            }
        )
        run.log_params({**params, "refit": refit})
        figures = {"fit_seconds": result.record["fit_seconds"]}
        if "early_stopping" in result.record:
            figures["best_epoch"] = result.record["early_stopping"]["best_epoch"]
        run.log_metrics(figures)
    return result
