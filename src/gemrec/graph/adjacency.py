"""Degree-normalised views of the user x item interaction graph.

Every function is pure: it takes the interaction matrix ``R`` (scipy sparse, shape
``(n_users, n_items)``) and returns a new matrix. Callers compute a normalisation once, at fit time,
and keep it; nothing here is renormalised per call (unlike PyG's ``LGConv``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from gemrec.errors import ParameterError

__all__ = [
    "bipartite_adjacency",
    "bipartite_edge_index",
    "degree_power",
    "degree_power64",
    "degrees",
    "item_gram",
    "normalized_interactions",
    "to_torch_sparse",
]


def _check_matrix(R: sp.spmatrix | sp.sparray, name: str = "R") -> sp.csr_matrix:
    if not sp.issparse(R) or R.ndim != 2:
        raise ParameterError.invalid(name, "a 2-d scipy sparse matrix (n_users, n_items)", type(R))
    m = sp.csr_matrix(R, dtype=np.float32)
    if m.nnz and (not np.all(np.isfinite(m.data)) or m.data.min() < 0):
        raise ParameterError(f"parameter '{name}' must hold finite, non-negative weights")
    m.sum_duplicates()
    m.sort_indices()
    return m


def degrees(R: sp.spmatrix | sp.sparray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted user and item degrees.

    Returns
    -------
    user_degree : ndarray of float32, shape (n_users,)
        Row sums of ``R``.
    item_degree : ndarray of float32, shape (n_items,)
        Column sums of ``R``.
    """
    du, di = _degrees64(_check_matrix(R))
    return du.astype(np.float32), di.astype(np.float32)


