"""Sparse x sparse products accumulated into a dense output block.

``accumulate_spmm(X, P, out)`` computes ``out += X @ P`` for CSR ``X`` (a block of user rows) and
CSR ``P`` (an item operator) without materialising a sparse result: each row of ``out`` is a dense
accumulator, so the cost is ``sum over stored x_ri of nnz(P[i])`` multiply-adds and nothing else.
A compiled (numba) kernel parallel over rows is used when numba is installed (a serial one for a
single row, as a service scores one request); otherwise scipy's sparse product (single-threaded,
several times slower) gives the same numbers.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["accumulate_spmm", "has_compiled_kernels", "set_kernel_threads"]

_KERNEL: Any = None
_TRIED = False
# numba's default "workqueue" threading layer must not be entered from two threads at once (a web
# server scoring requests in a thread pool would otherwise abort); the kernel is parallel inside.
_LOCK = threading.Lock()


def _load_kernel() -> Any:
    global _KERNEL, _TRIED
    if _TRIED:
        return _KERNEL
    _TRIED = True
    if os.environ.get("GEMREC_DISABLE_NUMBA"):
        return None
    try:
        from numba import njit, prange
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return None

    @njit(parallel=True, fastmath=False, cache=True, nogil=True)
    def _kernel(x_indptr, x_indices, x_data, p_indptr, p_indices, p_data, out):  # type: ignore[no-untyped-def]
        for r in prange(out.shape[0]):
            row = out[r]
            for jj in range(x_indptr[r], x_indptr[r + 1]):
                i = x_indices[jj]
                w = x_data[jj]
                for kk in range(p_indptr[i], p_indptr[i + 1]):
                    row[p_indices[kk]] += w * p_data[kk]

    @njit(parallel=False, fastmath=False, cache=True, nogil=True)
    def _row_kernel(x_indptr, x_indices, x_data, p_indptr, p_indices, p_data, out):  # type: ignore[no-untyped-def]
        row = out[0]
        for jj in range(x_indptr[0], x_indptr[1]):
            i = x_indices[jj]
            w = x_data[jj]
            for kk in range(p_indptr[i], p_indptr[i + 1]):
                row[p_indices[kk]] += w * p_data[kk]

    _KERNEL = (_kernel, _row_kernel)
    return _KERNEL


def has_compiled_kernels() -> bool:
    """Whether the numba kernel is available (else the scipy fallback runs)."""
    return _load_kernel() is not None


def set_kernel_threads(n: int | None) -> None:
    """Threads of the compiled kernel (None: all cores numba sees)."""
    if _load_kernel() is None:
        return
    import numba

    with _LOCK:
        numba.set_num_threads(int(n) if n else int(numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


def accumulate_spmm(
    X: sp.csr_matrix, P: sp.csr_matrix, out: np.ndarray, *, compiled: bool = True
) -> np.ndarray:
    """``out += X @ P`` with a dense float32 accumulator.

    Parameters
    ----------
    X : csr_matrix, shape (n, m)
        Left operand (e.g. a block of user rows).
    P : csr_matrix, shape (m, n_cols)
        Right operand (e.g. an item-item operator).
    out : ndarray of float32, shape (n, n_cols), C-contiguous
        Updated in place and returned.
    compiled : bool
        Use the numba kernel when available (``False`` forces the scipy path; tests compare both).

    Returns
    -------
    out
    """
    if X.shape[1] != P.shape[0] or out.shape != (X.shape[0], P.shape[1]):
        raise ValueError(f"shapes do not chain: X {X.shape}, P {P.shape}, out {out.shape}")
    if not out.flags.c_contiguous or out.dtype != np.float32:
        raise ValueError("out must be a C-contiguous float32 array")
    kernel = _load_kernel() if compiled else None
    if kernel is None:
        prod = sp.csr_matrix(X, dtype=np.float32) @ sp.csr_matrix(P, dtype=np.float32)
        out += prod.toarray()
        return out
    x = sp.csr_matrix(X, dtype=np.float32)
    p = (
        P
        if isinstance(P, sp.csr_matrix) and P.dtype == np.float32
        else sp.csr_matrix(P, dtype=np.float32)
    )
    parallel, one_row = kernel
    if out.shape[0] == 1:
        # one row (a served request): the serial kernel, free of the thread pool and its lock
        one_row(x.indptr, x.indices, x.data, p.indptr, p.indices, p.data, out)
        return out
    with _LOCK:
        parallel(x.indptr, x.indices, x.data, p.indptr, p.indices, p.data, out)
    return out
