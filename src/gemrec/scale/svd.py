"""The randomized truncated SVD of a row-partitioned sparse matrix, as Dask tasks.

The matrix ``A`` (shape ``(m, n)``) lives on the workers as row blocks ``A_b``; so do the tall
factors (``A Omega``, the orthonormal basis ``Q``). What reaches the client is ``n x q``
(``q = k + n_oversamples``): ``A^T Q`` summed over blocks in a tree on the workers, and the small
``q x q`` Gram matrices of the orthonormalisations.

The iteration is :func:`gemrec.graph.spectral.truncated_svd`'s (Halko, Martinsson & Tropp 2011,
Alg. 4.4 with Cholesky QR) step for step, from the same Gaussian probe, with the same
orthonormalisation shift, rank cut-off and sign convention, so the two agree to floating-point
summation order (sums over blocks). The tests compare them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from gemrec.errors import ParameterError

__all__ = ["block_randomized_svd", "tree_sum"]


def block_randomized_svd(
    client: Any,
    blocks: Sequence[Any],
    shape: tuple[int, int],
    k: int,
    *,
    n_oversamples: int = 32,
    n_iter: int = 4,
    seed: int = 0,
    dtype: type[np.floating[Any]] = np.float64,
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """The ``k`` largest singular triplets of the matrix stacked from ``blocks``.

    Parameters
    ----------
    client : distributed.Client
    blocks : sequence of Future
        Row blocks (scipy CSR of ``dtype``) of ``A``, in order, held by the workers.
    shape : (int, int)
        ``(m, n)``, the shape of ``A``.
    k : int
    n_oversamples, n_iter, seed, dtype
        As :func:`gemrec.graph.spectral.truncated_svd`.

    Returns
    -------
    U : list of Future
        Row blocks of the left singular vectors (ndarray of float32, ``(m_b, k)``), on the
        workers.
    s : ndarray of float32, shape (k,)
        Singular values, descending.
    V : ndarray of float32, shape (n, k)
    """
    m, n = int(shape[0]), int(shape[1])
    lo = min(m, n)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= lo:
        raise ParameterError.invalid("k", f"an integer in [1, {lo}]", k)
    if dtype not in (np.float64, np.float32):
        raise ParameterError.invalid("dtype", "numpy.float64 or numpy.float32", dtype)
    k = int(k)
    q = min(k + int(n_oversamples), lo)
    omega = np.random.default_rng(int(seed)).standard_normal((n, q)).astype(dtype, copy=False)
    basis = _orthonormalize_rows(client, _times(client, blocks, omega), dtype)
    for _ in range(int(n_iter)):
        z = _orthonormalize(_transposed_times(client, blocks, basis))
        basis = _orthonormalize_rows(client, _times(client, blocks, z), dtype)
    basis = _orthonormalize_rows(client, basis, dtype)  # second pass (CholeskyQR2)
    bt = _transposed_times(client, blocks, basis)  # (n, q) = (Q^T A)^T
    evals, evecs = np.linalg.eigh(_gram(bt))
    top = np.argsort(-evals, kind="stable")[:k]
    sing = np.sqrt(np.maximum(evals[top], 0.0))
    # below ~1e-6 s_1 the Gram matrix's rounding dominates: reported as 0, as in core
    kept = sing > 1e-6 * max(float(sing[0]), np.finfo(np.float64).tiny)
    sing = np.where(kept, sing, 0.0)
    w = evecs[:, top].astype(dtype, copy=False)
    v = (bt @ w) / np.where(kept, sing, 1.0).astype(dtype)
    v[:, ~kept] = 0.0
    w_future = client.scatter(w, broadcast=True)
    u = [client.submit(_matmul_dense, b, w_future) for b in basis]
    # each column of U gets its largest-magnitude entry positive (the in-core convention)
    signs = _signs(client.gather([client.submit(_column_peaks, b) for b in u]), k)
    sign_future = client.scatter(signs, broadcast=True)
    u = [client.submit(_scaled, b, sign_future) for b in u]
    return (
        u,
        np.asarray(sing, dtype=np.float32),
        np.ascontiguousarray(v * signs, dtype=np.float32),
    )


def tree_sum(client: Any, futures: Sequence[Any]) -> Any:
    """The sum of ``futures`` (arrays), added pairwise on the workers; one future."""
    level = list(futures)
    while len(level) > 1:
        nxt = [client.submit(_add, level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _times(client: Any, blocks: Sequence[Any], right: np.ndarray) -> list[Any]:
    """Row blocks of ``A @ right`` (``right`` broadcast to the workers)."""
    r = client.scatter(right, broadcast=True)
    return [client.submit(_matmul, b, r) for b in blocks]


def _transposed_times(client: Any, blocks: Sequence[Any], rows: Sequence[Any]) -> np.ndarray:
    """``A^T Y`` for ``Y`` given by row blocks: block products summed on the workers."""
    parts = [client.submit(_t_matmul, b, y) for b, y in zip(blocks, rows, strict=True)]
    out: np.ndarray = client.gather(tree_sum(client, parts))
    return out


def _orthonormalize_rows(client: Any, rows: Sequence[Any], dtype: Any) -> list[Any]:
    """Cholesky QR of a tall matrix held as row blocks: ``Q_b = Y_b L^{-T}``, ``L L^T = Y^T Y``."""
    gram: np.ndarray = client.gather(tree_sum(client, [client.submit(_gram, y) for y in rows]))
    c = client.scatter(_cholesky(gram, dtype), broadcast=True)
    return [client.submit(_solve, y, c) for y in rows]


def _orthonormalize(y: np.ndarray) -> np.ndarray:
    """Cholesky QR of a matrix held on the client."""
    return _solve(y, _cholesky(_gram(y), y.dtype))


def _cholesky(gram: np.ndarray, dtype: Any) -> np.ndarray:
    """``L`` with ``L L^T = Y^T Y + eps I``, shifted as ``graph.spectral`` shifts it."""
    gram = np.array(gram, dtype=np.float64)
    rel = 1e-7 if np.dtype(dtype) == np.float32 else 1e-13
    gram[np.diag_indices_from(gram)] += rel * float(np.trace(gram)) / max(len(gram), 1) + 1e-300
    chol: np.ndarray = sla.cholesky(gram, lower=True, check_finite=False).astype(dtype)
    return chol


def _gram(y: np.ndarray) -> np.ndarray:
    out: np.ndarray = (y.T @ y).astype(np.float64)
    return out


def _solve(y: np.ndarray, chol: np.ndarray) -> np.ndarray:
    q: np.ndarray = sla.solve_triangular(chol, y.T, lower=True, check_finite=False).T
    return np.ascontiguousarray(q)


def _matmul(block: sp.csr_matrix, right: np.ndarray) -> np.ndarray:
    return np.asarray(block @ right)


def _t_matmul(block: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    return np.asarray(block.T @ rows)


def _matmul_dense(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    out: np.ndarray = left @ right
    return out


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = a + b
    return out


def _column_peaks(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the largest magnitude and the sign of the entry holding it (first wins)."""
    if not len(u):
        return np.full(u.shape[1], -1.0), np.ones(u.shape[1])
    at = np.abs(u).argmax(axis=0)
    vals = u[at, np.arange(u.shape[1])]
    return np.abs(vals).astype(np.float64), np.sign(vals).astype(np.float64)


def _signs(peaks: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> np.ndarray:
    """The sign of each column's largest-magnitude entry over all blocks (earliest block wins)."""
    best = np.full(k, -np.inf)
    signs = np.ones(k)
    for mags, sgn in peaks:
        better = mags > best
        best[better] = mags[better]
        signs[better] = sgn[better]
    signs[signs == 0] = 1.0
    return signs


def _scaled(u: np.ndarray, signs: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(u * signs, dtype=np.float32)