def _degrees64(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Row and column sums accumulated in float64."""
    return (
        np.asarray(m.sum(axis=1, dtype=np.float64)).ravel(),
        np.asarray(m.sum(axis=0, dtype=np.float64)).ravel(),
    )


def degree_power64(degree: np.ndarray, exponent: float) -> np.ndarray:
    """``degree ** exponent`` in float64, isolated nodes (degree 0) mapped to 0."""
    d = np.asarray(degree, dtype=np.float64)
    out = np.zeros_like(d)
    pos = d > 0
    out[pos] = d[pos] ** float(exponent)
    return out


def degree_power(degree: np.ndarray, exponent: float) -> np.ndarray:
    """``degree ** exponent`` with isolated nodes (degree 0) mapped to 0, float32.

    Parameters
    ----------
    degree : ndarray, shape (n,)
    exponent : float
        Usually negative (``-0.5`` for the symmetric normalisation).
    """
    return degree_power64(degree, exponent).astype(np.float32)


def normalized_interactions(
    R: sp.spmatrix | sp.sparray,
    *,
    user_exponent: float = 0.5,
    item_exponent: float = 0.5,
) -> sp.csr_matrix:
    """The degree-normalised interaction matrix ``R~ = D_u^-a R D_i^-b``.

    Parameters
    ----------
    R : sparse matrix, shape (n_users, n_items)
        Non-negative interaction weights.
    user_exponent, item_exponent : float
        ``a`` and ``b``; the defaults (1/2, 1/2) give the symmetric normalisation used by LightGCN
        and GF-CF.

    Returns
    -------
    csr_matrix of float32, shape (n_users, n_items)
        Same sparsity as ``R``; rows/columns of isolated users/items stay zero. Degrees, powers and
        products are computed in float64 and rounded once.

    Notes
    -----
    With ``a = b = 1/2`` the singular values of ``R~`` lie in [0, 1] and the largest is 1 (for a
    non-empty ``R``): ``R~`` is the off-diagonal block of the normalised bipartite adjacency
    (see :func:`bipartite_adjacency`), whose eigenvalues are ``+-`` those singular values.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> R = sp.csr_matrix([[1.0, 1.0], [0.0, 1.0]])
    >>> normalized_interactions(R).toarray().round(3)
    array([[0.707, 0.5  ],
           [0.   , 0.707]], dtype=float32)
    """
    m = _check_matrix(R)
    du, di = _degrees64(m)
    left = degree_power64(du, -user_exponent)
    right = degree_power64(di, -item_exponent)
    out = m.copy()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    out.data = (left[rows] * m.data.astype(np.float64) * right[m.indices]).astype(np.float32)
    return out


def item_gram(R_norm: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """The item-item matrix ``P~ = R~^T R~`` (symmetric, float32).

    Only use it where ``nnz`` is affordable: it has one entry per co-occurring item pair.
    """
    m = sp.csr_matrix(R_norm, dtype=np.float32)
    gram = (m.T.tocsr() @ m).tocsr().astype(np.float32)
    gram.sort_indices()
    return gram


def bipartite_adjacency(
    R: sp.spmatrix | sp.sparray,
    *,
    normalization: Literal["symmetric", "none"] = "symmetric",
    self_loops: bool = False,
) -> sp.csr_matrix:
    """The adjacency of the user-item bipartite graph, users first.

    Parameters
    ----------
    R : sparse matrix, shape (n_users, n_items)
    normalization : {"symmetric", "none"}
        ``"symmetric"`` returns ``D^-1/2 A D^-1/2`` (LightGCN); ``"none"`` the raw ``A``.
    self_loops : bool
        Add the identity to ``A`` before normalising.

    Returns
    -------
    csr_matrix of float32, shape (n_users + n_items, n_users + n_items)
        Canonical CSR with int32 indices; isolated nodes keep zero rows. The normalisation is
        computed in float64 and rounded once.

    Notes
    -----
    ``A = [[0, R], [R^T, 0]]`` and ``D = diag(A 1)``. Without self loops the normalised matrix is
    ``[[0, R~], [R~^T, 0]]`` with ``R~ = D_u^-1/2 R D_i^-1/2``; it is symmetric and its spectral
    radius is at most 1 (it is similar to the random-walk matrix ``D^-1 A``, a stochastic matrix
    on non-isolated nodes).
    """
    if normalization not in ("symmetric", "none"):
        raise ParameterError.invalid("normalization", "'symmetric' or 'none'", normalization)
    m = _check_matrix(R)
    n_users, n_items = m.shape
    adj = sp.bmat([[None, m], [m.T, None]], format="csr", dtype=np.float32)
    adj.resize(n_users + n_items, n_users + n_items)
    if self_loops:
        adj = (adj + sp.identity(n_users + n_items, dtype=np.float32, format="csr")).tocsr()
    if normalization == "symmetric":
        d = degree_power64(np.asarray(adj.sum(axis=1, dtype=np.float64)).ravel(), -0.5)
        rows = np.repeat(np.arange(adj.shape[0]), np.diff(adj.indptr))
        adj.data = (d[rows] * adj.data.astype(np.float64) * d[adj.indices]).astype(np.float32)
    adj.sum_duplicates()
    adj.sort_indices()
    adj.indices = adj.indices.astype(np.int32)
    adj.indptr = adj.indptr.astype(np.int32 if adj.nnz < 2**31 else np.int64)
    return adj


def bipartite_edge_index(
    R: sp.spmatrix | sp.sparray, *, normalization: Literal["symmetric", "none"] = "symmetric"
) -> tuple[np.ndarray, np.ndarray]:
    """Edges of :func:`bipartite_adjacency` in PyG form (both directions, items offset by n_users).

    Returns
    -------
    edge_index : ndarray of int64, shape (2, 2 * nnz)
        Source row, target row.
    edge_weight : ndarray of float32, shape (2 * nnz,)
    """
    adj = bipartite_adjacency(R, normalization=normalization).tocoo()
    return np.vstack([adj.row, adj.col]).astype(np.int64), adj.data.astype(np.float32)


def to_torch_sparse(m: sp.spmatrix | sp.sparray, *, layout: Literal["csr", "coo"] = "csr") -> Any:
    """A scipy matrix as a float32 ``torch`` sparse tensor (CSR by default, int64 indices).

    Returns ``torch.Tensor``; typed ``Any`` so importing this module does not import torch.
    """
    import warnings

    import torch

    if layout not in ("csr", "coo"):
        raise ParameterError.invalid("layout", "'csr' or 'coo'", layout)
    if layout == "coo":
        c = sp.coo_matrix(m, dtype=np.float32)
        idx = torch.from_numpy(np.vstack([c.row, c.col]).astype(np.int64))
        return torch.sparse_coo_tensor(
            idx, torch.from_numpy(c.data), size=c.shape, check_invariants=False
        ).coalesce()
    c = sp.csr_matrix(m, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(c.indptr.astype(np.int64)),
            torch.from_numpy(c.indices.astype(np.int64)),
            torch.from_numpy(c.data),
            size=c.shape,
            check_invariants=False,
        )
