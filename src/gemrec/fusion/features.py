"""Side features of a fusion: popularity, activity, recency and category affinity.

The learned blend (:mod:`gemrec.fusion.learned`) reads them for every candidate, and
:class:`~gemrec.fusion.fusion.Fusion` orders the items no channel proposes by popularity and sends
users without history to its fallback. They are computed from the interactions a blend is trained
or applied on: the tuning split while tuning, then everything the model has seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gemrec.analysis.interests import category_affinities
from gemrec.data.holdout import edge_timestamps
from gemrec.data.interactions import Interactions
from gemrec.models.base import State

__all__ = ["SideFeatures", "side_features"]

#: half-life of the category affinity's time decay
AFFINITY_HALF_LIFE_HOURS = 24.0 * 30


@dataclass(frozen=True)
class SideFeatures:
    """Per-item and per-user statistics of one set of interactions.

    Attributes
    ----------
    item_pop : ndarray of float32, shape (n_items,)
        Number of users with an interaction on the item.
    user_activity : ndarray of float32, shape (n_users,)
        Number of items per user.
    item_age_days : ndarray of float32, shape (n_items,)
        Days between the item's last interaction and the latest one overall (NaN without
        timestamps or without interactions).
    item_categories : ndarray of int64, shape (n_items,)
        Category per item, -1 for none.
    cat_affinity : csr_matrix of shape (n_users, n_categories) or None
        The user's time-decayed share of activity per category
        (:func:`gemrec.analysis.interests.category_affinities`); None without categories.
    cat_last : csr_matrix of shape (n_users, n_categories) or None
        Timestamp (seconds) of the user's latest interaction per category; None without
        categories or timestamps.
    user_last : ndarray of float64, shape (n_users,) or None
        Timestamp of the user's latest interaction (0 for none); None when ``cat_last`` is.
    """

    item_pop: np.ndarray
    user_activity: np.ndarray
    item_age_days: np.ndarray
    item_categories: np.ndarray
    cat_affinity: sp.csr_matrix | None = None
    cat_last: sp.csr_matrix | None = None
    user_last: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return len(self.item_pop)

    def state(self) -> State:
        """The arrays to persist, under the names a saved fusion model stores them."""
        state: State = {
            "item_pop_": self.item_pop,
            "user_activity_": self.user_activity,
            "item_age_days_": self.item_age_days,
            "item_categories_": self.item_categories,
        }
        if self.cat_affinity is not None:
            state["cat_affinity_"] = self.cat_affinity
        if self.cat_last is not None:
            state["cat_last_"] = self.cat_last
            state["user_last_"] = self.user_last
        return state

    @classmethod
    def from_state(cls, state: State) -> SideFeatures:
        """Inverse of :meth:`state`."""
        return cls(
            item_pop=np.asarray(state["item_pop_"], np.float32),
            user_activity=np.asarray(state["user_activity_"], np.float32),
            item_age_days=np.asarray(state["item_age_days_"], np.float32),
            item_categories=np.asarray(state["item_categories_"], np.int64),
            cat_affinity=state.get("cat_affinity_"),
            cat_last=state.get("cat_last_"),
            user_last=state.get("user_last_"),
        )


def side_features(interactions: Interactions, item_categories: np.ndarray) -> SideFeatures:
    """Compute :class:`SideFeatures` of ``interactions``.

    Parameters
    ----------
    interactions : Interactions
        Timestamps, when present, give the item ages and the category recency.
    item_categories : ndarray of int64, shape (n_items,)
        -1 for items without a category; all -1 leaves the category features None.
    """
    m = interactions.matrix
    item_pop = np.asarray((m > 0).sum(axis=0)).ravel().astype(np.float32)
    user_activity = np.diff(m.indptr).astype(np.float32)
    ts = interactions.timestamps
    n_users, n_items = m.shape
    if ts is not None and ts.nnz:
        t_max = float(ts.data.max())
        item_last = np.full(n_items, np.nan)
        coo = ts.tocoo()
        order = np.argsort(coo.data)
        item_last[coo.col[order]] = coo.data[order]  # later writes win: the max
        item_age_days = ((t_max - item_last) / 86400.0).astype(np.float32)
    else:
        item_age_days = np.full(n_items, np.nan, np.float32)
    features = SideFeatures(item_pop, user_activity, item_age_days, item_categories)
    cats = item_categories
    if not (cats >= 0).any():
        return features
    coo = m.tocoo()
    t = None if ts is None else edge_timestamps(m, ts)
    affinity = category_affinities(
        coo.row,
        coo.col,
        coo.data,
        cats,
        t,
        n_users=n_users,
        half_life_hours=AFFINITY_HALF_LIFE_HOURS,
    )
    if t is None:
        return SideFeatures(item_pop, user_activity, item_age_days, cats, affinity)
    cat_last, user_last = _last_activity(coo.row, coo.col, t, cats, n_users)
    return SideFeatures(item_pop, user_activity, item_age_days, cats, affinity, cat_last, user_last)


def _last_activity(
    users: np.ndarray, items: np.ndarray, t: np.ndarray, cats: np.ndarray, n_users: int
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Latest timestamp per (user, category) as CSR, and per user, of edges ``(users, items)``."""
    c = cats[items]
    ok = c >= 0
    n_cat = int(cats.max()) + 1
    # max timestamp per (user, category): sort ascending so the last write wins
    order = np.argsort(t[ok])
    last = sp.coo_matrix((t[ok][order], (users[ok][order], c[ok][order])), shape=(n_users, n_cat))
    dense_keys = last.row.astype(np.int64) * n_cat + last.col
    uniq, idx = np.unique(dense_keys[::-1], return_index=True)
    vals = last.data[::-1][idx]
    cat_last = sp.csr_matrix((vals, (uniq // n_cat, uniq % n_cat)), shape=(n_users, n_cat))
    user_last = np.zeros(n_users)
    np.maximum.at(user_last, users, t)
    return cat_last, user_last
