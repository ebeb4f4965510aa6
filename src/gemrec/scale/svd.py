"""The randomized truncated SVD of a row-partitioned sparse matrix, as Dask tasks.

The matrix ``A`` (shape ``(m, n)``) lives on the workers as row blocks ``A_b``; so do the tall
factors (``A Omega``, the orthonormal basis ``Q``). What reaches the client is ``n x q``
(``q = k + n_oversamples``): ``A^T Q`` summed over blocks in a tree on the workers, and the small
``q x q`` Gram matrices of the orthonormalisations.

The iteration is :func:`gemrec.graph.spectral.truncated_svd`'s (Halko, Martinsson & Tropp 2011,
Alg. 4.4 with Cholesky QR) step for step, from the same Gaussian probe (:func:`random_probe`), so
the two agree to floating-point summation order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve_triangular

from gemrec._optional import is_available
from gemrec.errors import ParameterError

__all__ = ["block_randomized_svd", "random_probe", "tree_sum"]


def block_randomized_svd(
    client: Any,
    blocks: Sequence[Any],
    shape: tuple[int, int],
    k: int,
    *,
    n_oversamples: int = 32,
    n_iter: int = 4,
    seed: int = 0,
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """The ``k`` largest singular triplets of the matrix stacked from ``blocks``.

    Parameters
    ----------
    client : distributed.Client
    blocks : sequence of Future
        Row blocks (scipy CSR, float32) of ``A``, in order, held by the workers.
    shape : (int, int)
        ``(m, n)``, the shape of ``A``.
    k : int
    n_oversamples, n_iter, seed
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
    if not isinstance(k, int | np.integer) or not 1 <= k <= lo:
        raise ParameterError.invalid("k", f"an integer in [1, {lo}]", k)
    q = min(int(k) + int(n_oversamples), lo)
    omega = random_probe(n, q, int(seed))
    basis = _orthonormalize_rows(client, _times(client, blocks, omega))
    for _ in range(int(n_iter)):
        z = _orthonormalize(_transposed_times(client, blocks, basis))
        basis = _orthonormalize_rows(client, _times(client, blocks, z))
    basis = _orthonormalize_rows(client, basis)  # second pass (CholeskyQR2)
    bt = _transposed_times(client, blocks, basis)  # (n, q) = (Q^T A)^T
    evals, evecs = np.linalg.eigh((bt.T @ bt).astype(np.float64))
    top = np.argsort(-evals, kind="stable")[: int(k)]
    sing = np.sqrt(np.maximum(evals[top], 0.0))
    w = evecs[:, top]
    v = (bt.astype(np.float64) @ w) / np.maximum(sing, 1e-12)
    w_future = client.scatter(w, broadcast=True)
    u = [client.submit(_left_vectors, b, w_future) for b in basis]
    return u, sing.astype(np.float32), np.ascontiguousarray(v, dtype=np.float32)


def random_probe(n: int, q: int, seed: int) -> np.ndarray:
    """The Gaussian probe ``Omega`` (shape ``(n, q)``, float32) the in-core SVD starts from.

    :func:`gemrec.graph.spectral.truncated_svd` draws it from torch's generator when torch is
    installed and from NumPy's otherwise; drawing the same one here makes the two computations
    the same iteration, so they agree to floating-point summation order.
    """
    if is_available("torch"):
        import torch

        gen = torch.Generator().manual_seed(int(seed))
        probe: np.ndarray = torch.randn(n, q, generator=gen, dtype=torch.float32).numpy()
        return probe
    return np.random.default_rng(int(seed)).standard_normal((n, q), dtype=np.float32)


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


def _orthonormalize_rows(client: Any, rows: Sequence[Any]) -> list[Any]:
    """Cholesky QR of a tall matrix held as row blocks: ``Q_b = Y_b L^{-T}``, ``L L^T = Y^T Y``."""
    gram: np.ndarray = client.gather(tree_sum(client, [client.submit(_gram, y) for y in rows]))
    chol = _cholesky(gram)
    c = client.scatter(chol, broadcast=True)
    return [client.submit(_solve, y, c) for y in rows]


def _orthonormalize(y: np.ndarray) -> np.ndarray:
    """Cholesky QR of a matrix held on the client."""
    return _solve(np.asarray(y, dtype=np.float32), _cholesky(_gram(y)))


def _cholesky(gram: np.ndarray) -> np.ndarray:
    shift = 1e-7 * float(gram.diagonal().mean()) + 1e-30
    chol: np.ndarray = np.linalg.cholesky(gram + shift * np.eye(len(gram)))
    return chol.astype(np.float32)


def _gram(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    out: np.ndarray = (y.T @ y).astype(np.float64)
    return out


def _solve(y: np.ndarray, chol: np.ndarray) -> np.ndarray:
    q: np.ndarray = solve_triangular(chol, np.asarray(y, dtype=np.float32).T, lower=True).T
    return np.ascontiguousarray(q)


def _matmul(block: sp.csr_matrix, right: np.ndarray) -> np.ndarray:
    return np.asarray(block @ right, dtype=np.float32)


def _t_matmul(block: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    return np.asarray(block.T @ rows, dtype=np.float32)


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = a + b
    return out


def _left_vectors(basis: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.asarray(basis.astype(np.float64) @ w, dtype=np.float32)
