"""Truncated spectral decompositions of sparse normalised interaction matrices."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from gemrec.errors import ParameterError

__all__ = ["truncated_svd"]


def truncated_svd(
    A: sp.spmatrix | sp.sparray,
    k: int,
    *,
    method: Literal["randomized", "arpack", "dense"] = "randomized",
    n_oversamples: int = 32,
    n_iter: int = 4,
    seed: int | np.random.Generator = 0,
    dtype: type[np.floating[Any]] = np.float64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest singular triplets of a sparse matrix, in decreasing order.

    Parameters
    ----------
    A : sparse matrix, shape (m, n)
    k : int
        Number of triplets, ``1 <= k <= min(m, n)`` (``k < min(m, n)`` for ``"arpack"``).
    method : {"randomized", "arpack", "dense"}
        ``"randomized"``: block subspace iteration in float64 NumPy/SciPy (a few sparse products
        with ``k + n_oversamples`` columns, multithreaded dense algebra).
        ``"arpack"``: :func:`scipy.sparse.linalg.svds` (float64 Lanczos; exact to tolerance,
        much slower for large ``k``). ``"dense"``: exact, from the top-``k`` eigenpairs of the
        smaller side's float64 Gram matrix (LAPACK ``eigh``, only the ``k`` wanted pairs); for
        matrices whose smaller side is at most a few thousand, where it beats a full SVD by far.
    n_oversamples, n_iter : int
        Extra probe columns and power iterations of the randomized method.
    seed : int or numpy.random.Generator
        The random probe: a seed, or a generator to draw it from (the generator advances by one
        ``standard_normal((n, k + n_oversamples))`` draw). The result is deterministic for a given
        seed.
    dtype : {numpy.float64, numpy.float32}
        Working precision of the sparse products and the tall ``(n, q)`` blocks of the randomized
        method (the small ``q x q`` Gram and eigen problems are always float64). float32 halves
        time and memory on large graphs at a relative accuracy of about 1e-6.

    Returns
    -------
    U : ndarray of float32, shape (m, k)
    s : ndarray of float32, shape (k,)
        Singular values, descending.
    V : ndarray of float32, shape (n, k)
        Right singular vectors (columns), ``A ~= U diag(s) V^T``. Signs are fixed so that the
        largest-magnitude entry of each column of ``U`` is positive.

    Notes
    -----
    Randomized subspace iteration (Halko, Martinsson & Tropp 2011, Alg. 4.4): start from
    ``Q = orth(A Omega)`` with Gaussian ``Omega`` of ``q = k + p`` columns, alternate
    ``Q <- orth(A^T Q)``, ``Q <- orth(A Q)`` ``n_iter`` times, then take the exact SVD of the small
    matrix ``B = Q^T A`` from the eigendecomposition of ``B B^T``. ``orth`` is Cholesky QR: ``Q =
    Y L^{-T}`` with ``L L^T = Y^T Y`` spans exactly the columns of ``Y`` (only orthogonality, not
    the subspace, suffers from rounding), one symmetric rank-k update and one triangular solve
    instead of Householder QR, several times faster on tall blocks; a second pass on the last
    basis (CholeskyQR2) makes it orthonormal to working precision. The error in the ``j``-th
    singular value decays like ``(s_{q+1} / s_j)^(2 n_iter + 1)``. Singular values below
    ``1e-6 s_1``, which the Gram matrix cannot resolve in float64 (a rank below ``k``), come back as
    0 with zero right vectors.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> A = sp.csr_matrix(np.diag([3.0, 2.0, 1.0]))
    >>> U, s, V = truncated_svd(A, 2, n_oversamples=1)
    >>> s.round(6).tolist()
    [3.0, 2.0]
    """
    if dtype not in (np.float64, np.float32):
        raise ParameterError.invalid("dtype", "numpy.float64 or numpy.float32", dtype)
    m = sp.csr_matrix(A, dtype=dtype)
    lo = min(m.shape)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= lo:
        raise ParameterError.invalid("k", f"an integer in [1, {lo}]", k)
    k = int(k)
    if method == "arpack":
        if k >= lo:
            raise ParameterError.invalid("k", f"an integer below {lo} for method='arpack'", k)
        from scipy.sparse.linalg import svds

        state = seed if isinstance(seed, np.random.Generator) else int(seed)
        u, s, vt = svds(m.astype(np.float64), k=k, random_state=state)
        order = np.argsort(-s)
        return _fixed_signs(u[:, order], s[order], vt[order].T)
    if method == "dense":
        return _dense_top(m, k)
    if method != "randomized":
        raise ParameterError.invalid("method", "'randomized', 'arpack' or 'dense'", method)
    for name, value in (("n_oversamples", n_oversamples), ("n_iter", n_iter)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ParameterError.invalid(name, "a non-negative integer", value)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(int(seed))
    q = min(k + int(n_oversamples), lo)
    mt = sp.csr_matrix(m.T)
    basis = _orthonormalize(m @ rng.standard_normal((m.shape[1], q)).astype(dtype, copy=False))
    for _ in range(int(n_iter)):
        basis = _orthonormalize(mt @ basis)
        basis = _orthonormalize(m @ basis)
    basis = _orthonormalize(basis)  # second pass (CholeskyQR2): orthonormal to working precision
    bt = np.asarray(mt @ basis)  # (n, q) = (Q^T A)^T
    # the small factor's SVD from its q x q Gram matrix (eigh is far cheaper than a wide SVD)
    evals, evecs = np.linalg.eigh(_gram(bt))
    top = np.argsort(-evals, kind="stable")[:k]
    sing = np.sqrt(np.maximum(evals[top], 0.0))
    w = evecs[:, top]
    # below ~1e-6 s_1 the Gram matrix's rounding (eps ||B||^2) dominates: report those as 0
    kept = sing > 1e-6 * max(float(sing[0]), np.finfo(np.float64).tiny)
    sing = np.where(kept, sing, 0.0)
    w = w.astype(dtype, copy=False)
    v = (bt @ w) / np.where(kept, sing, 1.0).astype(dtype)
    v[:, ~kept] = 0.0
    return _fixed_signs(basis @ w, sing, v)


def _dense_top(m: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-``k`` triplets from the smaller side's Gram matrix (float64 ``eigh``)."""
    dense = m.toarray().astype(np.float64)
    wide = dense.shape[0] <= dense.shape[1]
    side = dense if wide else dense.T  # (small, large)
    n = side.shape[0]
    evals, evecs = sla.eigh(side @ side.T, subset_by_index=[n - k, n - 1], check_finite=False)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    sing = np.sqrt(np.maximum(evals, 0.0))
    kept = sing > 1e-6 * max(float(sing[0]), np.finfo(np.float64).tiny)
    other = (side.T @ evecs) / np.where(kept, sing, 1.0)
    other[:, ~kept] = 0.0
    sing = np.where(kept, sing, 0.0)
    return _fixed_signs(evecs, sing, other) if wide else _fixed_signs(other, sing, evecs)


def _gram(y: np.ndarray) -> np.ndarray:
    """``Y^T Y`` of a tall block, as float64."""
    out: np.ndarray = (y.T @ y).astype(np.float64)
    return out


def _orthonormalize(y: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the columns of the tall matrix ``y`` (Cholesky QR, dtype kept).

    ``Q = Y L^{-T}`` with ``L L^T = Y^T Y + eps I``, factorised in float64; the small shift
    (relative to the working precision) keeps rank-deficient blocks factorable, their null
    directions come back as near-zero columns.
    """
    gram = _gram(y)
    rel = 1e-7 if y.dtype == np.float32 else 1e-13
    gram[np.diag_indices_from(gram)] += rel * float(np.trace(gram)) / max(len(gram), 1) + 1e-300
    chol = sla.cholesky(gram, lower=True, check_finite=False).astype(y.dtype)
    out: np.ndarray = sla.solve_triangular(chol, y.T, lower=True, check_finite=False).T
    return np.ascontiguousarray(out)


def _fixed_signs(
    u: np.ndarray, s: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 triplets with each ``U`` column's largest-magnitude entry made positive."""
    signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])]) if u.size else np.ones(0)
    signs[signs == 0] = 1.0
    return (
        np.ascontiguousarray(u * signs, dtype=np.float32),
        np.asarray(s, dtype=np.float32),
        np.ascontiguousarray(v * signs, dtype=np.float32),
    )
