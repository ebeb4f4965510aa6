"""Experiment tracking on MLflow: where runs are recorded, how they are recorded, reading them.

Every ``gemrec train``, ``tune``, ``evaluate`` and ``retrain`` records a run in an MLflow tracking
store, and the service's console reads runs from the same store. The store is chosen once
(:func:`tracking_uri`): ``--tracking-uri`` on the command line, else ``$GEMREC_TRACKING_URI``, else
an SQLite file ``mlflow.db`` in the working directory (``mlflow ui --backend-store-uri
sqlite:///mlflow.db`` opens it). ``--no-track`` or ``GEMREC_NO_TRACK=1`` records nothing.

mlflow comes with the ``track`` extra (``pip install 'gemrec[track]'``) and is imported only when a
run is recorded or read.
"""

from __future__ import annotations

from gemrec.tracking._read import list_runs, run_curves
from gemrec.tracking._record import (
    EXPERIMENT,
    Run,
    TrackingWarning,
    active_run,
    curve_prefix,
    metric_key,
    record_run,
    report_epoch,
    untracked,
)
from gemrec.tracking._uri import TRACKING_OFF_ENV, TRACKING_URI_ENV, tracking_uri

__all__ = [
    "EXPERIMENT",
    "TRACKING_OFF_ENV",
    "TRACKING_URI_ENV",
    "Run",
    "TrackingWarning",
    "active_run",
    "curve_prefix",
    "list_runs",
    "metric_key",
    "record_run",
    "report_epoch",
    "run_curves",
    "tracking_uri",
    "untracked",
]
