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
        #: per stored entry of ``seen``: the code of its strongest event type (-1 unknown)
        self._codes = self._align(edge_codes)
        self._by_user: tuple[pd.DataFrame, np.ndarray] | None = None

    # ------------------------------------------------------------------ event types
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

    def event_types(self, user: int | None) -> list[str | None]:
        """The strongest event type of each of :meth:`items` (None where the data names none)."""
        if user is None or user >= self.seen.shape[0]:
            return []
        codes = self._codes[self.seen.indptr[user] : self.seen.indptr[user + 1]]
        return [self._name(int(c)) for c in codes]

    def event_type(self, user: int | None, item: int) -> str | None:
        """The strongest event type of ``user``'s offline pair with ``item`` (None: none known)."""
        if user is None or user >= self.seen.shape[0]:
            return None
        lo, hi = self.seen.indptr[user], self.seen.indptr[user + 1]
        j = lo + int(np.searchsorted(self.seen.indices[lo:hi], item))
        if j < hi and self.seen.indices[j] == item:
            return self._name(int(self._codes[j]))
        return None

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
            table, indptr = self._user_rows()
            rows = table.iloc[indptr[user] : indptr[user + 1]]
            lo, hi = self._dataset_seen.indptr[user], self._dataset_seen.indptr[user + 1]
            rows = rows[np.isin(rows["item"].to_numpy(), self._dataset_seen.indices[lo:hi])]
            for item, event_type, value, t in zip(
                rows["item"].tolist(),
                rows["event_type"].tolist(),
                rows["value"].tolist(),
                rows["timestamp"].tolist(),
                strict=True,
            ):
                out.append(_record(self.item_ids[item], event_type, value, t))
        out.extend(_record(e.item_id, e.event_type, e.value, e.timestamp) for e in folded)
        listed = {r["item_id"] for r in out}
        row = self.seen[user]
        out.extend(
            _record(self.item_ids[i], "interaction", w, None)
            for i, w in zip(row.indices.tolist(), row.data.tolist(), strict=True)
            if self.item_ids[i] not in listed
        )
        return out

    def _user_rows(self) -> tuple[pd.DataFrame, np.ndarray]:
        """Offline history rows sorted by user then time, and each user's slice (built once)."""
        if self._by_user is None:
            if self.dataset.has_events:
                ev = self.dataset.events
                table = pd.DataFrame(
                    {
                        "user": ev["user"].to_numpy(np.int64),
                        "item": ev["item"].to_numpy(np.int64),
                        "event_type": ev["event_type"].astype(str).to_numpy(object),
                        "value": ev["value"] if "value" in ev else np.nan,
                        "timestamp": ev["timestamp"].to_numpy(np.float64),
                    }
                )
            else:
                edges = self._train_edges()
                codes = self._strongest_types()[1]
                table = pd.DataFrame(
                    {
                        "user": edges["user"].to_numpy(np.int64),
                        "item": edges["item"].to_numpy(np.int64),
                        "event_type": [self._name(int(c)) or "interaction" for c in codes],
                        "value": edges["weight"].to_numpy(np.float64),
                        "timestamp": edges["last_timestamp"].to_numpy(np.float64)
                        if "last_timestamp" in edges
                        else np.nan,
                    }
                )
            # by time, then (stably) by user: each user's rows in time order, ties as stored
            order = np.argsort(table["timestamp"].to_numpy(), kind="stable")
            order = order[np.argsort(table["user"].to_numpy()[order], kind="stable")]
            table = table.iloc[order].reset_index(drop=True)
            indptr = np.searchsorted(
                table["user"].to_numpy(), np.arange(self.dataset.n_users + 1), side="left"
            )
            self._by_user = (table, indptr)
        return self._by_user


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
