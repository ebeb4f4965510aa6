"""The service's catalogue: item ids, side information and availability; it grows online.

Items come from the dataset's ``items.parquet`` (in the model's id order) and then from
``POST /v1/items``: an update merges attributes into the item, an unknown id appends an item.
An item is *banned* (never returned) while it is deleted, unavailable or on the blocklist. The
blocklist may name ids no item has yet: an item added later under such an id is banned from the
start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gemrec.errors import GemrecError

__all__ = ["ITEM_FIELDS", "Catalogue", "NotFound", "grown"]

#: item attributes understood by the service (others are stored and returned unchanged)
ITEM_FIELDS = ("category", "brand", "title", "price", "available")


class NotFound(GemrecError):
    """An id the service does not know (answered with 404)."""


def grown(arr: np.ndarray, n: int, fill: Any) -> np.ndarray:
    """``arr`` extended to length ``n`` with ``fill`` (itself when long enough)."""
    if len(arr) >= n:
        return arr
    extra = np.full(n - len(arr), fill, dtype=arr.dtype)
    return np.concatenate([arr, extra])


@dataclass
class Catalogue:
    """Item ids and side information; grows when items are added online.

    Internal ids ``0 .. n_model_items - 1`` are the model's items; later ids were added online.
    """

    item_ids: list[str]
    index: dict[str, int]
    category: np.ndarray  # int32 codes, -1 unknown
    brand: np.ndarray  # int32 codes, -1 unknown
    banned: np.ndarray  # bool: unavailable, deleted or blocklisted
    deleted: np.ndarray  # bool
    unavailable: np.ndarray  # bool
    attrs: dict[int, dict[str, Any]]  # side information of items touched online
    blocklist: frozenset[str] = frozenset()
    category_names: list[str] = field(default_factory=list)
    category_codes: dict[str, int] = field(default_factory=dict)
    brand_codes: dict[str, int] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, item_ids: Sequence[str], items: pd.DataFrame) -> Catalogue:
        """The catalogue of ``item_ids`` (internal order) with the side information in ``items``
        (a dataset's item table: ``item_id`` and any of category, brand, title, available)."""
        n = len(item_ids)
        cat = cls(
            item_ids=list(item_ids),
            index={i: k for k, i in enumerate(item_ids)},
            category=np.full(n, -1, np.int32),
            brand=np.full(n, -1, np.int32),
            banned=np.zeros(n, bool),
            deleted=np.zeros(n, bool),
            unavailable=np.zeros(n, bool),
            attrs={},
        )
        cat.titles = [""] * n
        if len(items) and "item_id" in items:
            rows = np.array([cat.index.get(str(i), -1) for i in items["item_id"]], dtype=np.int64)
            ok = rows >= 0
            if "category" in items:
                codes, uniques = pd.factorize(items["category"].astype("string"))
                cat.category_names = [str(u) for u in uniques]
                cat.category_codes = {c: k for k, c in enumerate(cat.category_names)}
                cat.category[rows[ok]] = codes[ok]
            if "brand" in items:
                codes, uniques = pd.factorize(items["brand"].astype("string"))
                cat.brand_codes = {str(b): k for k, b in enumerate(uniques)}
                cat.brand[rows[ok]] = codes[ok]
            if "available" in items:
                avail = items["available"].fillna(True).astype(bool).to_numpy()
                cat.unavailable[rows[ok & ~avail]] = True
                cat.banned[rows[ok & ~avail]] = True
            if "title" in items:
                for r, t in zip(rows[ok], items["title"][ok], strict=True):
                    cat.titles[r] = "" if _missing(t) else str(t)
        return cat

    @property
    def n(self) -> int:
        return len(self.item_ids)

    def item(self, item_id: str) -> int:
        """Internal id of ``item_id`` (:class:`NotFound` when unknown)."""
        i = self.index.get(item_id)
        if i is None:
            raise NotFound(f"unknown item_id {item_id!r}")
        return i

    def category_code(self, category: str) -> int:
        """Code of ``category`` (:class:`NotFound` when no item has it)."""
        code = self.category_codes.get(category)
        if code is None:
            raise NotFound(f"unknown category {category!r}")
        return code

    def apply(self, item: int, attrs: dict[str, Any]) -> None:
        """Merge ``attrs`` (an online update) into ``item``."""
        self.attrs[item] = {**self.attrs.get(item, {}), **attrs}
        if "category" in attrs:
            self.category[item] = self._code(
                self.category_codes, attrs["category"], self.category_names
            )
        if "brand" in attrs:
            self.brand[item] = self._code(self.brand_codes, attrs["brand"])
        if "title" in attrs and attrs["title"] is not None:
            self.titles[item] = str(attrs["title"])
        deleted = bool(attrs.get("deleted", self.deleted[item]))
        self.deleted[item] = deleted
        available = attrs.get("available")
        if available is not None:
            self.unavailable[item] = not bool(available)
        self._ban(item)

    def block(self, changes: Mapping[str, bool]) -> None:
        """Apply blocklist changes ``{item_id: blocked}``, ids without an item included."""
        blocked = set(self.blocklist)
        for item_id, on in changes.items():
            if on:
                blocked.add(item_id)
            else:
                blocked.discard(item_id)
        self.blocklist = frozenset(blocked)
        for item_id in changes:
            item = self.index.get(item_id)
            if item is not None:
                self._ban(item)

    def _ban(self, item: int) -> None:
        """Recompute whether ``item`` is banned from its three reasons."""
        blocked = self.item_ids[item] in self.blocklist
        self.banned[item] = bool(self.deleted[item] or self.unavailable[item]) or blocked

    def add(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[int]:
        """Append items ``(item_id, attrs)``; returns their internal ids."""
        start, n = self.n, self.n + len(items)
        self.category = grown(self.category, n, -1)
        self.brand = grown(self.brand, n, -1)
        self.banned = grown(self.banned, n, False)
        self.deleted = grown(self.deleted, n, False)
        self.unavailable = grown(self.unavailable, n, False)
        for k, (item_id, attrs) in enumerate(items):
            self.item_ids.append(item_id)
            self.index[item_id] = start + k
            self.titles.append("")
            self.apply(start + k, attrs)
        return list(range(start, n))

    @staticmethod
    def _code(table: dict[str, int], value: Any, names: list[str] | None = None) -> int:
        if _missing(value):
            return -1
        key = str(value)
        if key not in table:
            table[key] = len(table)
            if names is not None:
                names.append(key)
        return table[key]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
