"""Validation and cleaning: raw event tables -> typed events -> weighted user-item edges.

Steps, in order (each one vectorised; Python loops only touch rejected rows):

1. :func:`validate_events`: ids stripped of surrounding whitespace (otherwise kept verbatim as
   strings), event types checked against the weight table, timestamps parsed (epoch seconds, epoch
   milliseconds or ISO 8601), ``value`` parsed as a number. Bad rows either stop the import
   (``on_error="fail"``) or are collected for ``rejected.csv`` (``"skip"``).
2. :func:`deduplicate`: exact duplicate events dropped, then repeated ``event_id`` values (first
   occurrence kept).
3. :func:`kcore`: optional k-core filter on distinct user-item pairs, iterated to a fixed point.
4. :func:`event_weights`: behaviour weights, optionally times ``value`` and a time decay.
5. :func:`aggregate_edges`: one weighted edge per (user, item, part) with per-type counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gemrec.data.event_types import EVENT_WEIGHTS
from gemrec.data.tables import BadRow, Table
from gemrec.errors import DataError, ParameterError

__all__ = [
    "CleaningReport",
    "aggregate_edges",
    "deduplicate",
    "event_weights",
    "kcore",
    "parse_timestamps",
    "parse_weights",
    "validate_events",
]

#: numbers at or above this are epoch milliseconds (1e11 s is the year 5138; 1e11 ms is 1973)
MS_THRESHOLD = 1e11
SECONDS_PER_DAY = 86400.0


@dataclass
class CleaningReport:
    """Row accounting: ``rows_read == accepted + rejected + deduplicated``."""

    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates_exact: int = 0
    duplicates_event_id: int = 0
    kcore_removed_events: int = 0
    kcore_rounds: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def deduplicated(self) -> int:
        return self.duplicates_exact + self.duplicates_event_id

    def as_dict(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "deduplicated": self.deduplicated,
            "duplicates_exact": self.duplicates_exact,
            "duplicates_event_id": self.duplicates_event_id,
            "kcore_removed_events": self.kcore_removed_events,
            "kcore_rounds": self.kcore_rounds,
            **self.extra,
        }


def parse_weights(
    spec: str | Sequence[str] | Mapping[str, float] | None, base: Mapping[str, float] | None = None
) -> dict[str, float]:
    """``"view=1,purchase=10"`` -> weights; given types override ``base``.

    ``base`` defaults to :data:`gemrec.data.event_types.EVENT_WEIGHTS`.
    """
    out = dict(EVENT_WEIGHTS if base is None else base)
    if spec is None:
        return out
    if isinstance(spec, Mapping):
        items: list[tuple[str, float]] = [(str(k), float(v)) for k, v in spec.items()]
    else:
        entries = [spec] if isinstance(spec, str) else list(spec)
        items = []
        for entry in (e for s in entries for e in s.split(",")):
            if not entry.strip():
                continue
            key, sep, value = entry.partition("=")
            if not sep or not key.strip():
                raise ParameterError.invalid(
                    "--weights", "TYPE=WEIGHT pairs such as view=1,purchase=10", entry
                )
            try:
                items.append((key, float(value.strip())))
            except ValueError:
                raise ParameterError.invalid(
                    f"--weights {key.strip()}", "a number", value
                ) from None
    for name, weight in items:
        if not np.isfinite(weight) or weight < 0.0:
            raise ParameterError.invalid(f"--weights {name}", "a finite number >= 0", weight)
        out[str(name).strip().lower()] = float(weight)
    return out


# ------------------------------------------------------------------------------------ parsing
def parse_timestamps(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse timestamps to float64 epoch seconds.

    Accepts epoch seconds, epoch milliseconds (values >= 1e11) and ISO 8601 date-times (naive
    ones read as UTC).

    Returns
    -------
    seconds : numpy.ndarray of float64, shape (n,)
        NaN where missing or unparseable.
    bad : numpy.ndarray of bool, shape (n,)
        Non-empty values that could not be parsed.
    """
    text = _strip(raw)
    empty = (text == "").to_numpy()
    num, _ = to_float(text)
    finite = np.isfinite(num)
    num = np.where(np.abs(num) >= MS_THRESHOLD, num / 1000.0, num)
    out = np.where(finite, num, np.nan)
    rest = ~finite & ~empty & ~np.isin(text.to_numpy(dtype=object), ["nan", "NaN", "inf", "-inf"])
    if rest.any():
        sub = text[rest]
        dt = pd.to_datetime(sub, format="ISO8601", utc=True, errors="coerce")
        ok = dt.notna().to_numpy()
        secs = np.full(len(sub), np.nan)
        if ok.any():
            epoch = pd.Timestamp("1970-01-01", tz="UTC")
            secs[ok] = (dt[ok] - epoch).dt.total_seconds().to_numpy()
        out[np.flatnonzero(rest)] = secs
    bad = ~empty & np.isnan(out)
    return out, bad


