"""Reading recorded runs back: the small API the console (and scripts) use."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from gemrec._optional import require
from gemrec.errors import GemrecError
from gemrec.tracking._record import EXPERIMENT, _http_limits
from gemrec.tracking._uri import tracking_uri

__all__ = ["list_runs", "run_curves"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _bounded(read: Callable[_P, _T]) -> Callable[_P, _T]:
    """``read`` under the recording's HTTP retry and timeout limits: a tracking server that is
    down fails a read within seconds instead of holding a console page for minutes."""

    @functools.wraps(read)
    def bounded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        with _http_limits():
            return read(*args, **kwargs)

    return bounded


def _client(uri: str | None) -> tuple[Any, str] | None:
    """An MlflowClient on the store and gemrec's experiment id; None when there is nothing yet.

    An SQLite store that does not exist is not created by reading it.
    """
    uri = tracking_uri(uri)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():
        return None
    mlflow = require("mlflow", "reading tracked runs")
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return None
    return client, str(experiment.experiment_id)


def _iso(millis: int | None) -> str | None:
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="seconds")


@_bounded
def list_runs(
    uri: str | None = None, *, limit: int = 1000, model_dir: str | Path | None = None
) -> list[dict[str, Any]]:
    """The recorded runs, newest first.

    Parameters
    ----------
    uri : str, optional
        Tracking URI; default :func:`gemrec.tracking.tracking_uri`.
    limit : int
        At most this many runs.
    model_dir : str or Path, optional
        Only the runs of this model directory (tag ``gemrec.model_dir``: the ``train`` or
        ``retrain`` that wrote it and every ``evaluate`` of it); compared as a resolved path.

    Returns
    -------
    list of dict
        One dict per run: ``run_id``, ``name``, ``command`` (train, tune, evaluate, retrain,
        demo), ``model``, ``dataset`` (path), ``dataset_fingerprint``, ``model_dir``,
        ``git_revision``, ``status``, ``start_time`` and ``end_time`` (ISO 8601, UTC),
        ``params`` (str -> str) and ``metrics`` (name -> last value). Values a run did not
        record are None. An empty list when the store holds no gemrec run.

    Examples
    --------
    >>> from gemrec.tracking import list_runs
    >>> [(r["command"], r["model"], r["metrics"].get("test/recall_at_20"))
    ...  for r in list_runs("sqlite:///mlflow.db", model_dir="models/mf")]  # doctest: +SKIP
    [('evaluate', 'mf', 0.081), ('train', 'mf', None)]
    """
    opened = _client(uri)
    if opened is None:
        return []
    client, experiment_id = opened
    wanted = None if model_dir is None else str(Path(model_dir).resolve())
    runs = client.search_runs(
        [experiment_id],
        filter_string=_tag_filter("gemrec.model_dir", wanted),
        max_results=limit,
        order_by=["attributes.start_time DESC"],
    )
    out = []
    for run in runs:
        tags = run.data.tags
        if wanted is not None and tags.get("gemrec.model_dir") != wanted:
            continue  # a value holding both quote characters is filtered here, not by the store
        out.append(
            {
                "run_id": run.info.run_id,
                "name": run.info.run_name,
                "command": tags.get("gemrec.command"),
                "model": tags.get("gemrec.model"),
                "dataset": tags.get("gemrec.dataset"),
                "dataset_fingerprint": tags.get("gemrec.dataset_fingerprint"),
                "model_dir": tags.get("gemrec.model_dir"),
                "git_revision": tags.get("gemrec.git_revision"),
                "status": run.info.status,
                "start_time": _iso(run.info.start_time),
                "end_time": _iso(run.info.end_time),
                "params": dict(run.data.params),
                "metrics": dict(run.data.metrics),
            }
        )
    return out


def _tag_filter(tag: str, value: str | None) -> str:
    """An MLflow search filter ``tags."TAG" = 'VALUE'`` (empty: no filter).

    MLflow's filter strings have no escape for a quote inside a quoted value: the value is quoted
    with the character it does not hold, and one holding both is left for the caller to filter.
    """
    if value is None:
        return ""
    quote = next((q for q in ("'", '"') if q not in value), None)
    return "" if quote is None else f'tags."{tag}" = {quote}{value}{quote}'


@_bounded
def run_curves(uri: str | None, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """The curves of one run: every metric logged per step (epoch or trial), in step order.

    Parameters
    ----------
    uri : str or None
        Tracking URI; None: :func:`gemrec.tracking.tracking_uri`.
    run_id : str
        A ``run_id`` from :func:`list_runs`.

    Returns
    -------
    dict
        ``{metric: [(step, value), ...]}`` for the metrics with points at steps >= 1 (``loss``,
        ``epoch_seconds``, ``valid_recall_at_20``, ``refit/loss``, ``trial/recall_at_20``); final
        figures, logged once at step 0, are in :func:`list_runs`' ``metrics``.

    Raises
    ------
    GemrecError
        When the store has no run ``run_id``.
    """
    opened = _client(uri)
    if opened is None:
        raise GemrecError(
            f"run_id {run_id!r}: no such run in {tracking_uri(uri)} (the store has no gemrec runs)"
        )
    client, _ = opened
    mlflow = require("mlflow", "reading tracked runs")
    try:
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise GemrecError(
            f"run_id {run_id!r}: no such run in {tracking_uri(uri)}; list_runs() gives the ids"
        ) from None
    curves: dict[str, list[tuple[int, float]]] = {}
    for key in sorted(run.data.metrics):
        history = client.get_metric_history(run_id, key)
        points = sorted((int(m.step), float(m.value)) for m in history)
        if any(step >= 1 for step, _ in points):
            curves[key] = points
    return curves
