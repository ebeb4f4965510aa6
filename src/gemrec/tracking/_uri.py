"""Where runs are recorded: one rule for the commands, the demo and the console."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["TRACKING_OFF_ENV", "TRACKING_URI_ENV", "tracking_uri"]

#: environment variable naming the tracking store (an MLflow tracking URI)
TRACKING_URI_ENV = "GEMREC_TRACKING_URI"
#: environment variable that, set to 1 (true, yes, on), turns recording off like ``--no-track``
TRACKING_OFF_ENV = "GEMREC_NO_TRACK"


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
