"""Recording one run: the active run of a command, and how the stages report to it.

A command opens a run with :func:`record_run`; inside it the stages report to
:func:`active_run` (``None`` when nothing is recorded): the training loop logs one point of every
curve per epoch as the epoch ends, :func:`gemrec.models.fitting.fit_on_dataset` the
hyperparameters, the dataset and the fit time, ``save_fitted`` the model directory and
evaluation the metrics at each ``k``. The active run is a :class:`contextvars.ContextVar`, so a
library call outside :func:`record_run` records nothing and pays nothing.

Tracking never fails the work it records: the first error of the store (unreachable server,
unwritable file, mlflow missing) is reported once as a :class:`TrackingWarning` and the run goes
on unrecorded.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from gemrec.tracking._uri import TRACKING_OFF_ENV, tracking_uri

__all__ = [
    "EXPERIMENT",
    "Run",
    "TrackingWarning",
    "active_run",
    "curve_prefix",
    "git_revision",
    "metric_key",
    "record_run",
    "report_epoch",
    "untracked",
]

#: the MLflow experiment every gemrec run is recorded in
EXPERIMENT = "gemrec"

#: MLflow's HTTP client retries a failed request for minutes by default; a tracking server that is
#: down must not hold a training run that long (a value set in the environment wins)
_HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}

# MLflow's limits per log_batch call
_BATCH_PARAMS = 100
_BATCH_METRICS = 1000
_MAX_PARAM_CHARS = 6000

_active: ContextVar[Run | None] = ContextVar("gemrec_tracking_run", default=None)
_prefix: ContextVar[str] = ContextVar("gemrec_tracking_prefix", default="")


class TrackingWarning(UserWarning):
    """The tracking store failed; the work goes on and this run is not (fully) recorded."""


def metric_key(name: str) -> str:
    """An MLflow metric or parameter name for a gemrec figure: ``recall@20`` -> ``recall_at_20``.

    MLflow accepts letters, digits and ``_ - . / : space``; ``@`` reads ``_at_`` and any other
    character becomes ``_``.

    Examples
    --------
    >>> metric_key("recall@20"), metric_key("valid_ndcg@10")
    ('recall_at_20', 'valid_ndcg_at_10')
    """
    return re.sub(r"[^\w./: -]", "_", name.replace("@", "_at_"))


class Run:
    """One MLflow run being recorded; every method does nothing once the store has failed.

    Parameters
    ----------
    uri : str
        The tracking URI (for the warning's message).
    client : mlflow.MlflowClient or None
        ``None``: the store could not be opened (already warned); nothing is recorded.
    run_id : str or None
    """

    def __init__(self, uri: str, client: Any, run_id: str | None) -> None:
        self.uri = uri
        self.run_id = run_id
        self._client = client
        self._warned = client is None

    @property
    def recording(self) -> bool:
        """Whether this run still records (False after the store failed)."""
        return self._client is not None

    def log_params(self, params: Mapping[str, object]) -> None:
        """Hyperparameters and options, as strings (a parameter is written once per run; values
        are cut to MLflow's 6000 characters)."""
        if not self.recording:
            return
        from mlflow.entities import Param

        items = [Param(metric_key(k), _text(v)[:_MAX_PARAM_CHARS]) for k, v in params.items()]
        self._batches("params", items)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Tags (``gemrec.model``, ``gemrec.dataset``, ...); ``None`` values are left out."""
        if not self.recording:
            return
        from mlflow.entities import RunTag

        self._batches("tags", [RunTag(k, _text(v)) for k, v in tags.items() if v is not None])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Numbers at ``step`` (an epoch or trial number for curves, 0 for final figures).

        Names pass through :func:`metric_key`; values that are not finite numbers are left out.
        """
        if not self.recording:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(metric_key(k), float(v), now, int(step))
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ]
        self._batches("metrics", items)

    def _batches(self, kind: str, items: list[Any]) -> None:
        """``log_batch`` in pieces within MLflow's limits (100 params or tags, 1000 metrics)."""
        size = _BATCH_METRICS if kind == "metrics" else _BATCH_PARAMS
        for s in range(0, len(items), size):
            self._call("log_batch", self.run_id, **{kind: items[s : s + size]})

    def finish(self, status: str) -> None:
        """Close the run as ``FINISHED``, ``FAILED`` or ``KILLED``."""
        # MLflow prints the run's link on stdout for a server store: stdout is the command's
        # output (``evaluate --json``), so the link goes to stderr
        with contextlib.redirect_stdout(sys.stderr):
            self._call("set_terminated", self.run_id, status=status)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        """``client.method(*args, **kwargs)``; the first failure warns and stops recording."""
        if self._client is None:
            return
        try:
            with _http_limits():
                getattr(self._client, method)(*args, **kwargs)
        except Exception as exc:  # whatever the store raises, the recorded work goes on
            self._client = None
            _warn_once(self, self.uri, exc)


def _warn_once(run: Run | None, uri: str, exc: BaseException) -> None:
    if run is not None:
        if run._warned:
            return
        run._warned = True
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(reason) > 300:
        reason = reason[:297] + "..."
    warnings.warn(
        f"tracking store {uri} failed ({reason}); the run goes on without being recorded "
        "(--no-track or GEMREC_NO_TRACK=1 turns tracking off)",
        TrackingWarning,
        stacklevel=3,
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else repr(value) if value is None else str(value)


def active_run() -> Run | None:
    """The run the current command records into, or ``None`` (nothing is recorded)."""
    run = _active.get()
    return run if run is not None and run.recording else None


@contextlib.contextmanager
def curve_prefix(prefix: str) -> Iterator[None]:
    """Curves reported inside the block are named ``prefix + name`` (e.g. ``refit/loss``)."""
    token = _prefix.set(_prefix.get() + prefix)
    try:
        yield
    finally:
        _prefix.reset(token)


@contextlib.contextmanager
def untracked() -> Iterator[None]:
    """Inside the block nothing reports to the run (:func:`active_run` is None), e.g. the fits of
    tuning trials, whose epochs are not the run's curves."""
    token = _active.set(None)
    try:
        yield
    finally:
        _active.reset(token)


def report_epoch(record: Mapping[str, float]) -> None:
    """Log one epoch of the training loop to the active run, as the epoch ends.

    ``record`` is one entry of :attr:`gemrec.models.training.TrainingResult.history`: ``epoch``
    gives the step, ``seconds`` is logged as ``epoch_seconds``, the rest (``loss``,
    ``valid_<metric>``) under their own names, all behind the current :func:`curve_prefix`.
    """
    run = active_run()
    if run is None:
        return
    prefix = _prefix.get()
    points = {
        prefix + ("epoch_seconds" if k == "seconds" else k): v
        for k, v in record.items()
        if k != "epoch"
    }
    run.log_metrics(points, step=int(record["epoch"]))


def git_revision() -> str | None:
    """The git commit of the gemrec source that runs (``+dirty`` with local changes), or None.

    None when gemrec is installed from a wheel rather than run from a git checkout.
    """
    src = Path(__file__).resolve().parents[1]
    try:

        def git(*cmd: str) -> str:
            done = subprocess.run(
                ["git", "-C", str(src), *cmd], capture_output=True, text=True, timeout=5
            )
            if done.returncode != 0:
                raise OSError(done.stderr.strip())
            return done.stdout.strip()

        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def peak_memory() -> dict[str, float]:
    """Peak resident memory of this process (``peak_rss_mb``) and, after CUDA training, the
    peak memory torch allocated on the GPU (``peak_cuda_mb``)."""
    scale = 1.0 if sys.platform == "darwin" else 1024.0  # ru_maxrss: bytes on macOS, KiB on Linux
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


@contextlib.contextmanager
def record_run(
    command: str,
    *,
    uri: str | None = None,
    enabled: bool = True,
    name: str | None = None,
    tags: Mapping[str, object] | None = None,
) -> Iterator[Run | None]:
    """Record the work inside the block as one MLflow run of experiment ``gemrec``.

    Parameters
    ----------
    command : str
        ``train``, ``tune``, ``evaluate``, ``retrain`` or ``demo``; the tag ``gemrec.command``.
    uri : str, optional
        Tracking URI; default :func:`gemrec.tracking.tracking_uri` (``$GEMREC_TRACKING_URI`` or
        ``mlflow.db`` in the working directory).
    enabled : bool
        False (``--no-track``), or ``$GEMREC_NO_TRACK`` set to a true value: record nothing.
    name : str, optional
        The run's name; default ``command``.
    tags : mapping, optional
        More tags (``gemrec.model``, ``gemrec.dataset``, ...).

    Yields
    ------
    Run or None
        The run (also :func:`active_run` inside the block), or None when tracking is off or the
        store could not be opened (a :class:`TrackingWarning` said so).

    Notes
    -----
    On leaving the block the run gets ``wall_seconds`` and :func:`peak_memory`, and ends
    ``FINISHED``, or ``FAILED`` when the block raised (the exception propagates unchanged).
    """
    if not enabled or _env_off():
        with untracked():
            yield None
        return
    uri = tracking_uri(uri)
    with _http_limits():
        run = _start(uri, command, name, tags or {})
    token = _active.set(run)
    start = time.perf_counter()
    status = "FAILED"
    try:
        yield run if run.recording else None
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        _active.reset(token)
        run.log_metrics({"wall_seconds": time.perf_counter() - start, **peak_memory()})
        run.finish(status)


@contextlib.contextmanager
def _http_limits() -> Iterator[None]:
    """MLflow's HTTP retry and timeout limits of :data:`_HTTP_LIMITS` for one call to the store
    (values the user set in the environment win)."""
    added = [k for k in _HTTP_LIMITS if k not in os.environ]
    os.environ.update({k: _HTTP_LIMITS[k] for k in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _env_off() -> bool:
    return os.environ.get(TRACKING_OFF_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _start(uri: str, command: str, name: str | None, tags: Mapping[str, object]) -> Run:
    from gemrec import __version__

    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        from gemrec.errors import MissingDependencyError

        missing = MissingDependencyError(
            "experiment tracking needs mlflow: pip install 'gemrec[track]'"
        )
        missing.__cause__ = exc
        _warn_once(None, uri, missing)
        return Run(uri, None, None)
    try:
        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client)
        all_tags = {
            "gemrec.command": command,
            "gemrec.version": __version__,
            "gemrec.git_revision": git_revision(),
            **tags,
        }
        created = client.create_run(
            experiment_id,
            run_name=name or command,
            tags={k: _text(v) for k, v in all_tags.items() if v is not None},
        )
    except Exception as exc:
        _warn_once(None, uri, exc)  # whatever the store raises, the recorded work goes on
        return Run(uri, None, None)
    return Run(uri, client, created.info.run_id)


def _experiment_id(client: Any) -> str:
    """The id of experiment ``gemrec``, created on first use (by whichever process is first)."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(EXPERIMENT))
    except Exception:  # another command created it in the meantime
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            raise
        return str(experiment.experiment_id)
