"""The spectral graph filter fitted on a Dask cluster, from row blocks of the dataset.

The workers read blocks of users from ``edges.parquet`` (train + valid, as the one fit path
trains every model), normalise them with the item degrees (summed over blocks on the workers) and
run the randomized SVD of :mod:`gemrec.scale.svd`; the client receives ``n_items x (k + p)``
matrices, then assembles the model :class:`~gemrec.models.graphfilter.GraphFilter` would have
fitted, with its item-item part truncated to each item's ``item_neighbours`` largest entries
(``item_item="truncated"``, the default here) or in factored form (``"factored"``); no
``n_items x n_items`` matrix anywhere. The result is saved, loaded, evaluated and served like
any model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from gemrec.data.store import TRAIN_SPLITS, Dataset
from gemrec.errors import ParameterError
from gemrec.graph.adjacency import degree_power64
from gemrec.models.fitting import FitResult
from gemrec.models.graphfilter import GraphFilter
from gemrec.scale.blocks import block_bounds, read_row_block
from gemrec.scale.svd import block_randomized_svd, tree_sum

__all__ = ["fit_graphfilter_dask"]


def fit_graphfilter_dask(
    dataset: str | Path,
    *,
    client: Any,
    users_per_block: int = 65_536,
    **params: Any,
) -> FitResult:
    """Fit :class:`GraphFilter` on ``dataset``'s train + valid edges with ``client``'s workers.

    Parameters
    ----------
    dataset : path
        A dataset directory that every worker can read at this path.
    client : distributed.Client
    users_per_block : int
        Users per row block (a worker holds whole blocks).
    **params
        GraphFilter hyperparameters; ``item_item`` must be "truncated", "factored" or "auto" (it
        becomes "truncated") and ``svd_method`` "randomized" or "auto".

    Returns
    -------
    FitResult
        The fitted model and its record (``engine: "dask"``), as ``gemrec train`` saves them.

    Notes
    -----
    The model is the in-core one (see :class:`GraphFilter`), computed from the same random probe
    in the same precision: the two differ by floating-point summation order (sums over blocks).
    """
    start = time.perf_counter()
    params = dict(params)
    strategy = params.get("item_item", "auto")
    if strategy not in ("auto", "truncated", "factored"):
        raise ParameterError.invalid(
            "item_item", "'truncated', 'factored' (or 'auto')", params["item_item"]
        )
    strategy = "truncated" if strategy == "auto" else strategy
    if params.get("recency", 0):
        raise ParameterError.invalid(
            "recency", "0 in the Dask fit (its blocks read no timestamps)", params["recency"]
        )
    if params.get("svd_method", "auto") not in ("auto", "randomized"):
        raise ParameterError.invalid("svd_method", "'randomized' (or 'auto')", params["svd_method"])
    params.update(item_item=strategy, svd_method="randomized")
    model = GraphFilter(**params)
    model._validate_params()
    ds = Dataset.open(dataset)
    n_users, n_items = ds.n_users, ds.n_items
    path = str(ds.path)
    raw = [
        client.submit(read_row_block, path, lo, hi, n_items, TRAIN_SPLITS)
        for lo, hi in block_bounds(n_users, users_per_block)
    ]
    sums = tree_sum(client, [client.submit(_column_sums, b) for b in raw])
    item_degree64 = np.asarray(client.gather(sums), dtype=np.float64)
    item_degree = item_degree64.astype(np.float32)
    item_scale = client.scatter(degree_power64(item_degree64, -0.5), broadcast=True)
    user_exponent = float(model.user_exponent)
    norm = [client.submit(_normalise, b, item_scale, user_exponent) for b in raw]

    k = model._rank(n_users, n_items)
    if model._needs_svd():
        _, s, v = block_randomized_svd(
            client,
            norm,
            (n_users, n_items),
            k,
            n_iter=int(model.svd_n_iter),
            seed=int(model.seed),
            dtype=np.float32,
        )
    else:
        s, v = np.zeros(0, np.float32), np.zeros((n_items, 0), np.float32)
    r_norm = sp.vstack(client.gather(norm), format="csr")
    s = model.unit_spectrum(r_norm, s)  # as the in-core fit
    projection, embeddings = model.low_rank_factors(s, v, item_degree)
    p = client.scatter(projection, broadcast=True)
    user_embeddings = np.vstack(client.gather([client.submit(_times, b, p) for b in raw]))
    interactions = sp.vstack(client.gather(raw), format="csr")
    model.item_item_ = strategy
    item_item = model.item_item_from_factors(r_norm, item_degree)
    del r_norm
    model._set_state(
        {
            "user_embeddings_": user_embeddings,
            "item_embeddings_": embeddings,
            "item_projection_": projection,
            "singular_values_": s,
            "item_item_": np.array(strategy),
            **item_item,
        }
    )
    model.interactions_ = interactions
    record = {
        "model": model.name,
        "trained_on": "train+valid",
        "engine": "dask",
        "fit_seconds": round(time.perf_counter() - start, 3),
    }
    return FitResult(model, record)


def _column_sums(block: sp.csr_matrix) -> np.ndarray:
    return np.bincount(block.indices, weights=block.data, minlength=block.shape[1])


def _normalise(block: sp.csr_matrix, item_scale: np.ndarray, user_exponent: float) -> sp.csr_matrix:
    """``D_U^{-b} R_b D_I^{-1/2}`` for a row block (its users' degrees are all in the block).

    In float64, rounded once, as :func:`gemrec.graph.adjacency.normalized_interactions` does.
    """
    degree = np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
    left = degree_power64(degree, -user_exponent)
    out = block.copy()
    rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
    data = left[rows] * block.data.astype(np.float64) * item_scale[block.indices]
    out.data = data.astype(np.float32)
    return out


def _times(block: sp.csr_matrix, right: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(block @ right, dtype=np.float32)
