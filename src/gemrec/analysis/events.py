"""The event table every analysis reads, with sessions and calendar fields attached."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gemrec.data.store import Dataset
from gemrec.errors import DataError, ParameterError

__all__ = ["EVENT_ORDER", "event_types_in_order", "load_events", "prepare_events"]

#: behaviour types in funnel order; other types follow in order of appearance
EVENT_ORDER = ("view", "click", "fav", "cart", "purchase")


def event_types_in_order(types: pd.Series) -> list[str]:
    """Distinct event types, the known funnel stages first, then the rest alphabetically."""
    present = set(types.astype(str).unique().tolist())
    return [t for t in EVENT_ORDER if t in present] + sorted(present - set(EVENT_ORDER))


def load_events(dataset: Dataset) -> pd.DataFrame:
    """The dataset's events with ``category`` (str, "" unknown) joined from the item table.

    Datasets imported without an event log fall back to one event per edge (type
    ``"interaction"``, time ``last_timestamp``).

    Returns
    -------
    DataFrame with columns user (int32), item (int32), event_type (str), timestamp (float64,
    epoch s, NaN unknown), value (float64, NaN unknown), category (str).
    """
    if dataset.has_events:
        ev = dataset.events
        missing = [c for c in ("user", "item", "event_type", "timestamp") if c not in ev.columns]
        if missing:
            raise DataError(f"events table lacks columns {missing}", path=str(dataset.path))
        ev = ev[["user", "item", "event_type", "timestamp"] + (["value"] if "value" in ev else [])]
        ev = ev.copy()
    else:
        e = dataset.edges
        ts = e["last_timestamp"] if "last_timestamp" in e else np.nan
        ev = pd.DataFrame(
            {"user": e["user"], "item": e["item"], "event_type": "interaction", "timestamp": ts}
        )
    if "value" not in ev:
        ev["value"] = np.nan
    items = dataset.items
    if "category" in items:
        cat = items["category"].astype("string").fillna("").to_numpy(dtype=object)
        ev["category"] = cat[ev["item"].to_numpy()]
    else:
        ev["category"] = ""
    return ev


def prepare_events(
    events: pd.DataFrame, *, session_gap_minutes: float = 30.0, utc_offset_hours: float = 0.0
) -> pd.DataFrame:
    """Sort events by (user, time) and add calendar and session columns.

    Parameters
    ----------
    events : DataFrame
        Columns user, item, event_type, timestamp, value, category (see :func:`load_events`).
    session_gap_minutes : float
        A gap longer than this between two consecutive events of a user starts a new session.
    utc_offset_hours : float
        Local time = UTC + offset; used for hour of day, weekday and active days.

    Returns
    -------
    DataFrame
        The input plus ``hour`` (int8, -1 unknown), ``weekday`` (int8, Monday = 0, -1 unknown),
        ``day`` (int64 days since epoch, local; -1 unknown), ``session`` (int64, global session id).

    Notes
    -----
    With events sorted by user then time, event j starts a session when
    ``user_j != user_{j-1}`` or ``t_j - t_{j-1} > gap``; the session id is the running count of
    starts. Events with unknown time each form their own session.
    """
    if not (isinstance(session_gap_minutes, int | float) and session_gap_minutes > 0):
        raise ParameterError.invalid(
            "session_gap_minutes", "a positive number", session_gap_minutes
        )
    ev = events.copy()
    ev["event_type"] = ev["event_type"].astype(str)
    ev["timestamp"] = ev["timestamp"].astype(np.float64)
    ev["value"] = ev["value"].astype(np.float64)
    ev = ev.sort_values(["user", "timestamp"], kind="stable", na_position="last").reset_index(
        drop=True
    )
    t = ev["timestamp"].to_numpy()
    known = np.isfinite(t)
    local = np.where(known, t + utc_offset_hours * 3600.0, 0.0)
    day = np.floor(local / 86400.0).astype(np.int64)
    ev["day"] = np.where(known, day, -1)
    ev["hour"] = np.where(known, np.floor((local - day * 86400.0) / 3600.0), -1).astype(np.int8)
    # 1970-01-01 was a Thursday (weekday 3 with Monday = 0)
    ev["weekday"] = np.where(known, (day + 3) % 7, -1).astype(np.int8)
    u = ev["user"].to_numpy()
    start = np.ones(len(ev), dtype=bool)
    if len(ev) > 1:
        gap = np.diff(t)
        same_user = u[1:] == u[:-1]
        continued = same_user & np.isfinite(gap) & (gap <= session_gap_minutes * 60.0)
        start[1:] = ~continued
    ev["session"] = np.cumsum(start) - 1
    return ev
