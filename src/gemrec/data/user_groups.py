"""User attributes as codes: which users share a user's metadata (the ``similar_users`` idea).

One home for the grouping that the service's ``similar_users`` cold start and the
``similar-users`` model (:class:`~gemrec.models.popularity.UserGroupPopularity`) both use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "UserAttributes",
    "estimate_shrinkage",
    "group_counts",
    "item_shares",
    "shrunk_group_scores",
]

#: the largest shrinkage :func:`estimate_shrinkage` returns (groups no more alike than chance:
#: global popularity)
MAX_SHRINKAGE = 1e6


class UserAttributes:
    """The dataset's user metadata as codes, so users with equal attributes are found fast.

    Numeric columns with more than 10 distinct values (age, ...) are cut into 5 quantile bins;
    text columns with more distinct values than half the users (zip codes) are left out unless
    named; other values are compared as text (``25`` and ``"25"`` are equal). A user registered
    online is placed with the bins and levels of the dataset (:meth:`key_of`).

    Parameters
    ----------
    columns : list of str
    codes : ndarray of int64, shape (n_users, n_columns)
        Level or bin per user and column (-1: a value never seen).
    levels : list of dict
        Per column, text value -> code (empty for binned columns).
    bins : list of ndarray or None
        Per column, the quantile bin edges (None for columns compared as text).
    """

    def __init__(
        self,
        columns: list[str],
        codes: np.ndarray,
        levels: list[dict[str, int]],
        bins: list[np.ndarray | None],
    ) -> None:
        self.columns, self.codes, self.levels, self.bins = columns, codes, levels, bins
        #: group code per user: users with equal codes in every column share one
        self.groups = np.asarray(
            pd.DataFrame(codes).groupby(list(range(len(columns))), sort=False).ngroup(),
            dtype=np.int64,
        )

    @classmethod
    def build(
        cls, users: pd.DataFrame, n_users: int, columns: list[str] | None = None
    ) -> UserAttributes | None:
        """From ``Dataset.users`` (None without metadata columns or with more rows than
        ``n_users``); ``columns``: the metadata columns to compare (default: all)."""
        cols = [c for c in users.columns if c not in ("user", "user_id")]
        if columns is not None:
            cols = [c for c in cols if c in columns]
        else:  # a text column with a value per user or so (a zip code) groups nobody
            cols = [
                c
                for c in cols
                if pd.api.types.is_numeric_dtype(users[c]) or users[c].nunique() <= len(users) // 2
            ]
        if not cols or len(users) > n_users:
            return None
        if "user" in users:
            users = users.sort_values("user")
        codes: list[np.ndarray] = []
        levels: list[dict[str, int]] = []
        bins: list[np.ndarray | None] = []
        for c in cols:
            col = users[c]
            if pd.api.types.is_numeric_dtype(col) and col.nunique() > 10:
                binned, edges = pd.qcut(col, 5, labels=False, duplicates="drop", retbins=True)
                codes.append(np.nan_to_num(np.asarray(binned, np.float64), nan=-1).astype(np.int64))
                levels.append({})
                bins.append(np.asarray(edges, np.float64))
            else:
                text = [_level(v) for v in col]
                uniques = {v: i for i, v in enumerate(dict.fromkeys(text))}
                codes.append(np.asarray([uniques[v] for v in text], np.int64))
                levels.append(uniques)
                bins.append(None)
        return cls(cols, np.stack(codes, axis=1), levels, bins)

    def key_of(self, attributes: dict[str, Any]) -> tuple[tuple[int, int], ...]:
        """``(column, code)`` pairs of the given attributes the dataset has a column for."""
        key = []
        for j, c in enumerate(self.columns):
            if c not in attributes or attributes[c] is None:
                continue
            edges = self.bins[j]
            if edges is None:
                key.append((j, self.levels[j].get(_level(attributes[c]), -1)))
                continue
            try:
                value = float(attributes[c])
            except (TypeError, ValueError):
                key.append((j, -1))
                continue
            b = int(np.searchsorted(edges, value, side="left")) - 1
            key.append((j, min(max(b, 0), len(edges) - 2)))
        return tuple(key)

    def key_of_user(self, user: int) -> tuple[tuple[int, int], ...]:
        """Every column's code of dataset user ``user``."""
        return tuple((j, int(c)) for j, c in enumerate(self.codes[user]))

    def members(self, key: tuple[tuple[int, int], ...]) -> np.ndarray:
        """Users whose codes equal ``key`` in its columns."""
        mask = np.ones(len(self.codes), bool)
        for j, code in key:
            mask &= self.codes[:, j] == code
        return np.flatnonzero(mask)


