"""Experiment tracking on MLflow: where runs are recorded.

Every ``gemrec train``, ``tune``, ``evaluate`` and ``retrain`` records a run in an MLflow tracking
store, and the service's console reads runs from the same store. The store is chosen once, here:
``--tracking-uri`` on the command line, else ``$GEMREC_TRACKING_URI``, else an SQLite file
``mlflow.db`` in the working directory (what ``mlflow ui`` opens by default when started there).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["TRACKING_URI_ENV", "tracking_uri"]

#: environment variable naming the tracking store (an MLflow tracking URI)
TRACKING_URI_ENV = "GEMREC_TRACKING_URI"


def tracking_uri(explicit: str | None = None) -> str:
    """The MLflow tracking URI to record runs in and read runs from.

    Parameters
    ----------
    explicit : str or None
        A URI given on the command line (``--tracking-uri``); wins over everything else.

    Returns
    -------
    str
        ``explicit``, else ``$GEMREC_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``.
    """
    if explicit:
        return explicit
    env = os.environ.get(TRACKING_URI_ENV, "").strip()
    if env:
        return env
    return f"sqlite:///{(Path.cwd() / 'mlflow.db').as_posix()}"
