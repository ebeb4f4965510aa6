"""Id maps: raw user/item ids <-> contiguous internal ids, in an order fixed by content alone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["IdMaps", "sorted_ids"]


def sorted_ids(values: pd.Series) -> tuple[np.ndarray, np.ndarray, str]:
    """Codes and raw ids, ordered numerically when every id is a plain integer, else as text.

    A stable, content-only order makes internal ids independent of row order (and keeps
    LightGCN's 0-based ids equal to the internal ids).

    Parameters
    ----------
    values : pandas.Series of str, shape (n,)
        One raw id per row.

    Returns
    -------
    codes : numpy.ndarray of int32, shape (n,)
        The internal id of each row.
    ids : numpy.ndarray of str, shape (n_unique,)
        The raw id of each internal id.
    order : {"numeric", "lexicographic"}
        How the raw ids were ordered.

    Examples
    --------
    >>> codes, ids, order = sorted_ids(pd.Series(["10", "9", "10"]))
    >>> codes.tolist(), ids.tolist(), order
    ([1, 0, 1], ['9', '10'], 'numeric')
    """
    codes, uniques = pd.factorize(values, sort=False)
    uniq = np.asarray(uniques, dtype=object).astype(str)
    numeric = pd.Series(uniq).str.fullmatch(r"0|[1-9][0-9]{0,17}").all()
    if numeric:
        order = np.argsort(uniq.astype(np.int64), kind="stable")
        how = "numeric"
    else:
        order = np.argsort(uniq, kind="stable")
        how = "lexicographic"
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes].astype(np.int32), uniq[order], how


@dataclass(frozen=True)
class IdMaps:
    """Internal ids of an event table's users and items (see :func:`sorted_ids`).

    Attributes
    ----------
    users, items : numpy.ndarray of int32, shape (n_events,)
        Internal user and item id of each event.
    user_ids, item_ids : numpy.ndarray of str, shapes (n_users,), (n_items,)
        Raw id of each internal id.
    user_order, item_order : {"numeric", "lexicographic"}
    """

    users: np.ndarray
    items: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_order: str
    item_order: str

    @classmethod
    def from_events(cls, events: pd.DataFrame) -> IdMaps:
        """Map the ``user_id`` and ``item_id`` columns of ``events``."""
        users, user_ids, user_order = sorted_ids(events["user_id"])
        items, item_ids, item_order = sorted_ids(events["item_id"])
        return cls(users, items, user_ids, item_ids, user_order, item_order)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)