def item_shares(binary: sp.csr_matrix) -> np.ndarray:
    """Each item's share of the users with any item (float32): how many users have it over how
    many users have a history; the prior :func:`shrunk_group_scores` shrinks toward."""
    binary = sp.csr_matrix(binary)
    active = int((np.diff(binary.indptr) > 0).sum())
    return (np.asarray(binary.sum(axis=0), np.float64).ravel() / max(active, 1)).astype(np.float32)


def group_counts(binary: sp.csr_matrix, groups: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(counts, sizes)``: how many of each group's users have each item (groups x items), and
    each group's users with any item. ``binary``: users x items, 0/1; ``groups``: a group code
    per user (-1: none; users past its end have none)."""
    binary = sp.csr_matrix(binary, dtype=np.float32)
    codes = np.full(binary.shape[0], -1, np.int64)
    codes[: min(len(groups), len(codes))] = groups[: len(codes)]
    rows = np.flatnonzero(codes >= 0)
    indicator = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (codes[rows], rows)),
        shape=(int(codes.max(initial=-1)) + 1, binary.shape[0]),
    )
    active = (np.diff(binary.indptr) > 0).astype(np.float32)
    return sp.csr_matrix(indicator @ binary), np.asarray(indicator @ active, np.float32).ravel()


def shrunk_group_scores(
    counts: np.ndarray, members: np.ndarray | float, share: np.ndarray, shrinkage: float
) -> np.ndarray:
    """Each item's share among a group's users, shrunk toward its share among all users.

    ``counts`` (groups x items): how many of the group's users have the item; ``members``: the
    group's users with any history; ``share``: each item's count over all users with history;
    ``shrinkage``: the prior's weight in pseudo-users (0: the group alone). A group of ``n``
    users holds ``n / (n + shrinkage)`` of the score:

        score(g, i) = (counts[g, i] + shrinkage * share[i]) / (members[g] + shrinkage)
    """
    top = np.asarray(counts, np.float32) + np.float32(shrinkage) * share
    denominator = np.asarray(members, np.float32) + np.float32(shrinkage)
    if top.ndim == 2:
        denominator = denominator.reshape(-1, 1)
    return np.asarray(top / np.maximum(denominator, np.float32(1e-12)), np.float32)


def estimate_shrinkage(counts: sp.spmatrix, sizes: np.ndarray) -> float:
    """The shrinkage for :func:`shrunk_group_scores` that the groups' own spread implies.

    An empirical-Bayes (method of moments) estimate: if each group's true item shares are drawn
    around the population's shares ``p`` with a Dirichlet prior of strength ``s`` pseudo-users,
    a group's true share of item ``i`` varies across groups with variance ``p_i (1 - p_i) / (s +
    1)``, and the observed shares add the sampling noise ``p_i (1 - p_i) / n_g``. So

        1 / (s + 1) = (sum_i V_i - sum_i p_i (1 - p_i) G / N) / sum_i p_i (1 - p_i)

    with ``V_i`` the size-weighted variance of item ``i``'s share across the ``G`` groups of at
    least 2 users with a history (``N`` users in all). Groups that differ a lot (each segment buys
    its own category) give a small ``s``; groups no more alike than chance give
    :data:`MAX_SHRINKAGE`, global popularity.

    ``counts`` (groups x items): how many of each group's users have each item; ``sizes``: each
    group's users with a history.
    """
    sizes = np.asarray(sizes, np.float64)
    kept = np.flatnonzero(sizes >= 2)
    if len(kept) < 2:
        return 0.0  # one group is the population: nothing to shrink toward
    c = sp.csr_matrix(counts, dtype=np.float64)[kept]
    n_g, total = sizes[kept], float(sizes[kept].sum())
    p = np.asarray(c.sum(axis=0), np.float64).ravel() / total
    # sum_i sum_g (n_g / N) (x_gi - p_i)^2 with x_gi = c_gi / n_g, sparse-friendly
    spread = float(np.asarray(c.multiply(c).sum(axis=1)).ravel() @ (1.0 / n_g)) / total
    spread -= float(p @ p)
    binomial = float(p @ (1 - p))
    between = spread - binomial * len(kept) / total
    if binomial <= 0 or between <= binomial / (MAX_SHRINKAGE + 1):
        return MAX_SHRINKAGE
    return float(max(binomial / between - 1.0, 0.0))


def _level(value: Any) -> str:
    """A metadata value as text, integral numbers without a decimal part."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
