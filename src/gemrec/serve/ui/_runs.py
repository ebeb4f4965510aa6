"""Runs of the MLflow tracking store, read with MLflow's own client (the console's one reader).

The store is :func:`gemrec.tracking.tracking_uri`'s. Nothing here writes: an SQLite store that does
not exist yet is reported as empty rather than created.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RunRow", "RunsView", "metric_history", "read_runs"]


@dataclass(frozen=True)
class RunRow:
    """One run: its ids, name, status, start time (epoch ms), params and latest metrics."""

    run_id: str
    experiment: str
    name: str
    status: str
    start_time: int
    params: dict[str, str]
    metrics: dict[str, float]


@dataclass
class RunsView:
    """What the Runs page shows: the runs, or why there are none (``message``)."""

    uri: str
    runs: list[RunRow] = field(default_factory=list)
    metric_names: list[str] = field(default_factory=list)
    message: str | None = None


def _missing_sqlite(uri: str) -> Path | None:
    """The file of an ``sqlite:///`` URI when it does not exist (MLflow would create it)."""
    if not uri.startswith("sqlite:"):
        return None
    path = Path(uri[len("sqlite:///") :])  # sqlite:////abs or sqlite:///relative
    return None if path.is_file() else path


def read_runs(uri: str, order_by: str | None = None, max_results: int = 200) -> RunsView:
    """Every experiment's runs in the store at ``uri``, newest first or by a metric.

    Parameters
    ----------
    uri : str
        An MLflow tracking URI.
    order_by : str or None
        A metric name: runs sorted by it, largest first (runs without it last).
    max_results : int
        Most runs read.
    """
    view = RunsView(uri)
    if importlib.util.find_spec("mlflow") is None:
        view.message = "mlflow is not installed: pip install 'gemrec[track]' to browse runs"
        return view
    missing = _missing_sqlite(uri)
    if missing is not None:
        view.message = f"no tracking store yet at {missing}: train a model to record a run"
        return view
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    if experiments:
        runs = client.search_runs(
            list(experiments), max_results=max_results, order_by=["attributes.start_time DESC"]
        )
        view.runs = [
            RunRow(
                run_id=r.info.run_id,
                experiment=experiments.get(r.info.experiment_id, r.info.experiment_id),
                name=r.info.run_name or r.info.run_id[:8],
                status=r.info.status,
                start_time=int(r.info.start_time or 0),
                params=dict(r.data.params),
                metrics={k: float(v) for k, v in r.data.metrics.items()},
            )
            for r in runs
        ]
    view.metric_names = sorted({m for r in view.runs for m in r.metrics})
    if order_by:
        view.runs.sort(key=lambda r: (order_by not in r.metrics, -r.metrics.get(order_by, 0.0)))
    if not view.runs:
        view.message = f"the tracking store at {uri} has no runs yet"
    return view


def metric_history(uri: str, run_id: str) -> dict[str, list[tuple[float, float]]]:
    """Every metric of run ``run_id`` as ``(step, value)`` points, in step order."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    out: dict[str, list[tuple[float, float]]] = {}
    for key in sorted(run.data.metrics):
        points: list[Any] = client.get_metric_history(run_id, key)
        out[key] = sorted((float(p.step), float(p.value)) for p in points)
    return out
