"""Import steps on raw rows: validate and deduplicate a source, then filter its events.

Every row removed is counted in the :class:`~gemrec.data.cleaning.CleaningReport`; bad rows stop the
import (``on_error="fail"``) or are collected for ``rejected.csv`` (``on_error="skip"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gemrec.data.cleaning import CleaningReport, deduplicate, kcore, validate_events
from gemrec.data.readers import Source
from gemrec.data.tables import BadRow, Table
from gemrec.errors import DataError

__all__ = [
    "ValidSource",
    "check_not_empty",
    "clean_side_table",
    "clean_sides",
    "filter_events",
    "validate_source",
]


@dataclass
class ValidSource:
    """A source after validation: typed, deduplicated events and clean side tables.

    Attributes
    ----------
    events : pandas.DataFrame
        ``user_id``, ``item_id``, ``event_type``, ``timestamp`` (epoch seconds), ``value``,
        ``event_id`` (and ``split`` for sources with a predefined split); never empty.
    items, users, social : pandas.DataFrame or None
        Side tables keyed by raw ids, without empty or repeated keys.
    rejected : list of BadRow
        Every row skipped (only with ``on_error="skip"``).
    """

    events: pd.DataFrame
    items: pd.DataFrame | None
    users: pd.DataFrame | None
    social: pd.DataFrame | None
    rejected: list[BadRow]


def validate_source(
    src: Source, weights: dict[str, float], *, on_error: str, report: CleaningReport
) -> ValidSource:
    """Type-check the events and side tables of ``src`` and drop duplicate events.

    Raises
    ------
    DataError
        On the first bad row with ``on_error="fail"``, or when no valid event is left.
    """
    events, rejected = validate_events(
        src.events,
        weights,
        on_error=on_error,
        timestamps_required=src.timestamps_required,
        report=report,
    )
    items, users, social = clean_sides(src, on_error, rejected, report)
    events = deduplicate(events, report)
    check_not_empty(len(events), [t.path for t in src.events], report)
    return ValidSource(events, items, users, social, rejected)


def clean_sides(
    src: Source, on_error: str, rejected: list[BadRow], report: CleaningReport
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    """The items, users and social tables of ``src`` cleaned (see :func:`clean_side_table`)."""
    items = clean_side_table(src.items, ("item_id",), on_error, rejected, report, "items")
    users = clean_side_table(src.users, ("user_id",), on_error, rejected, report, "users")
    social = clean_side_table(
        src.social, ("user_id", "friend_id"), on_error, rejected, report, "social"
    )
    return items, users, social


def check_not_empty(n_events: int, paths: Sequence[str], report: CleaningReport) -> None:
    """Raise :class:`DataError` when validation and deduplication left no event."""
    if n_events == 0:
        raise DataError(
            f"no valid events in {', '.join(paths[:3])} "
            f"({report.rows_read} rows read, "
            f"{report.rejected} rejected); nothing to import"
        )


def clean_side_table(
    table: Table | None,
    keys: Sequence[str],
    on_error: str,
    rejected: list[BadRow],
    report: CleaningReport,
    kind: str,
) -> pd.DataFrame | None:
    """Strip the key columns of a side table, reject empty keys and keep each key's first row.

    Rejected rows are appended to ``rejected``; ``report.extra`` gains ``{kind}_rejected`` and
    ``{kind}_duplicates``.
    """
    if table is None:
        return None
    f = table.frame.copy()
    bad = np.zeros(len(f), dtype=bool)
    for key in keys:
        f[key] = f[key].astype(object).fillna("").astype(str).str.strip()
        empty = (f[key] == "").to_numpy()
        if empty.any() and on_error == "fail":
            i = int(np.flatnonzero(empty)[0])
            raise DataError(
                "expected a non-empty id; found an empty value",
                path=table.path,
                line=int(table.lines[i]),
                field=key,
            )
        for j in np.flatnonzero(empty & ~bad):
            line = int(table.lines[j])
            rejected.append(
                BadRow(
                    table.path,
                    line,
                    key,
                    f"{key}: expected a non-empty id; found an empty value",
                    table.raw_row(line),
                )
            )
        bad |= empty
    if table.bad_rows:
        if on_error == "fail":
            b = table.bad_rows[0]
            raise DataError(f"{b.reason}: {b.raw[:120]!r}", path=b.path, line=b.line)
        rejected.extend(table.bad_rows)
    report.extra[f"{kind}_rejected"] = int(bad.sum()) + len(table.bad_rows)
    f = f[~bad]
    dup = f.duplicated(subset=list(keys), keep="first")
    report.extra[f"{kind}_duplicates"] = int(dup.sum())
    return f[~dup.to_numpy()].reset_index(drop=True)


def filter_events(
    events: pd.DataFrame,
    *,
    min_value: float | None,
    min_user: int,
    min_item: int,
    report: CleaningReport,
) -> pd.DataFrame:
    """Keep events whose ``value`` reaches ``min_value``, then the k-core on distinct pairs.

    Raises
    ------
    DataError
        When a filter removes every event.
    """
    if min_value is not None:
        # explicit feedback as implicit: keep events whose value reaches the threshold
        low = ~(events["value"].to_numpy(np.float64) >= min_value)
        report.extra["value_filtered_events"] = int(low.sum())
        events = events[~low].reset_index(drop=True)
        if events.empty:
            raise DataError(f"--min-value {min_value} removed every event; lower it")
    if min_user <= 1 and min_item <= 1:
        return events
    u, _ = pd.factorize(events["user_id"])
    i, _ = pd.factorize(events["item_id"])
    keep, report.kcore_rounds = kcore(u, i, min_user, min_item)
    report.kcore_removed_events = int((~keep).sum())
    if keep.all():
        return events
    events = events[keep].reset_index(drop=True)
    if events.empty:
        raise DataError(
            f"the k-core filter (--min-user-interactions {min_user}, "
            f"--min-item-interactions {min_item}) "
            "removed every event; lower the thresholds"
        )
    return events
