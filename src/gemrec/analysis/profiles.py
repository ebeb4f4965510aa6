"""Per-user behaviour profiles: one row per active user, computed with vectorised pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gemrec.analysis.events import event_types_in_order
from gemrec.errors import ParameterError

__all__ = ["DAYPARTS", "FUNNEL", "pair_stages", "user_profiles"]

#: the conversion funnel, as event types
FUNNEL = ("view", "cart", "purchase")
#: (label, first hour, last hour + 1) of local time
DAYPARTS = (("night", 0, 6), ("morning", 6, 12), ("afternoon", 12, 18), ("evening", 18, 24))


def pair_stages(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item) with a boolean column per funnel stage the pair reached.

    Returns
    -------
    DataFrame with columns user, item, category, view, cart, purchase (bool) and n_purchase (int).
    """
    flags = pd.DataFrame({"user": events["user"].to_numpy(), "item": events["item"].to_numpy()})
    et = events["event_type"].to_numpy()
    for stage in FUNNEL:
        flags[stage] = et == stage
    flags["n_purchase"] = (et == "purchase").astype(np.int64)
    flags["category"] = events["category"].to_numpy()
    agg = {**{s: "max" for s in FUNNEL}, "n_purchase": "sum", "category": "first"}
    return flags.groupby(["user", "item"], sort=True).agg(agg).reset_index()


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    return (num / den.where(den > 0)).astype(np.float64)


