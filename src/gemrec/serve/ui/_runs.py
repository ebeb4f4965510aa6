"""The console's view of recorded runs, read through :mod:`gemrec.tracking` (its one reader).

The store is :func:`gemrec.tracking.tracking_uri`'s. Nothing here writes: an SQLite store that does
not exist yet is reported as empty rather than created.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from gemrec.tracking import list_runs, run_curves

__all__ = ["RunRow", "RunsView", "read_runs", "run_detail"]


@dataclass(frozen=True)
class RunRow:
    """One run: its id, name, command, model, status, start time (epoch s), params and final
    metrics."""

    run_id: str
    name: str
    command: str
    model: str
    status: str
    start_time: float | None
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


def _rows(uri: str, limit: int) -> list[RunRow]:
    return [
        RunRow(
            run_id=r["run_id"],
            name=r["name"] or r["run_id"][:8],
            command=r["command"] or "",
            model=r["model"] or "",
            status=r["status"],
            start_time=(
                datetime.fromisoformat(r["start_time"]).timestamp() if r["start_time"] else None
            ),
            params=dict(r["params"]),
            metrics={k: float(v) for k, v in r["metrics"].items()},
        )
        for r in list_runs(uri, limit=limit)
    ]


def read_runs(uri: str, order_by: str | None = None, max_results: int = 200) -> RunsView:
    """The recorded runs in the store at ``uri``, newest first or by a metric.

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
    view.runs = _rows(uri, max_results)
    view.metric_names = sorted({m for r in view.runs for m in r.metrics})
    if order_by:
        view.runs.sort(key=lambda r: (order_by not in r.metrics, -r.metrics.get(order_by, 0.0)))
    if not view.runs:
        view.message = f"the tracking store at {uri} has no gemrec runs yet"
    return view


def run_detail(
    uri: str, run_id: str
) -> tuple[dict[str, list[tuple[int, float]]], dict[str, float]]:
    """Run ``run_id``'s curves (metrics logged per epoch or trial) and its final figures."""
    curves = run_curves(uri, run_id)
    finals = next((r.metrics for r in _rows(uri, 1000) if r.run_id == run_id), {})
    return curves, {**finals, **{k: pts[-1][1] for k, pts in curves.items() if pts}}
