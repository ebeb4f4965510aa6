"""Import steps from events to edges: event weights, aggregation per pair, split assignment.

A split is assigned in two places: sources with a predefined split and the temporal cut label
events (:func:`split_events`, before aggregation); random, leave-last and the cold-start splits
hold out edges, and the validation part is carved from train (:func:`split_edges`, after
aggregation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from gemrec.data import splits as splitting
from gemrec.data.cleaning import CleaningReport, aggregate_edges, event_weights
from gemrec.data.idmaps import IdMaps
from gemrec.data.store import SPLITS
from gemrec.errors import DataError

__all__ = [
    "EDGE_COLUMNS",
    "PART",
    "VALID_LAST_IN_ORDER",
    "VALID_LATEST",
    "SplitOptions",
    "aggregate",
    "iso_utc",
    "split_edges",
    "split_events",
    "weigh_events",
]

#: part codes of the split names: train 0, valid 1, test 2
PART = {name: i for i, name in enumerate(SPLITS)}
#: ``split.valid_from`` in the manifest of a validation split holding each user's latest train
#: edges by time, or by the source's own order
VALID_LATEST = "most recent train edges per user"
VALID_LAST_IN_ORDER = "last train edges per user in the source's order"
#: leading columns of ``edges.parquet``; per-type counts follow
EDGE_COLUMNS = ("user", "item", "weight", "split", "last_timestamp", "first_timestamp", "n_events")


@dataclass(frozen=True)
class SplitOptions:
    """How to split (see :func:`gemrec.data.importer.import_dataset` for each option)."""

    method: str
    test_fraction: float
    valid_fraction: float
    leave_n: int
    cut: float | None
    seed: int
    #: carve the validation part from each user's latest train edges, by time or, without
    #: times, by the source's own order, whatever the test split
    valid_latest: bool = False


def weigh_events(
    events: pd.DataFrame,
    weights: dict[str, float],
    *,
    weight_by_value: bool,
    half_life_days: float | None,
) -> tuple[np.ndarray, float | None]:
    """Each event's weight: its type's weight (x its value), decayed from the latest event.

    Returns
    -------
    weights : numpy.ndarray, shape (n_events,)
    reference_time : float or None
        The latest timestamp (epoch seconds), None when no event has one.
    """
    ts = events["timestamp"].to_numpy(np.float64)
    values = events["value"].to_numpy(np.float64) if weight_by_value else None
    ref_time = float(np.nanmax(ts)) if np.isfinite(ts).any() else None
    w = event_weights(
        events["event_type"],
        weights,
        values=values,
        timestamps=ts,
        half_life_days=half_life_days,
        reference_time=ref_time,
    )
    return w, ref_time


def split_events(events: pd.DataFrame, options: SplitOptions) -> tuple[np.ndarray, dict[str, Any]]:
    """Part codes of events for a predefined split or a temporal cut (else all train).

    Returns
    -------
    parts : numpy.ndarray of int8, shape (n_events,)
        :data:`PART` codes.
    split_info : dict
        The manifest's ``split`` entry so far.
    """
    info: dict[str, Any] = {
        "method": options.method,
        "seed": options.seed,
        "valid_fraction": options.valid_fraction,
    }
    if options.method == "predefined":
        parts = events["split"].map(PART).to_numpy(np.int8)
    elif options.method == "temporal":
        ts = events["timestamp"].to_numpy(np.float64)
        test, cut = splitting.temporal_cut(ts, fraction=options.test_fraction, cut=options.cut)
        parts = np.where(test, PART["test"], PART["train"]).astype(np.int8)
        info.update(test_fraction=options.test_fraction, cut=cut, cut_iso=iso_utc(cut))
    else:
        parts = np.zeros(len(events), dtype=np.int8)
    return parts, info


def aggregate(
    events: pd.DataFrame,
    ids: IdMaps,
    parts: np.ndarray,
    weights: np.ndarray,
    type_names: list[str],
    report: CleaningReport,
    *,
    first_row: bool = False,
) -> pd.DataFrame:
    """One edge per (user, item, part), then one per pair: the earliest part wins.

    A pair present in several parts keeps train before valid before test; the number dropped is
    reported as ``held_out_pairs_already_in_train``. With ``first_row``, a ``first_row`` column
    gives the position of each edge's first event in ``events`` (for an ordered source).
    """
    edges = aggregate_edges(
        ids.users,
        ids.items,
        parts,
        weights,
        events["timestamp"].to_numpy(np.float64),
        events["event_type"],
        type_names,
        first_row=first_row,
    )
    # edges come sorted by user, item, part: a pair's later parts follow its first one
    user, item = edges["user"].to_numpy(), edges["item"].to_numpy()
    dup_pair = np.zeros(len(edges), dtype=bool)
    dup_pair[1:] = (user[1:] == user[:-1]) & (item[1:] == item[:-1])
    n_dup = int(dup_pair.sum())
    report.extra["held_out_pairs_already_in_train"] = n_dup
    return edges[~dup_pair].reset_index(drop=True) if n_dup else edges


def split_edges(
    edges: pd.DataFrame, n_users: int, options: SplitOptions, split_info: dict[str, Any]
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """Hold out test edges (random, leave-last, cold items or users) and the validation edges.

    The validation part is carved from train per user where the source gives none; the cold
    splits hold it out with their own protocol (a disjoint share of items or users).

    Parameters
    ----------
    edges : pandas.DataFrame
        From :func:`aggregate`, with a ``part`` column.
    n_users : int
    options : SplitOptions
    split_info : dict
        From :func:`split_events`.

    Returns
    -------
    edges : pandas.DataFrame
        With a ``split`` column (train / valid / test) instead of ``part``, columns in
        :data:`EDGE_COLUMNS` order.
    part : numpy.ndarray of int8, shape (n_edges,)
        The :data:`PART` codes of ``split``.
    split_info : dict
        Completed.
    """
    info = dict(split_info)
    method, seed = options.method, options.seed
    eu = edges["user"].to_numpy()
    part = edges["part"].to_numpy().astype(np.int8)
    last_ts = edges["last_timestamp"].to_numpy(np.float64)
    if method == "random":
        part[splitting.random_holdout(eu, options.test_fraction, seed=seed)] = PART["test"]
        info["test_fraction"] = options.test_fraction
    elif method == "leave-last":
        if np.isnan(last_ts).all():
            raise DataError("--split leave-last needs timestamps; this source has none")
        part[splitting.leave_last_n_out(eu, last_ts, options.leave_n, seed=seed)] = PART["test"]
        info["leave_n"] = options.leave_n
    if method in splitting.COLD_SPLITS:
        # the validation part, if any, is held out with the same protocol
        part, info = _cold_split(edges, part, options, info)
    elif not (part == PART["valid"]).any():
        by_time = method in ("temporal", "leave-last")
        order = None
        if options.valid_latest and not by_time:
            if not np.isnan(last_ts).all():
                by_time = True
            elif "first_row" in edges:  # an ordered source without times
                order = edges["first_row"].to_numpy(np.float64)
            else:
                raise DataError(
                    "--valid-latest needs timestamps or a source that keeps each user's order "
                    "(a LightGCN file whose lines are not sorted by item); this source has neither"
                )
        valid = splitting.carve_valid(
            eu,
            part == PART["train"],
            options.valid_fraction,
            seed=seed,
            timestamps=last_ts if by_time else order,
        )
        part[valid] = PART["valid"]
        info["valid_from"] = (
            VALID_LATEST
            if by_time
            else VALID_LAST_IN_ORDER
            if order is not None
            else "random train edges per user"
        )
    else:
        info["valid_from"] = "source"
    if "first_row" in edges:  # an ordered source without times: its order (1-based; 0 reads
        # as unknown, like a time of 0), for the models
        first = edges.pop("first_row")
        edges["source_order"] = first.to_numpy(np.float64) + 1.0
    in_train = np.zeros(n_users, dtype=bool)
    in_train[eu[part == PART["train"]]] = True
    held_users = np.unique(eu[part != PART["train"]])
    info["held_out_users_without_train"] = int((~in_train[held_users]).sum())
    # the names through Arrow's dictionary cast: one string per edge, no Python object each
    split = pa.DictionaryArray.from_arrays(pa.array(part), pa.array(SPLITS))
    edges = edges.assign(split=pd.Series(split.cast(pa.string()), dtype="str")).drop(
        columns=["part"]
    )
    cols = list(EDGE_COLUMNS)
    return edges[cols + [c for c in edges.columns if c not in cols]], part, info


def _cold_split(
    edges: pd.DataFrame, part: np.ndarray, options: SplitOptions, info: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Every edge of a share of the items (users) to test, of another share to valid.

    The source's own parts (a predefined split) are replaced: the cold split decides alone.
    """
    column = splitting.COLD_SPLITS[options.method]
    keys = edges[column].to_numpy()
    test, valid = splitting.cold_holdout(
        keys, options.test_fraction, options.valid_fraction, seed=options.seed
    )
    part = np.full(len(part), PART["train"], dtype=np.int8)
    part[test] = PART["test"]
    part[valid] = PART["valid"]
    n_test, n_valid = len(np.unique(keys[test])), len(np.unique(keys[valid]))
    entity = f"{column}s"
    info = {
        **info,
        "test_fraction": options.test_fraction,
        "cold": {
            "entity": entity,
            "test": n_test,
            "valid": n_valid,
            "warm": len(np.unique(keys)) - n_test - n_valid,
        },
        "valid_from": f"cold {entity}" if n_valid else "none",
    }
    return part, info


def iso_utc(t: float | None) -> str | None:
    """ISO 8601 UTC date-time of epoch seconds ``t`` (None when missing or not finite)."""
    if t is None or not np.isfinite(t):
        return None
    return str(pd.Timestamp(t, unit="s", tz="UTC").isoformat())
