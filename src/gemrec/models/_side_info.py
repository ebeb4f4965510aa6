"""Side information of item2vec: item feature fields, their codes, and side-only item vectors.

An item table (``Dataset.items``) is read into :class:`SideField` s, one per chosen column
(categorical values, or quantile buckets of a float column); :class:`SideCodes` holds every item's
codes per field. :func:`side_only_vectors` is the vector of an item known by its side
information alone (a new item, or a catalogue item no walk reached). NumPy and pandas only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gemrec.errors import DataError, ParameterError

__all__ = [
    "SideCodes",
    "SideField",
    "align_features",
    "as_frame",
    "cold_attention",
    "fields_from_state",
    "fields_state",
    "fused_vectors",
    "learn_fields",
    "pool",
    "side_only_vectors",
]

#: columns of an item table that identify the item rather than describe it
ID_COLUMNS = ("item", "item_id")


# --------------------------------------------------------------------------- fields
@dataclass(frozen=True)
class SideField:
    """One side-information field: its vocabulary (categorical) or bucket edges (numeric).

    Attributes
    ----------
    name : str
        The item-table column.
    kind : {"categorical", "numeric"}
    vocab : ndarray of str, shape (size,)
        The values (categorical) or bucket labels ``"b0" .. "b{B-1}"`` (numeric).
    edges : ndarray of float64, shape (size - 1,)
        Bucket edges (numeric); empty for categorical fields.
    """

    name: str
    kind: str
    vocab: np.ndarray
    edges: np.ndarray

    @property
    def size(self) -> int:
        return len(self.vocab)

    def codes(self, column: pd.Series) -> list[np.ndarray]:
        """Per-row arrays of vocabulary codes (unknown and missing values dropped)."""
        if self.kind == "numeric":
            x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            b = np.searchsorted(self.edges, x, side="right")
            return [
                np.array([v]) if np.isfinite(xi) else np.zeros(0, np.int64)
                for v, xi in zip(b, x, strict=True)
            ]
        index = {v: i for i, v in enumerate(self.vocab.tolist())}
        return [
            np.array([index[v] for v in _cell_values(cell) if v in index], dtype=np.int64)
            for cell in column.tolist()
        ]


def _cell_values(cell: Any) -> list[str]:
    """A cell as a list of string values: lists/arrays are multi-valued, missing -> []."""
    if isinstance(cell, list | tuple | np.ndarray | set):
        return [str(v) for v in cell if not _is_missing(v)]
    if _is_missing(cell):
        return []
    return [str(cell)]


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return bool(isinstance(v, str) and v == "")


def learn_fields(
    table: pd.DataFrame, names: Sequence[str] | None, n_buckets: int
) -> list[SideField]:
    """The fields of ``table``'s side-information columns, with their vocabularies.

    Parameters
    ----------
    table : DataFrame
        One row per item.
    names : sequence of str or None
        The columns to use. None chooses automatically: every column except ``item``/``item_id``
        and boolean flags that is either a float column with at least two distinct values or has
        between 2 and ``len(table) / 2`` distinct values (id-like columns such as titles are left
        out).
    n_buckets : int
        Quantile buckets of a float column.

    Returns
    -------
    list of SideField
    """
    n = len(table)
    auto = names is None
    cols = [c for c in table.columns if c not in ID_COLUMNS] if auto else list(names or [])
    fields: list[SideField] = []
    for name in cols:
        if name not in table.columns:
            raise ParameterError(
                f"parameter 'side_features' names column '{name}', which item_features lacks; "
                f"columns: {', '.join(map(str, table.columns))}"
            )
        col = table[name]
        if auto and pd.api.types.is_bool_dtype(col.dtype):
            continue  # flags such as `available` are business rules, not item descriptions
        if pd.api.types.is_float_dtype(col.dtype):
            x = col.to_numpy(dtype=np.float64)
            x = x[np.isfinite(x)]
            if len(np.unique(x)) < 2:
                continue
            edges = np.unique(np.quantile(x, np.arange(1, n_buckets) / n_buckets))
            vocab = np.array([f"b{i}" for i in range(len(edges) + 1)])
            fields.append(SideField(str(name), "numeric", vocab, edges))
            continue
        values = [v for cell in col.tolist() for v in _cell_values(cell)]
        vocab = np.array(sorted(set(values)), dtype=str)
        if auto and (len(vocab) < 2 or len(vocab) > max(2, n // 2)):
            continue
        if len(vocab) == 0:
            continue
        fields.append(SideField(str(name), "categorical", vocab, np.zeros(0)))
    return fields


def fields_state(fields: Sequence[SideField]) -> dict[str, np.ndarray]:
    """The fields as named arrays for a saved model (see :func:`fields_from_state`)."""
    state = {
        "side_names_": np.array([f.name for f in fields], dtype=str),
        "side_kinds_": np.array([f.kind for f in fields], dtype=str),
    }
    for j, f in enumerate(fields):
        state[f"side_vocab_{j}_"] = f.vocab.astype(str)
        state[f"side_edges_{j}_"] = f.edges.astype(np.float64)
    return state


def fields_from_state(state: Mapping[str, Any]) -> list[SideField]:
    """The fields written by :func:`fields_state`."""
    names = [str(s) for s in state["side_names_"]]
    kinds = [str(s) for s in state["side_kinds_"]]
    return [
        SideField(
            name,
            kind,
            np.asarray(state[f"side_vocab_{j}_"]).astype(str),
            np.asarray(state[f"side_edges_{j}_"]),
        )
        for j, (name, kind) in enumerate(zip(names, kinds, strict=True))
    ]


# --------------------------------------------------------------------------- item tables
def align_features(table: pd.DataFrame, n_items: int) -> pd.DataFrame:
    """``table`` with row ``i`` describing internal item ``i``.

    Rows are placed by an ``item`` column of internal ids when present (items without a row get
    missing values), else taken by position (then ``table`` must have ``n_items`` rows).
    """
    if "item" in table.columns:
        ids = pd.to_numeric(table["item"], errors="coerce").to_numpy()
        if np.isnan(ids.astype(np.float64)).any() or (ids < 0).any() or (ids >= n_items).any():
            raise DataError(
                f"item_features column 'item' must hold internal item ids 0..{n_items - 1}",
                field="item",
            )
        pos = ids.astype(np.int64)
        cols: dict[str, np.ndarray] = {}
        for c in table.columns:
            if pd.api.types.is_float_dtype(table[c].dtype):  # stays numeric for bucketing
                arr = np.full(n_items, np.nan)
                arr[pos] = table[c].to_numpy(dtype=np.float64)
            else:
                arr = np.empty(n_items, dtype=object)
                arr[:] = None
                arr[pos] = table[c].to_numpy(dtype=object)
            cols[str(c)] = arr
        out = pd.DataFrame(cols)
        for c in table.columns:  # flags keep their type so the automatic choice skips them
            if pd.api.types.is_bool_dtype(table[c].dtype):
                out[str(c)] = out[str(c)].astype("boolean")
        return out
    if len(table) != n_items:
        raise DataError(
            f"item_features has {len(table)} rows but the interactions have {n_items} items; "
            "add an 'item' column of internal ids or pass one row per item"
        )
    return table.reset_index(drop=True)


def as_frame(side_info: Any, name: str) -> pd.DataFrame:
    """A DataFrame, a dict of scalars (one row), a dict of lists or a list of dicts as a frame."""
    if isinstance(side_info, pd.DataFrame):
        return side_info
    if isinstance(side_info, Mapping):
        if all(isinstance(v, list | tuple | np.ndarray | pd.Series) for v in side_info.values()):
            return pd.DataFrame({k: list(v) for k, v in side_info.items()})
        return pd.DataFrame([dict(side_info)])
    if isinstance(side_info, Sequence) and all(isinstance(r, Mapping) for r in side_info):
        return pd.DataFrame(list(side_info))
    raise ParameterError.invalid(
        name, "a pandas DataFrame, a dict or a list of dicts", type(side_info)
    )


# --------------------------------------------------------------------------- codes
@dataclass(frozen=True)
class SideCodes:
    """Every row's codes in every field, padded for batched look-ups.

    Attributes
    ----------
    idx : list of ndarray of int64, one (n_rows, m_j) array per field
        Codes of field ``j``, padded with ``fields[j].size`` (the index of a zero row).
    weights : list of ndarray of float32, one (n_rows, m_j) array per field
        Mean-pooling weights: ``1 / (number of codes)`` on a row's codes, 0 on padding.
    has : ndarray of bool, shape (n_rows, n_fields)
        Whether the row has at least one known value in the field.
    """

    idx: list[np.ndarray]
    weights: list[np.ndarray]
    has: np.ndarray

    @classmethod
    def encode(cls, fields: Sequence[SideField], table: pd.DataFrame) -> SideCodes:
        """Codes of ``table``'s rows; a column absent from ``table`` gives no values."""
        idx, weights = [], []
        for f in fields:
            if f.name in table.columns:
                col = table[f.name].reset_index(drop=True)
            else:
                col = pd.Series([None] * len(table))
            i, w = _padded(f.codes(col), pad=f.size)
            idx.append(i)
            weights.append(w)
        has = np.stack([w.sum(axis=1) > 0 for w in weights], axis=1) if fields else None
        return cls(idx, weights, has if has is not None else np.zeros((len(table), 0), bool))

    def rows(self, rows: np.ndarray) -> SideCodes:
        """The codes of some rows only."""
        return SideCodes(
            [i[rows] for i in self.idx], [w[rows] for w in self.weights], self.has[rows]
        )