def user_profiles(
    events: pd.DataFrame,
    *,
    user_ids: np.ndarray | None = None,
    n_top_categories: int = 3,
    reference_time: float | None = None,
) -> pd.DataFrame:
    """One row per user with at least one event.

    Parameters
    ----------
    events : DataFrame
        Output of :func:`gemrec.analysis.events.prepare_events`.
    user_ids : ndarray of str, shape (n_users,), optional
        Raw ids, indexed by internal id; adds a ``user_id`` column.
    n_top_categories : int
        How many top categories (with their shares) to list.
    reference_time : float, optional
        "Now" for recency, epoch seconds; defaults to the last event's time.

    Returns
    -------
    DataFrame, one row per user, columns:

    * ``user``, ``user_id``; ``n_events``; ``n_<type>`` per event type; ``n_items``
    * ``first_timestamp``, ``last_timestamp`` (epoch s), ``active_days`` (distinct local dates)
    * ``n_sessions``, ``mean_session_events``, ``mean_session_minutes``
    * ``recency_days``, ``frequency``, ``monetary`` (only when values exist) and the quintile scores
      ``r_score``, ``f_score``, ``m_score`` (5 best)
    * ``n_categories``, ``category_entropy`` (bits), ``top_category_<j>`` and
      ``top_category_share_<j>`` for j = 1..n_top_categories
    * ``view_to_cart``, ``cart_to_purchase``, ``view_to_purchase`` (item-level conversion, NaN when
      the earlier stage is empty), ``repurchase_rate``
    * ``peak_hour`` (0-23, local), ``peak_weekday`` (Monday = 0), ``daypart``

    Notes
    -----
    Category entropy of a user with category shares p_c is ``H = -sum_c p_c log2 p_c``: 0 for one
    category, log2(C) when spread evenly over C categories.

    Funnel conversion is counted on distinct items: ``view_to_cart = |V ∩ C| / |V|``, V, C, P being
    the sets of items the user viewed, carted and purchased; ``cart_to_purchase = |C ∩ P| / |C|``.
    ``repurchase_rate`` is the share of purchased items bought at least twice.

    RFM uses purchases as transactions when the dataset has any, else all events: recency is the
    time from the last transaction to ``reference_time`` in days, frequency the number of
    transactions, monetary the sum of their ``value``.
    """
    if not (isinstance(n_top_categories, int | np.integer) and n_top_categories >= 0):
        raise ParameterError.invalid("n_top_categories", "a non-negative integer", n_top_categories)
    ev = events
    types = event_types_in_order(ev["event_type"])
    g = ev.groupby("user", sort=True)
    prof = pd.DataFrame({"n_events": g.size()})
    counts = pd.crosstab(ev["user"], ev["event_type"])
    for t in types:
        prof[f"n_{t}"] = counts[t].reindex(prof.index).to_numpy(np.int64)
    prof["n_items"] = g["item"].nunique()
    prof["first_timestamp"] = g["timestamp"].min()
    prof["last_timestamp"] = g["timestamp"].max()
    known_day = ev[ev["day"] >= 0]
    prof["active_days"] = known_day.groupby("user")["day"].nunique().reindex(prof.index).fillna(0)
    prof["active_days"] = prof["active_days"].astype(np.int64)

    # sessions
    sess = ev.groupby("session", sort=False).agg(
        user=("user", "first"), n=("item", "size"), t0=("timestamp", "min"), t1=("timestamp", "max")
    )
    sess["minutes"] = (sess["t1"] - sess["t0"]) / 60.0
    sg = sess.groupby("user")
    prof["n_sessions"] = sg.size()
    prof["mean_session_events"] = sg["n"].mean()
    prof["mean_session_minutes"] = sg["minutes"].mean()

    # RFM
    t_ref = float(ev["timestamp"].max()) if reference_time is None else float(reference_time)
    has_purchase = bool((ev["event_type"] == "purchase").any())
    tx = ev[ev["event_type"] == "purchase"] if has_purchase else ev
    tg = tx.groupby("user")
    prof["recency_days"] = (t_ref - tg["timestamp"].max().reindex(prof.index)) / 86400.0
    prof["frequency"] = tg.size().reindex(prof.index).fillna(0).astype(np.int64)
    has_value = bool(tx["value"].notna().any())
    if has_value:
        prof["monetary"] = tg["value"].sum(min_count=1).reindex(prof.index)
    prof["r_score"] = _quintile(-prof["recency_days"])
    prof["f_score"] = _quintile(prof["frequency"].where(prof["frequency"] > 0))
    if has_value:
        prof["m_score"] = _quintile(prof["monetary"])

    # categories
    cat = ev[ev["category"] != ""]
    cc = cat.groupby(["user", "category"], sort=False).size().rename("n").reset_index()
    cc["share"] = cc["n"] / cc.groupby("user")["n"].transform("sum")
    cc["plogp"] = -cc["share"] * np.log2(cc["share"])
    prof["n_categories"] = cc.groupby("user").size().reindex(prof.index).fillna(0).astype(np.int64)
    prof["category_entropy"] = cc.groupby("user")["plogp"].sum().reindex(prof.index)
    if n_top_categories:
        top = cc.sort_values(
            ["user", "n", "category"], ascending=[True, False, True], kind="stable"
        )
        top["rank"] = top.groupby("user").cumcount() + 1
        top = top[top["rank"] <= n_top_categories]
        for j in range(1, n_top_categories + 1):
            tj = top[top["rank"] == j].set_index("user")
            prof[f"top_category_{j}"] = tj["category"].reindex(prof.index)
            prof[f"top_category_share_{j}"] = tj["share"].reindex(prof.index)

    # funnel (item level) and repurchase
    pairs = pair_stages(ev)
    pg = pairs.groupby("user")
    n_v = pg["view"].sum()
    n_c = pg["cart"].sum()
    n_p = pg["purchase"].sum()
    vc = (pairs["view"] & pairs["cart"]).groupby(pairs["user"]).sum()
    cp = (pairs["cart"] & pairs["purchase"]).groupby(pairs["user"]).sum()
    vp = (pairs["view"] & pairs["purchase"]).groupby(pairs["user"]).sum()
    rep = (pairs["n_purchase"] >= 2).groupby(pairs["user"]).sum()
    prof["view_to_cart"] = _ratio(vc, n_v).reindex(prof.index)
    prof["cart_to_purchase"] = _ratio(cp, n_c).reindex(prof.index)
    prof["view_to_purchase"] = _ratio(vp, n_v).reindex(prof.index)
    prof["repurchase_rate"] = _ratio(rep, n_p).reindex(prof.index)

    # typical active time
    timed = ev[ev["hour"] >= 0]
    prof["peak_hour"] = _mode(timed, "hour").reindex(prof.index)
    prof["peak_weekday"] = _mode(timed, "weekday").reindex(prof.index)
    hours = timed["hour"].to_numpy()
    labels = np.empty(len(timed), dtype=object)
    for label, lo, hi in DAYPARTS:
        labels[(hours >= lo) & (hours < hi)] = label
    dp = pd.DataFrame({"user": timed["user"].to_numpy(), "daypart": labels})
    prof["daypart"] = _mode(dp, "daypart").reindex(prof.index)
    for col in ("peak_hour", "peak_weekday"):
        prof[col] = prof[col].astype("Int8")

    prof.index.name = "user"
    prof = prof.reset_index()
    prof["user"] = prof["user"].astype(np.int32)
    if user_ids is not None:
        prof.insert(1, "user_id", np.asarray(user_ids, dtype=object)[prof["user"].to_numpy()])
    return prof


def _mode(df: pd.DataFrame, col: str) -> pd.Series:
    """Most frequent value of ``col`` per user (ties: the smallest value)."""
    c = df.groupby(["user", col], sort=False).size().rename("n").reset_index()
    c = c.sort_values(["user", "n", col], ascending=[True, False, True], kind="stable")
    return c.drop_duplicates("user").set_index("user")[col]


def _quintile(x: pd.Series) -> pd.Series:
    """Score 1..5 by percentile rank (5 = highest), NaN stays missing."""
    pct = x.rank(pct=True, method="average")
    return np.ceil(pct * 5).clip(1, 5).astype("Int8")
