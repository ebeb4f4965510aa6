"""The ``Interactions`` object: the currency between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gemrec.errors import DataError

__all__ = ["Interactions"]


@dataclass(frozen=True, eq=False)
class Interactions:
    """A user x item matrix of implicit feedback plus the raw id maps.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Edge weights (float32), canonical CSR (sorted indices, no duplicates).
    user_ids, item_ids : numpy.ndarray of str, shapes (n_users,) and (n_items,)
        Raw ids exactly as they appeared in the source; position = internal id.
    timestamps : scipy.sparse.csr_matrix, optional
        Same sparsity as ``matrix``; the last event time of each edge (float64 epoch seconds).
    first_timestamps : scipy.sparse.csr_matrix, optional
        Same sparsity as ``matrix``; the first event time of each edge. A time holdout needs it to
        tell an edge that is new after a cut from one that was only touched again after it.
    order : scipy.sparse.csr_matrix, optional
        Same sparsity as ``matrix``; where a source gives each user's order but no times (a
        LightGCN file whose lines are not sorted by item), each edge's position in the source
        (float64, from 1; larger is later within a user).

    Notes
    -----
    Models only ever see contiguous internal ids ``0..n_users-1`` and ``0..n_items-1``.
    All splits of one dataset share the same id maps, so their matrices have the same shape.
    """

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamps: sp.csr_matrix | None = None
    first_timestamps: sp.csr_matrix | None = None
    order: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        m = self.matrix
        if not sp.issparse(m) or m.format != "csr":
            raise DataError(
                f"Interactions.matrix must be a scipy CSR matrix; got {type(m).__name__}"
            )
        if m.shape != (len(self.user_ids), len(self.item_ids)):
            raise DataError(
                f"Interactions.matrix has shape {m.shape} but there are "
                f"{len(self.user_ids)} user ids "
                f"and {len(self.item_ids)} item ids"
            )
        for name in ("timestamps", "first_timestamps", "order"):
            t = getattr(self, name)
            if t is not None and t.shape != m.shape:
                raise DataError(f"Interactions.{name} must have the same shape as the matrix")

    @classmethod
    def from_arrays(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        n_users: int | None = None,
        n_items: int | None = None,
        user_ids: np.ndarray | None = None,
        item_ids: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
        first_timestamps: np.ndarray | None = None,
        order: np.ndarray | None = None,
    ) -> Interactions:
        """Build from parallel arrays of internal ids.

        Duplicates are summed; per (user, item) the latest of ``timestamps`` and ``order`` and
        the earliest of ``first_timestamps`` are kept.
        """
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if n_users is None:
            n_users = len(user_ids) if user_ids is not None else int(users.max(initial=-1)) + 1
        if n_items is None:
            n_items = len(item_ids) if item_ids is not None else int(items.max(initial=-1)) + 1
        if weights is None:
            weights = np.ones(len(users), dtype=np.float32)
        matrix = sp.csr_matrix(
            (np.asarray(weights, dtype=np.float32), (users, items)), shape=(n_users, n_items)
        )
        matrix.sum_duplicates()
        matrix.sort_indices()
        ts = _per_pair(users, items, timestamps, (n_users, n_items), last=True)
        first = _per_pair(users, items, first_timestamps, (n_users, n_items), last=False)
        seq = _per_pair(users, items, order, (n_users, n_items), last=True)
        if user_ids is None:
            user_ids = np.arange(n_users).astype(str)
        if item_ids is None:
            item_ids = np.arange(n_items).astype(str)
        matrix = matrix.astype(np.float32)
        return cls(matrix, np.asarray(user_ids), np.asarray(item_ids), ts, first, seq)

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    def binary(self) -> sp.csr_matrix:
        """The matrix with every stored weight replaced by 1 (float32)."""
        b = self.matrix.copy()
        b.data = np.ones_like(b.data, dtype=np.float32)
        return b

    def users_with_items(self) -> np.ndarray:
        """Internal ids of users having at least one interaction (int64, ascending)."""
        return np.flatnonzero(np.diff(self.matrix.indptr) > 0)

    def with_matrix(
        self,
        matrix: sp.csr_matrix,
        timestamps: sp.csr_matrix | None = None,
        first_timestamps: sp.csr_matrix | None = None,
        order: sp.csr_matrix | None = None,
    ) -> Interactions:
        """A copy sharing the id maps, with another matrix of the same shape."""
        return Interactions(
            matrix, self.user_ids, self.item_ids, timestamps, first_timestamps, order
        )

    def without_users(self, users: np.ndarray) -> Interactions:
        """The same id maps with every edge of ``users`` (internal ids) removed.

        Examples
        --------
        >>> x = Interactions.from_arrays([0, 1, 1], [0, 0, 1], n_users=2, n_items=2)
        >>> x.without_users(np.array([1])).nnz
        1
        """
        dropped = np.zeros(self.n_users, bool)
        dropped[np.asarray(users, dtype=np.int64)] = True

        def drop(m: sp.csr_matrix | None) -> sp.csr_matrix | None:
            # rows cut out of the CSR arrays: the sparsity of the kept rows (zero times
            # included) is unchanged, so matrix and timestamps stay aligned
            if m is None:
                return None
            lengths = np.diff(m.indptr)
            keep = np.repeat(~dropped, lengths)
            indptr = np.concatenate([[0], np.cumsum(np.where(dropped, 0, lengths))])
            return sp.csr_matrix((m.data[keep], m.indices[keep], indptr), shape=m.shape)

        return self.with_matrix(
            drop(self.matrix),
            drop(self.timestamps),
            drop(self.first_timestamps),
            drop(self.order),
        )

    def grown(self, user_ids: np.ndarray, item_ids: np.ndarray) -> Interactions:
        """The same edges over a larger id space whose first ids are this one's.

        Parameters
        ----------
        user_ids, item_ids : ndarray of str
            The new id maps; they must start with ``self.user_ids`` / ``self.item_ids``.
        """
        n_u, n_i = len(user_ids), len(item_ids)
        if (
            n_u < self.n_users
            or n_i < self.n_items
            or not np.array_equal(
                np.asarray(user_ids[: self.n_users], str), self.user_ids.astype(str)
            )
            or not np.array_equal(
                np.asarray(item_ids[: self.n_items], str), self.item_ids.astype(str)
            )
        ):
            raise DataError("the new id maps must extend the interactions' id maps")

        def grow(m: sp.csr_matrix | None) -> sp.csr_matrix | None:
            if m is None:
                return None
            out = sp.csr_matrix(m, copy=True)
            out.resize((n_u, n_i))
            return out

        return Interactions(
            grow(self.matrix),
            np.asarray(user_ids),
            np.asarray(item_ids),
            grow(self.timestamps),
            grow(self.first_timestamps),
            grow(self.order),
        )

    def __repr__(self) -> str:
        return f"Interactions(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz})"


def _per_pair(
    users: np.ndarray,
    items: np.ndarray,
    times: np.ndarray | None,
    shape: tuple[int, int],
    *,
    last: bool,
) -> sp.csr_matrix | None:
    """The latest (``last``) or earliest time per (user, item) as a CSR matrix, or None."""
    if times is None:
        return None
    t_arr = np.asarray(times, dtype=np.float64)
    # sort by time within each pair and keep its last (or first) row
    order = np.lexsort((t_arr if last else -t_arr, items, users))
    u, i, t = users[order], items[order], t_arr[order]
    keep = np.ones(len(u), dtype=bool)
    keep[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    out = sp.csr_matrix((t[keep], (u[keep], i[keep])), shape=shape)
    out.sort_indices()
    return out
