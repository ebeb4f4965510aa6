"""The compiled top-k kernel behind :func:`gemrec.ranking.topk` (imported only when numba is).

Each row is scanned once, in column order, into a heap of its ``k`` best entries whose root is the
worst of them; a new entry enters only when it beats the root. Columns arrive in increasing order,
so an entry that merely equals the root loses the tie (the lower column wins), and ``-inf`` and NaN
never enter. A first pass over a strided sample of the row gives a lower bound on the ``k``-th best
score, so that even a row sorted ascending costs one comparison per entry and few heap updates.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["topk_rows"]


@njit(cache=True, nogil=True)
def _worse(hv, hi, a, b):  # type: ignore[no-untyped-def]
    """Entry ``a`` ranks below entry ``b``: a lower score, or the same score and a higher column."""
    return hv[a] < hv[b] or (hv[a] == hv[b] and hi[a] > hi[b])


@njit(cache=True, nogil=True)
def _sift_down(hv, hi, pos, end):  # type: ignore[no-untyped-def]
    """Restore the heap (worst entry at the root) below ``pos`` within ``[0, end)``."""
    while True:
        c = 2 * pos + 1
        if c >= end:
            return
        if c + 1 < end and _worse(hv, hi, c + 1, c):
            c += 1
        if not _worse(hv, hi, c, pos):
            return
        hv[pos], hv[c] = hv[c], hv[pos]
        hi[pos], hi[c] = hi[c], hi[pos]
        pos = c


@njit(cache=True, nogil=True)
def _scan(row, hv, hi, step, bound):  # type: ignore[no-untyped-def]
    """The best ``len(hv)`` entries of ``row[::step]`` that are ``>= bound``, as a heap."""
    k = len(hv)
    hv[:] = -np.inf
    hi[:] = -1
    for j in range(0, len(row), step):
        v = row[j]
        if v > hv[0] and v >= bound:
            hv[0] = v
            hi[0] = j
            _sift_down(hv, hi, 0, k)


@njit(cache=True, nogil=True)
def topk_rows(block, ids, vals):  # type: ignore[no-untyped-def]
    """Fill ``ids`` / ``vals`` (shape ``(n_rows, k)``, ``k <= n_cols``) with each row's top k.

    Rows come out sorted by descending score, ties to the lower column; missing entries are
    ``-1`` / ``-inf``.
    """
    n_rows, n_cols = block.shape
    k = ids.shape[1]
    # a sample of about 16 k entries: its k-th best is the row's (16 k)-th best or so
    step = n_cols // (16 * k)
    for r in range(n_rows):
        hv = vals[r]
        hi = ids[r]
        bound = -np.inf
        if step >= 2:
            _scan(block[r], hv, hi, step, -np.inf)
            bound = hv[0]
        _scan(block[r], hv, hi, 1, bound)
        for end in range(k - 1, 0, -1):  # heap sort: the worst remaining entry goes last
            hv[0], hv[end] = hv[end], hv[0]
            hi[0], hi[end] = hi[end], hi[0]
            _sift_down(hv, hi, 0, end)
