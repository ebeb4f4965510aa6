"""Population statistics: long tail, activity, funnel, time patterns, sessions, cohort retention."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gemrec.analysis.events import event_types_in_order
from gemrec.analysis.profiles import FUNNEL

__all__ = ["PopulationStats", "funnel_table", "gini", "population_stats", "weekly_retention"]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 = all equal, -> 1 = all mass on one entry).

    Notes
    -----
    With x sorted ascending, ``G = sum_i (2 i - n - 1) x_i / (n sum_i x_i)`` for i = 1..n.
    """
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = len(x)
    total = x.sum()
    if n == 0 or total <= 0:
        return 0.0
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def funnel_table(pairs: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Distinct (user, item) pairs reaching each funnel stage and the conversion between stages.

    Parameters
    ----------
    pairs : DataFrame
        Output of :func:`gemrec.analysis.profiles.pair_stages`.
    by : str, optional
        Group column (e.g. "category"); None for the overall funnel (one row).
    """
    p = pairs.assign(view_cart=pairs["view"] & pairs["cart"])
    p["cart_purchase"] = p["cart"] & p["purchase"]
    p["view_purchase"] = p["view"] & p["purchase"]
    cols = [*FUNNEL, "view_cart", "cart_purchase", "view_purchase"]
    t = p[cols].sum().to_frame().T if by is None else p.groupby(by)[cols].sum()
    t = t.astype(np.int64)
    out = pd.DataFrame(index=t.index)
    for s in FUNNEL:
        out[f"{s}_pairs"] = t[s]
    out["view_to_cart"] = t["view_cart"] / t["view"].where(t["view"] > 0)
    out["cart_to_purchase"] = t["cart_purchase"] / t["cart"].where(t["cart"] > 0)
    out["view_to_purchase"] = t["view_purchase"] / t["view"].where(t["view"] > 0)
    return out


def weekly_retention(events: pd.DataFrame, max_weeks: int = 12) -> pd.DataFrame | None:
    """Cohort retention: share of each first-activity week's users active k weeks later.

    Returns None when the log spans less than two weeks (nothing to retain over).

    Returns
    -------
    DataFrame indexed by cohort start date (str), columns ``size`` and ``week_0`` .. ``week_K``
    (week_0 = 1.0 by construction; NaN where the log ends before that week).
    """
    timed = events[events["day"] >= 0]
    if timed.empty:
        return None
    week = (timed["day"].to_numpy() - int(timed["day"].min())) // 7
    last_week = int(week.max())
    if last_week < 1:
        return None
    uw = pd.DataFrame({"user": timed["user"].to_numpy(), "week": week}).drop_duplicates()
    first = uw.groupby("user")["week"].transform("min")
    uw["offset"] = uw["week"] - first
    uw["cohort"] = first
    uw = uw[uw["offset"] <= max_weeks]
    active = uw.groupby(["cohort", "offset"])["user"].nunique().unstack(fill_value=0)
    active = active.reindex(columns=range(min(last_week, max_weeks) + 1), fill_value=0)
    size = active[0]
    ret = active.div(size, axis=0)
    # a cohort cannot be observed beyond the end of the log
    for c in ret.index:
        ret.loc[c, [o for o in ret.columns if c + o > last_week]] = np.nan
    ret.columns = [f"week_{o}" for o in ret.columns]
    day0 = int(timed["day"].min())
    ret.index = [str(np.datetime64(day0 + 7 * int(c), "D")) for c in ret.index]
    ret.insert(0, "size", size.to_numpy())
    ret.index.name = "cohort"
    return ret


@dataclass
class PopulationStats:
    """Aggregates over the whole log; ``summary`` is JSON-ready, the tables feed the report."""

    summary: dict[str, Any]
    item_counts: np.ndarray
    user_counts: np.ndarray
    by_hour: pd.Series
    by_weekday: pd.Series
    funnel: pd.DataFrame
    funnel_by_category: pd.DataFrame
    session_events: np.ndarray
    session_minutes: np.ndarray
    retention: pd.DataFrame | None
    type_counts: pd.Series = field(default_factory=pd.Series)


def population_stats(
    events: pd.DataFrame,
    pairs: pd.DataFrame,
    *,
    n_users: int,
    n_items: int,
    head_fraction: float = 0.2,
    top_categories: int = 20,
) -> PopulationStats:
    """Population statistics of a prepared event log.

    Parameters
    ----------
    events : DataFrame
        Output of :func:`gemrec.analysis.events.prepare_events`.
    pairs : DataFrame
        Output of :func:`gemrec.analysis.profiles.pair_stages`.
    n_users, n_items : int
        Catalogue sizes (items never interacted with count as zero in the long tail).
    head_fraction : float
        The "head": this fraction of most popular items.
    top_categories : int
        Categories (by event volume) listed in the per-category funnel.
    """
    ev = events
    item_counts = np.bincount(
        pairs["item"].to_numpy(), minlength=n_items
    )  # distinct users per item
    user_counts = ev.groupby("user").size().to_numpy()
    sorted_items = np.sort(item_counts)[::-1]
    total = max(int(sorted_items.sum()), 1)
    n_head = max(1, int(np.ceil(head_fraction * n_items)))
    cum = np.cumsum(sorted_items) / total
    items_for_80 = int(np.searchsorted(cum, 0.8) + 1) if total > 0 else 0
    types = event_types_in_order(ev["event_type"])
    type_counts = ev["event_type"].value_counts().reindex(types)
    timed = ev[ev["hour"] >= 0]
    by_hour = timed["hour"].value_counts().reindex(range(24), fill_value=0).astype(np.int64)
    by_weekday = timed["weekday"].value_counts().reindex(range(7), fill_value=0).astype(np.int64)
    by_weekday.index = list(WEEKDAYS)
    sess = ev.groupby("session", sort=False).agg(
        n=("item", "size"), t0=("timestamp", "min"), t1=("timestamp", "max")
    )
    s_events = sess["n"].to_numpy()
    s_minutes = ((sess["t1"] - sess["t0"]) / 60.0).to_numpy()
    funnel = funnel_table(pairs)
    cats = pairs[pairs["category"] != ""]
    top = ev[ev["category"] != ""]["category"].value_counts().index[:top_categories]
    funnel_cat = funnel_table(cats[cats["category"].isin(top)], by="category")
    funnel_cat = funnel_cat.reindex([c for c in top if c in funnel_cat.index])
    retention = weekly_retention(ev)
    ts = ev["timestamp"].to_numpy()
    ts = ts[np.isfinite(ts)]
    q = [0.5, 0.9, 0.99]
    summary: dict[str, Any] = {
        "n_events": len(ev),
        "n_users": int(n_users),
        "n_items": int(n_items),
        "n_active_users": len(user_counts),
        "n_active_items": int((item_counts > 0).sum()),
        "n_user_item_pairs": len(pairs),
        "density": len(pairs) / max(n_users * n_items, 1),
        "event_types": {t: int(c) for t, c in type_counts.items()},
        "time_span": None
        if len(ts) == 0
        else {
            "first": str(np.datetime64(int(ts.min()), "s")),
            "last": str(np.datetime64(int(ts.max()), "s")),
            "days": float((ts.max() - ts.min()) / 86400.0),
        },
        "popularity": {
            "gini": gini(item_counts),
            "head_fraction": head_fraction,
            "head_share": float(sorted_items[:n_head].sum() / total),
            "items_for_80pct_of_interactions": items_for_80,
            "share_items_for_80pct": items_for_80 / max(n_items, 1),
            "max_item_users": int(sorted_items[0]) if len(sorted_items) else 0,
            "median_item_users": float(np.median(item_counts)) if len(item_counts) else 0.0,
        },
        "user_activity": {
            "gini": gini(user_counts),
            "mean_events": float(user_counts.mean()) if len(user_counts) else 0.0,
            **{f"p{int(x * 100)}_events": float(np.quantile(user_counts, x)) for x in q},
            "max_events": int(user_counts.max()) if len(user_counts) else 0,
        },
        "sessions": {
            "n_sessions": len(s_events),
            "mean_events": float(s_events.mean()) if len(s_events) else 0.0,
            **{f"p{int(x * 100)}_events": float(np.quantile(s_events, x)) for x in q},
            "median_minutes": float(np.nanmedian(s_minutes))
            if np.isfinite(s_minutes).any()
            else None,
        },
        "funnel": _records(funnel)[0],
        "funnel_by_category": {
            str(k): v for k, v in zip(funnel_cat.index, _records(funnel_cat), strict=True)
        },
        "activity_by_hour": [int(x) for x in by_hour.to_numpy()],
        "activity_by_weekday": {k: int(v) for k, v in by_weekday.items()},
        "peak_hour": int(by_hour.to_numpy().argmax()) if by_hour.sum() else None,
        "retention": None
        if retention is None
        else {
            "cohorts": len(retention),
            "mean_week_1": _nanmean(retention["week_1"]) if "week_1" in retention else None,
            "table": {str(k): v for k, v in zip(retention.index, _records(retention), strict=True)},
        },
    }
    return PopulationStats(
        summary=summary,
        item_counts=item_counts,
        user_counts=user_counts,
        by_hour=by_hour,
        by_weekday=by_weekday,
        funnel=funnel,
        funnel_by_category=funnel_cat,
        session_events=s_events,
        session_minutes=s_minutes,
        retention=retention,
        type_counts=type_counts,
    )


def _nanmean(s: pd.Series) -> float | None:
    v = s.to_numpy(dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else None


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in df.to_dict(orient="records"):
        out.append({str(k): _scalar(v) for k, v in row.items()})
    return out


def _scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