def _padded(codes: list[np.ndarray], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row code lists as a padded (n, m) index array and mean-pooling weights."""
    m = max([len(c) for c in codes] + [1])
    idx = np.full((len(codes), m), pad, dtype=np.int64)
    wts = np.zeros((len(codes), m), dtype=np.float32)
    for r, c in enumerate(codes):
        if len(c):
            idx[r, : len(c)] = c
            wts[r, : len(c)] = 1.0 / len(c)
    return idx, wts


# --------------------------------------------------------------------------- vectors
def pool(table: np.ndarray, idx: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of a field's embedding rows per item: ``sum_m weights[n, m] table[idx[n, m]]``.

    ``table`` has shape (size, d); the padding code ``size`` reads a zero row.

    Returns
    -------
    ndarray of float32, shape (n, d)
    """
    padded = np.vstack([table, np.zeros((1, table.shape[1]), table.dtype)])
    out: np.ndarray = np.einsum("nm,nmd->nd", weights, padded[idx]).astype(np.float32)
    return out


def fused_vectors(
    own: np.ndarray, logits: np.ndarray, tables: Sequence[np.ndarray], codes: SideCodes
) -> tuple[np.ndarray, np.ndarray]:
    """Every item's attention-weighted sum of its own embedding and its fields' embeddings.

    Parameters
    ----------
    own : ndarray, shape (n, d)
        ``W^0``, the items' own embeddings.
    logits : ndarray, shape (n, 1 + n_fields)
        ``a_v``, the per-item attention logits of [own, field 1, ...].
    tables : sequence of ndarray, one (size_j, d) array per field
    codes : SideCodes

    Returns
    -------
    vectors : ndarray of float32, shape (n, d)
        ``H_v = sum_j softmax(a_v)_j W^j_{s_v^j}`` over the own embedding and the fields ``v``
        has (mean-pooled over a field's values).
    attention : ndarray of float32, shape (n, 1 + n_fields)
        The softmax weights, zero for missing fields.
    """
    missing = np.concatenate([np.zeros((len(own), 1), bool), ~codes.has], axis=1)
    a = np.where(missing, -np.inf, logits.astype(np.float64))
    e = np.exp(a - a.max(axis=1, keepdims=True))
    attention = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    parts = [own.astype(np.float32)] + [
        pool(t, i, w) for t, i, w in zip(tables, codes.idx, codes.weights, strict=True)
    ]
    vectors = np.einsum("nj,jnd->nd", attention, np.stack(parts)).astype(np.float32)
    return vectors, attention


def cold_attention(field_attention: np.ndarray, has: np.ndarray) -> np.ndarray:
    """The global field attention renormalised over the fields each item has.

    Returns
    -------
    ndarray of float32, shape (n, n_fields)
        Rows sum to 1, or are all zero for an item with no known field.
    """
    w = np.where(has, field_attention[None, :].astype(np.float64), 0.0)
    s = w.sum(axis=1, keepdims=True)
    return (w / np.where(s > 0, s, 1.0)).astype(np.float32)


def side_only_vectors(
    tables: Sequence[np.ndarray], field_attention: np.ndarray, codes: SideCodes
) -> np.ndarray:
    """Vectors of items described by side information alone.

    Parameters
    ----------
    tables : sequence of ndarray, one (size_j, d) array per field
    field_attention : ndarray, shape (n_fields,)
        ``softmax(g)``, the learned global weights of the fields.
    codes : SideCodes
        The items' codes (at least one field).

    Returns
    -------
    ndarray of float32, shape (n, d)
        ``sum_j a_j W^j_{s^j}`` with ``a`` = :func:`cold_attention`; zero for an item with no
        known value.
    """
    w = cold_attention(field_attention, codes.has)
    out = np.zeros((len(codes.has), tables[0].shape[1]), np.float32)
    for j, (t, i, ww) in enumerate(zip(tables, codes.idx, codes.weights, strict=True)):
        out += w[:, j : j + 1] * pool(t, i, ww)
    return out
