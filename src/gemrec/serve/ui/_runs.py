"""The console's view of recorded runs, read through :mod:`gemrec.tracking` (its one reader).

The store is :func:`gemrec.tracking.tracking_uri`'s. Nothing here writes: an SQLite store that does
not exist yet is reported as empty rather than created.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from gemrec.tracking import list_runs, run_curves

__all__ = [
    "Evaluation",
    "ModelRuns",
    "RunRow",
    "RunsView",
    "model_runs",
    "read_runs",
    "run_detail",
]

#: ``evaluate``'s figures: ``<split>/<metric>_at_<k>`` (``test/recall_at_20``)
_AT_K = re.compile(r"^(?P<split>[^/]+)/(?P<metric>.+)_at_(?P<k>\d+)$")
#: the order of an evaluation's rows (other metrics follow, by name)
_METRIC_ORDER = ("recall", "ndcg", "precision", "hitrate", "coverage")
#: the figures of a ``train`` or ``retrain`` shown beside the model
TRAINING_FIGURES = ("fit_seconds", "best_epoch", "wall_seconds", "peak_rss_mb")


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


@dataclass(frozen=True)
class Evaluation:
    """One ``gemrec evaluate`` of a model: its figures as ``table[metric][k]``."""

    run_id: str
    name: str
    start_time: float | None
    status: str
    split: str
    ks: list[int]
    table: dict[str, dict[int, float]]
    n_users: int | None


@dataclass
class ModelRuns:
    """What the tracking store holds about one model directory: its evaluations and the
    training that wrote it, newest first, or why there are none (``message``)."""

    uri: str
    model_dir: str
    evaluations: list[Evaluation] = field(default_factory=list)
    trainings: list[RunRow] = field(default_factory=list)
    message: str | None = None


def _missing_sqlite(uri: str) -> Path | None:
    """The file of an ``sqlite:///`` URI when it does not exist (MLflow would create it)."""
    if not uri.startswith("sqlite:"):
        return None
    path = Path(uri[len("sqlite:///") :])  # sqlite:////abs or sqlite:///relative
    return None if path.is_file() else path


def _unreadable(uri: str) -> str | None:
    """Why the store at ``uri`` cannot be read (mlflow missing, no store yet), or None."""
    if importlib.util.find_spec("mlflow") is None:
        return "mlflow is not installed: pip install 'gemrec[track]' to browse runs"
    missing = _missing_sqlite(uri)
    if missing is not None:
        return f"no tracking store yet at {missing}: train a model to record a run"
    return None


def _failed(uri: str, exc: Exception) -> str:
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    return f"cannot read the tracking store {uri}: {reason[:300]}"


def _rows(uri: str, limit: int, model_dir: Path | None = None) -> list[RunRow]:
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
        for r in list_runs(uri, limit=limit, model_dir=model_dir)
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
    view = RunsView(uri, message=_unreadable(uri))
    if view.message is not None:
        return view
    try:
        view.runs = _rows(uri, max_results)
    except Exception as exc:  # whatever the store raises, the page says so and stays up
        view.message = _failed(uri, exc)
        return view
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


def _evaluation(row: RunRow) -> Evaluation:
    # the split evaluated: ``evaluate`` records it as a parameter, the demo evaluates test
    split = row.params.get("split", "test")
    table: dict[str, dict[int, float]] = {}
    ks = set()
    for key, value in row.metrics.items():
        m = _AT_K.match(key)
        if m is None or m["split"] != split:
            continue
        ks.add(int(m["k"]))
        table.setdefault(m["metric"], {})[int(m["k"])] = value
    order = {name: j for j, name in enumerate(_METRIC_ORDER)}
    table = dict(sorted(table.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
    n_users = row.metrics.get(f"{split}/n_users")
    return Evaluation(
        run_id=row.run_id,
        name=row.name,
        start_time=row.start_time,
        status=row.status,
        split=split,
        ks=sorted(ks),
        table=table,
        n_users=None if n_users is None else int(n_users),
    )


def model_runs(uri: str, model_dir: Path, max_results: int = 200) -> ModelRuns:
    """The recorded runs of ``model_dir``: its evaluations and trainings, newest first.

    Parameters
    ----------
    uri : str
        An MLflow tracking URI.
    model_dir : Path
        A model directory; runs match on their tag ``gemrec.model_dir`` (a resolved path).
    max_results : int
        Most runs read.
    """
    view = ModelRuns(uri, str(model_dir.resolve()), message=_unreadable(uri))
    if view.message is not None:
        return view
    try:
        rows = _rows(uri, max_results, model_dir)
    except Exception as exc:  # whatever the store raises, the Overview says so and stays up
        view.message = _failed(uri, exc)
        return view
    # ``gemrec demo`` trains and evaluates each model in one run: it is both
    evaluations = (_evaluation(r) for r in rows if r.command in ("evaluate", "demo"))
    view.evaluations = [e for e in evaluations if e.table]
    view.trainings = [r for r in rows if r.command in ("train", "retrain", "tune", "demo")]
    return view
