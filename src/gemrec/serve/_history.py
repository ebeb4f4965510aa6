"""What each user already has offline: the dataset's history plus what a retrain folded in.

"Already seen" is the dataset's train + valid edges and the online events a retrain folded into
the model (the model's own interactions), never only what one model happened to train on. The
same matrix gives the co-users behind explanations and the social and similar-users cold start,
and each pair keeps the strongest event type behind it, so reasons can name it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gemrec.data.store import TRAIN_SPLITS, Dataset
from gemrec.models.base import Recommender
from gemrec.serve._store import Event

__all__ = ["History"]


class History:
    """Users' offline items over the engine's id space.

    Parameters
    ----------
    dataset : Dataset
    model : Recommender
        Its ``interactions_`` hold the online events a retrain folded in.
    user_ids, item_ids : list of str
        The engine's id maps (the dataset's, grown by retrains).
    weight : callable str -> float
        Weight of an event type (the one event-weight table, as the dataset applied it).

    Attributes
    ----------
    seen : csr_matrix of float32, shape (n_users, n_model_items)
        Weight of each user's offline (user, item) pair.
    item_users : csr_matrix of float32, shape (n_model_items, n_users)
        Ones where a user has the item: ``item_users[x] @ item_users[y].T`` counts the distinct
        users of both items, whatever the pairs' weights.
    item_degree : ndarray of float32, shape (n_model_items,)
        Number of distinct users of each item.
    """

    def __init__(
        self,
        dataset: Dataset,
        model: Recommender,
        user_ids: list[str],
        item_ids: list[str],
        weight: Callable[[str], float],
    ) -> None:
        self.dataset = dataset
        self.item_ids = item_ids
        self._weight = weight
        history = dataset.interactions(*TRAIN_SPLITS).grown(
            np.asarray(user_ids), np.asarray(item_ids)
        )
        #: the dataset's own pairs (without those a retrain folded in)
        self._dataset_seen: sp.csr_matrix = history.matrix.tocsr()
        self.seen: sp.csr_matrix = history.matrix.maximum(
            sp.csr_matrix(model.interactions_, dtype=np.float32)
        ).tocsr()
        self.seen.sort_indices()
        ones = self.seen.copy()
        ones.data = np.ones_like(ones.data)
        self.item_users: sp.csr_matrix = ones.T.tocsr()
        self.item_degree = np.diff(self.item_users.indptr).astype(np.float32)
        self.event_names, edge_codes = self._strongest_types()
        #: weight of each named event type, then -inf: an unnamed interaction ranks last
        self.event_strength = np.array([*map(weight, self.event_names), -np.inf], np.float64)
        #: per stored entry of ``seen``: the code of its strongest event type (-1 unknown)
        self._codes = self._align(edge_codes)
        self._by_user: tuple[dict[str, np.ndarray], np.ndarray] | None = None

    # ------------------------------------------------------------------ event types

    def co_users(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Distinct users of both items, for each pair of ``rows`` x ``cols``.

        Parameters
        ----------
        rows, cols : ndarray of int, shape (n,), (m,)
            Model items (ids below ``n_model_items``).

        Returns
        -------
        ndarray of float32, shape (n, m)
            ``(item_users[rows] @ item_users[cols].T)`` as a dense array. Computed from the CSR
            arrays directly (sorted users of ``cols``, a binary search per user of ``rows``):
            for the few rows of one request that is several times cheaper than scipy's product,
            whose per-call overhead dominates at this size.
        """
        iu = self.item_users
        col_users, col_of = _gather_rows(iu.indptr, iu.indices, np.asarray(cols, np.int64))
        order = np.argsort(col_users, kind="stable")
        col_users, col_of = col_users[order], col_of[order]
        row_users, row_of = _gather_rows(iu.indptr, iu.indices, np.asarray(rows, np.int64))
        lo = np.searchsorted(col_users, row_users, "left")
        n_match = np.searchsorted(col_users, row_users, "right") - lo
        match = _ranges(lo, n_match)
        flat = np.repeat(row_of, n_match) * len(cols) + col_of[match]
        counts = np.bincount(flat, minlength=len(rows) * len(cols))
        return counts.astype(np.float32).reshape(len(rows), len(cols))

    def _train_edges(self) -> pd.DataFrame:
        e = self.dataset.edges
        return e[e["split"].isin(TRAIN_SPLITS)]

    def _strongest_types(self) -> tuple[list[str], np.ndarray]:
        """Event types the edges count (``n_<type>`` columns) and each train edge's strongest."""
        edges = self._train_edges()
        names = [c[2:] for c in edges.columns if c.startswith("n_") and c != "n_events"]
        if not names:
            return [], np.full(len(edges), -1, np.int16)
        done = edges[[f"n_{t}" for t in names]].to_numpy() > 0
        w = np.array([self._weight(t) for t in names], np.float64)
        best = np.argmax(np.where(done, w, -np.inf), axis=1)
        return names, np.where(done.any(axis=1), best, -1).astype(np.int16)

    def _align(self, edge_codes: np.ndarray) -> np.ndarray:
        """Edge codes laid out like ``seen.data`` (-1 where no edge names a type)."""
        edges = self._train_edges()
        n_items = self.seen.shape[1]
        keys = edges["user"].to_numpy(np.int64) * n_items + edges["item"].to_numpy(np.int64)
        order = np.argsort(keys, kind="stable")
        keys, codes = keys[order], edge_codes[order]
        rows = np.repeat(np.arange(self.seen.shape[0], dtype=np.int64), np.diff(self.seen.indptr))
        seen_keys = rows * n_items + self.seen.indices
        pos = np.minimum(np.searchsorted(keys, seen_keys), max(len(keys) - 1, 0))
        found = (keys[pos] == seen_keys) if len(keys) else np.zeros(len(seen_keys), bool)
        return np.where(found, codes[pos] if len(keys) else -1, -1).astype(np.int16)

    def _name(self, code: int) -> str | None:
        return self.event_names[code] if code >= 0 else None

    # ------------------------------------------------------------------ per user
    @property
    def n_users(self) -> int:
        return int(self.seen.shape[0])

    def items(self, user: int | None) -> np.ndarray:
        """Internal ids of ``user``'s offline items, ascending (empty for an unknown user)."""
        if user is None or user >= self.seen.shape[0]:
            return np.zeros(0, np.int64)
        row = self.seen.indices[self.seen.indptr[user] : self.seen.indptr[user + 1]]
        return np.asarray(row, dtype=np.int64)

    def event_codes(self, user: int | None) -> np.ndarray:
        """Code of the strongest event type of each of :meth:`items` (an index into
        :attr:`event_names` and :attr:`event_strength`; -1 where the data names none)."""
        if user is None or user >= self.seen.shape[0]:
            return np.zeros(0, np.int16)
        return self._codes[self.seen.indptr[user] : self.seen.indptr[user + 1]]

    def event_types(self, user: int | None) -> list[str | None]:
        """The strongest event type of each of :meth:`items` (None where the data names none)."""
        return [self._name(int(c)) for c in self.event_codes(user)]

    def records(self, user: int | None, folded: Sequence[Event] = ()) -> list[dict[str, Any]]:
        """``user``'s offline history as ``GET /v1/users/{id}/history`` lists it, oldest first.

        The dataset's events on the user's train and valid pairs (with their types, times and
        values) when it has an event log, else one row per pair (its strongest event type, last
        timestamp and weight); then ``folded``, the user's store events a retrain folded into the
        model; then any other pair of :attr:`seen` (type ``interaction``, no time).
        """
        if user is None or user >= self.seen.shape[0]:
            return []
        out: list[dict[str, Any]] = []
        if user < self.dataset.n_users:
            rows, indptr = self._user_rows()
            part = slice(indptr[user], indptr[user + 1])
            lo, hi = self._dataset_seen.indptr[user], self._dataset_seen.indptr[user + 1]
            keep = np.isin(rows["item"][part], self._dataset_seen.indices[lo:hi])
            out.extend(
                _record(self.item_ids[i], t, v, ts)
                for i, t, v, ts in zip(
                    *(rows[c][part][keep].tolist() for c in _COLUMNS), strict=True
                )
            )
        out.extend(_record(e.item_id, e.event_type, e.value, e.timestamp) for e in folded)
        listed = {r["item_id"] for r in out}
        row = self.seen[user]
        out.extend(
            _record(self.item_ids[i], "interaction", w, None)
            for i, w in zip(row.indices.tolist(), row.data.tolist(), strict=True)
            if self.item_ids[i] not in listed
        )
        return out

    def _user_rows(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Offline history rows (columns :data:`_COLUMNS`) sorted by user then time, and each
        user's slice of them (built on first use)."""
        if self._by_user is None:
            rows: dict[str, np.ndarray]
            if self.dataset.has_events:
                ev = self.dataset.events
                rows = {
                    "item": ev["item"].to_numpy(np.int64),
                    "event_type": ev["event_type"].astype(str).to_numpy(object),
                    "value": ev["value"].to_numpy(np.float64)
                    if "value" in ev
                    else np.full(len(ev), np.nan),
                    "timestamp": ev["timestamp"].to_numpy(np.float64),
                }
                users = ev["user"].to_numpy(np.int64)
            else:
                edges = self._train_edges()
                names = np.array([*self.event_names, "interaction"], dtype=object)
                rows = {
                    "item": edges["item"].to_numpy(np.int64),
                    "event_type": names[self._strongest_types()[1]],  # code -1: "interaction"
                    "value": edges["weight"].to_numpy(np.float64),
                    "timestamp": edges["last_timestamp"].to_numpy(np.float64)
                    if "last_timestamp" in edges
                    else np.full(len(edges), np.nan),
                }
                users = edges["user"].to_numpy(np.int64)
            # by time, then (stably) by user: each user's rows in time order, ties as stored
            order = np.argsort(rows["timestamp"], kind="stable")
            order = order[np.argsort(users[order], kind="stable")]
            rows = {c: col[order] for c, col in rows.items()}
            indptr = np.searchsorted(users[order], np.arange(self.dataset.n_users + 1))
            self._by_user = (rows, indptr)
        return self._by_user


#: the columns of offline history rows, in :func:`_record`'s argument order
_COLUMNS = ("item", "event_type", "value", "timestamp")


def _record(item_id: str, event_type: str, value: Any, timestamp: Any) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "event_type": event_type,
        "value": _number(value),
        "timestamp": _number(timestamp),
        "source": "offline",
    }


def _number(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])``, vectorised."""
    ends = np.cumsum(lengths)
    return np.repeat(starts - ends + lengths, lengths) + np.arange(
        int(ends[-1]) if len(ends) else 0
    )


def _gather_rows(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the given CSR ``rows``, and the position in ``rows`` each came from."""
    lengths = (indptr[rows + 1] - indptr[rows]).astype(np.int64)
    return indices[_ranges(indptr[rows].astype(np.int64), lengths)], np.repeat(
        np.arange(len(rows)), lengths
    )