_NUMBER = r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"


def to_float(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse stripped strings as float64 (vectorised in Arrow).

    Returns the values (NaN where not a number) and a mask of the non-empty strings that are not
    numbers.
    """
    arr = pa.array(text, type=pa.string(), from_pandas=True).fill_null("")
    is_num = pc.match_substring_regex(arr, _NUMBER)
    vals = pc.cast(pc.if_else(is_num, arr, pa.scalar("nan")), pa.float64())
    empty = pc.equal(arr, "")
    bad = ~is_num.to_numpy(zero_copy_only=False) & ~empty.to_numpy(zero_copy_only=False)
    return vals.to_numpy(zero_copy_only=False).astype(np.float64), bad


def _strip(series: pd.Series) -> pd.Series:
    """Strings with surrounding whitespace removed and missing values as ``""`` (str dtype)."""
    if series.dtype != "str":
        series = series.astype(object).where(series.notna(), "").astype("str")
    return series.fillna("").str.strip()


def validate_events(
    tables: Sequence[Table],
    weights: Mapping[str, float],
    *,
    on_error: str = "fail",
    timestamps_required: bool = True,
    report: CleaningReport | None = None,
) -> tuple[pd.DataFrame, list[BadRow]]:
    """Type-check event rows; return the good ones and the rejected ones.

    Parameters
    ----------
    tables : sequence of Table
        Canonical string columns ``user_id, item_id, event_type, timestamp`` (+ ``value``,
        ``event_id``, ``split``).
    weights : mapping
        Known event types (lower case) -> weight; any other type is a bad row.
    on_error : {"fail", "skip"}
        ``"fail"`` raises :class:`DataError` for the first bad row (file order, then line).
    timestamps_required : bool
        A missing timestamp is a bad row.

    Returns
    -------
    events : pandas.DataFrame
        ``user_id, item_id, event_type`` (str), ``timestamp`` (float64 epoch s, NaN if unknown),
        ``value`` (float64), ``event_id`` (object, None if absent), ``split`` (if given),
        ``source`` (int16 index into ``tables``), ``line`` (int64).
    rejected : list of BadRow
    """
    if on_error not in ("fail", "skip"):
        raise ParameterError.invalid("--on-error", "'fail' or 'skip'", on_error)
    report = report if report is not None else CleaningReport()
    known = sorted(weights)
    frames: list[pd.DataFrame] = []
    rejected: list[BadRow] = []
    for si, table in enumerate(tables):
        f = table.frame
        n = len(f)
        report.rows_read += table.n_read
        cols: dict[str, object] = {}
        checks: list[tuple[str, np.ndarray, str]] = []
        for key in ("user_id", "item_id"):
            s = _strip(f[key])
            cols[key] = s
            checks.append((key, (s == "").to_numpy(), "a non-empty id"))
        et = _strip(f["event_type"]).str.lower()
        cols["event_type"] = et
        checks.append(("event_type", ~et.isin(known).to_numpy(), f"one of {', '.join(known)}"))
        ts_raw = f["timestamp"] if "timestamp" in f else pd.Series([""] * n, dtype=object)
        ts, ts_bad = parse_timestamps(ts_raw)
        if timestamps_required:
            ts_bad = ts_bad | np.isnan(ts)
        cols["timestamp"] = ts
        checks.append(
            ("timestamp", ts_bad, "epoch seconds, epoch milliseconds or an ISO 8601 date-time")
        )
        if "value" in f:
            vtext = _strip(f["value"])
            v, v_bad = to_float(vtext)
            v_bad = v_bad | (~np.isfinite(v) & (vtext != "").to_numpy())  # e.g. 1e999
            cols["value"] = np.where(np.isfinite(v), v, np.nan)
            checks.append(("value", v_bad, "a finite number (quantity, price or rating)"))
        else:
            cols["value"] = np.full(n, np.nan)
        if "event_id" in f:
            eid = _strip(f["event_id"])
            cols["event_id"] = eid.where(eid != "", None).astype(object)
        else:
            cols["event_id"] = np.full(n, None, dtype=object)
        if "split" in f:
            cols["split"] = f["split"].to_numpy(dtype=object)
        bad_any = np.zeros(n, dtype=bool)
        first_field = np.full(n, -1, dtype=np.int64)
        for k, (_, mask, _) in enumerate(checks):
            new = mask & ~bad_any
            first_field[new] = k
            bad_any |= mask
        bad_idx = np.flatnonzero(bad_any)
        row_bad = list(table.bad_rows)
        if len(bad_idx) and on_error == "fail":
            i = int(bad_idx[0])
            line = int(table.lines[i])
            if not row_bad or line < row_bad[0].line:
                name, _, expected = checks[int(first_field[i])]
                found = f[name].iloc[i] if name in f else ""
                raise DataError(
                    f"expected {expected}; found {_show(found)}{_HINTS.get(name, '')}",
                    path=table.path,
                    line=line,
                    field=name,
                )
        if row_bad and on_error == "fail":
            b = row_bad[0]
            raise DataError(f"{b.reason}: {_show(b.raw, 120)}", path=b.path, line=b.line)
        for k, (name, _, expected) in enumerate(checks):  # only rejected rows reach Python
            idx = bad_idx[first_field[bad_idx] == k]
            if not len(idx):
                continue
            found_values = f[name].take(idx).tolist() if name in f else [""] * len(idx)
            for line, found in zip(table.lines[idx].tolist(), found_values, strict=True):
                reason = f"{name}: expected {expected}; found {_show(found)}"
                rejected.append(BadRow(table.path, line, name, reason, table.raw_row(line)))
        rejected.extend(BadRow(b.path, b.line, b.field, b.reason, b.raw) for b in row_bad)
        good = ~bad_any
        keep = None if good.all() else np.flatnonzero(good)
        data: dict[str, object] = {}
        for col_name, col in cols.items():
            if isinstance(col, np.ndarray):
                data[col_name] = col if keep is None else col[keep]
            else:
                assert isinstance(col, pd.Series)  # internal invariant, not user input
                data[col_name] = (col if keep is None else col.iloc[keep]).reset_index(drop=True)
        frame = pd.DataFrame(data)
        frame["source"] = np.int16(si)
        frame["line"] = table.lines[good]
        frames.append(frame)
    events = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["user_id", "item_id"])
    )
    report.rejected += len(rejected)
    rejected.sort(key=lambda b: (b.path, b.line))
    return events, rejected


_HINTS = {
    "event_type": " (declare other types with --weights TYPE=WEIGHT, or skip such rows with "
    "--on-error skip)",
    "timestamp": " (map another column with --columns timestamp=NAME)",
}


def _show(value: object, limit: int = 60) -> str:
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text) if text else "an empty value"


# ------------------------------------------------------------------------------------ cleaning
def deduplicate(events: pd.DataFrame, report: CleaningReport | None = None) -> pd.DataFrame:
    """Drop exact duplicate events, then repeated ``event_id`` values (first occurrence kept)."""
    report = report if report is not None else CleaningReport()
    key = [
        c
        for c in ("user_id", "item_id", "event_type", "timestamp", "value", "event_id", "split")
        if c in events
    ]
    dup = events.duplicated(subset=key, keep="first").to_numpy()
    report.duplicates_exact += int(dup.sum())
    events = events[~dup]
    if "event_id" in events:
        has_id = events["event_id"].notna().to_numpy()
        dup_id = has_id & events["event_id"].duplicated(keep="first").to_numpy()
        report.duplicates_event_id += int(dup_id.sum())
        events = events[~dup_id]
    report.accepted = len(events)
    return events.reset_index(drop=True)


def kcore(
    users: np.ndarray,
    items: np.ndarray,
    min_user: int = 0,
    min_item: int = 0,
) -> tuple[np.ndarray, int]:
    """Keep-mask of a k-core over distinct user-item pairs, iterated to a fixed point.

    Parameters
    ----------
    users, items : numpy.ndarray of int, shape (n,)
        Internal ids (repeats allowed: an interaction is a distinct pair).
    min_user, min_item : int
        Minimum distinct items per user / users per item.

    Returns
    -------
    keep : numpy.ndarray of bool, shape (n,)
    rounds : int
        Filtering passes until nothing changed.
    """
    keep = np.ones(len(users), dtype=bool)
    if min_user <= 1 and min_item <= 1:
        return keep, 0
    pair = users.astype(np.int64) * (int(items.max(initial=0)) + 1) + items
    _, first = np.unique(pair, return_index=True)
    uniq = np.zeros(len(users), dtype=bool)
    uniq[first] = True
    nu, ni = int(users.max(initial=-1)) + 1, int(items.max(initial=-1)) + 1
    rounds = 0
    while True:
        rounds += 1
        sel = keep & uniq
        du = np.bincount(users[sel], minlength=nu)
        di = np.bincount(items[sel], minlength=ni)
        new_keep = keep & (du[users] >= min_user) & (di[items] >= min_item)
        if (new_keep == keep).all():
            return keep, rounds
        keep = new_keep


def event_weights(
    event_types: np.ndarray,
    weights: Mapping[str, float],
    *,
    values: np.ndarray | None = None,
    timestamps: np.ndarray | None = None,
    half_life_days: float | None = None,
    reference_time: float | None = None,
) -> np.ndarray:
    """Weight of each event (float64).

    Notes
    -----
    .. math:: w_e = w_{\\mathrm{type}(e)} \\cdot v_e \\cdot 2^{-(t_{\\mathrm{ref}} - t_e) / h}

    with :math:`v_e` the event's value when weighting by value (1 otherwise), :math:`h` the
    half-life in seconds and :math:`t_{\\mathrm{ref}}` the latest timestamp (events without a
    timestamp are not decayed).
    """
    codes = pd.Index(list(weights)).get_indexer(event_types)
    if (codes < 0).any():
        raise DataError(
            f"unknown event type {np.asarray(event_types)[codes < 0][0]!r}; "
            f"known: {', '.join(weights)}"
        )
    w = np.asarray(list(weights.values()), dtype=np.float64)[codes]
    if values is not None:
        w = w * np.where(np.isnan(values), 1.0, values)
    if half_life_days is not None:
        if not half_life_days > 0:
            raise ParameterError.invalid("--half-life-days", "a number > 0", half_life_days)
        ts = np.asarray(timestamps, dtype=np.float64)
        if reference_time is None:
            reference_time = float(np.nanmax(ts)) if np.isfinite(ts).any() else 0.0
        age = np.where(np.isnan(ts), 0.0, reference_time - ts)
        w = w * np.exp2(-age / (half_life_days * SECONDS_PER_DAY))
    return np.asarray(w, dtype=np.float64)


def aggregate_edges(
    users: np.ndarray,
    items: np.ndarray,
    parts: np.ndarray,
    weights: np.ndarray,
    timestamps: np.ndarray,
    event_types: np.ndarray,
    type_names: Sequence[str],
    *,
    first_row: bool = False,
) -> pd.DataFrame:
    """Sum events into one edge per (user, item, part).

    Returns
    -------
    pandas.DataFrame
        ``user, item`` (int32), ``part`` (int8), ``weight`` (float32), ``n_events`` (int32),
        ``first_timestamp``, ``last_timestamp`` (float64, NaN if unknown) and ``n_<type>`` (int32)
        for each of ``type_names``; sorted by user, item, part. With ``first_row``, also
        ``first_row`` (int64): the position of the edge's first event in the input.
    """
    n_items = int(items.max(initial=0)) + 1
    n_parts = int(parts.max(initial=0)) + 1
    n = len(users)
    key = (users.astype(np.int64) * n_items + items) * n_parts + parts
    # one stable sort groups the events (what np.unique does inside); each group is then a
    # contiguous segment of the sorted events, reduced in place (reduceat), without the hash
    # tables of a pandas groupby or a per-event group index: per event, only the order, the
    # sorted keys and one permuted column at a time are alive
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    del key
    starts = np.flatnonzero(np.concatenate([[True], sorted_key[1:] != sorted_key[:-1]]))
    uniq = sorted_key[starts]
    del sorted_key
    m = len(uniq)
    out = {
        "user": (uniq // n_parts // n_items).astype(np.int32),
        "item": (uniq // n_parts % n_items).astype(np.int32),
        "part": (uniq % n_parts).astype(np.int8),
    }
    del uniq
    if first_row:  # the sort is stable: a group's first member is its earliest event
        out["first_row"] = order[starts].astype(np.int64)
    w_sorted = np.asarray(weights, np.float64)[order]
    out["weight"] = (np.add.reduceat(w_sorted, starts) if m else w_sorted).astype(np.float32)
    del w_sorted
    out["n_events"] = np.diff(np.append(starts, n)).astype(np.int32)
    ts = np.asarray(timestamps, dtype=np.float64)
    if m and np.isfinite(ts).any():
        ts_sorted = ts[order]
        # fmin / fmax skip NaN (a group with no timestamp stays NaN), as pandas' min / max do
        out["first_timestamp"] = np.fmin.reduceat(ts_sorted, starts)
        out["last_timestamp"] = np.fmax.reduceat(ts_sorted, starts)
        del ts_sorted
    else:
        out["first_timestamp"] = np.full(m, np.nan)
        out["last_timestamp"] = np.full(m, np.nan)
    codes = _type_codes(event_types, type_names)[order]
    del order
    for k, name in enumerate(type_names):
        out[f"n_{name}"] = (
            np.add.reduceat(codes == k, starts, dtype=np.int32) if m else np.zeros(0, np.int32)
        )
    return pd.DataFrame(out)


def _type_codes(event_types: Any, type_names: Sequence[str]) -> np.ndarray:
    """Each event's position in ``type_names`` (int8; -1 for another type)."""
    lookup = pd.Index(list(type_names))
    if isinstance(getattr(event_types, "dtype", None), pd.CategoricalDtype):
        cat = pd.Categorical(event_types)
        per_category = lookup.get_indexer(cat.categories).astype(np.int8)
        out: np.ndarray = np.append(per_category, np.int8(-1))[cat.codes]  # code -1 -> -1
        return out
    codes: np.ndarray = lookup.get_indexer(np.asarray(event_types)).astype(np.int8)
    return codes
