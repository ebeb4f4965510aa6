"""User attributes as codes: which users share a user's metadata (the ``similar_users`` idea).

One home for the grouping that the service's ``similar_users`` cold start and the
``similar-users`` model (:class:`~gemrec.models.popularity.UserGroupPopularity`) both use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["UserAttributes"]


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


def _level(value: Any) -> str:
    """A metadata value as text, integral numbers without a decimal part."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
