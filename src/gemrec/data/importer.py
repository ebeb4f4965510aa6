"""``import_dataset``: sources -> validated, cleaned, split dataset directory.

The pipeline (each stage in its own module)::

    readers.read_source      files -> string tables with line numbers (+ side tables)
    cleaning.validate_events type checks; bad rows fail the import or go to rejected.csv
    cleaning.deduplicate     exact duplicates and repeated event_id
    cleaning.kcore           optional k-core filter
    cleaning.event_weights   behaviour weights (x value) x time decay
    splits.*                 predefined / random / temporal / leave-last + valid carved from train
    cleaning.aggregate_edges weighted user-item edges with per-type counts
    store.write_dataset      Parquet tables + manifest.json (atomic)
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gemrec import __version__
from gemrec.data import splits as splitting
from gemrec.data.cleaning import (
    CleaningReport,
    aggregate_edges,
    deduplicate,
    event_weights,
    kcore,
    parse_timestamps,
    parse_weights,
    validate_events,
)
from gemrec.data.readers import Source, parse_columns, read_frames, read_side_table, read_source
from gemrec.data.store import SPLITS, write_dataset
from gemrec.data.tables import (
    MAX_LINE_BYTES,
    BadRow,
    Table,
    fingerprint_file,
    fingerprint_frame,
)
from gemrec.errors import DataError, ParameterError

__all__ = ["ImportResult", "import_dataset"]

_NUMERIC_META = ("price", "age")
_PART = {name: i for i, name in enumerate(SPLITS)}  # train 0, valid 1, test 2


@dataclass
class ImportResult:
    """What :func:`import_dataset` wrote and how the rows were accounted for."""

    path: Path
    manifest: dict[str, Any]
    report: CleaningReport
    rejected: list[BadRow] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """The one-line summary printed at the end of ``gemrec import``."""
        c = self.manifest["counts"]
        s = c["splits"]
        return (
            f"imported {self.manifest['format']}: {c['users']:,} users, {c['items']:,} items, "
            f"{c['edges']:,} edges (train {s['train']:,}, valid {s['valid']:,}, "
            f"test {s['test']:,}) "
            f"from {self.report.rows_read:,} rows ({self.report.rejected:,} rejected, "
            f"{self.report.deduplicated:,} duplicates) in {self.seconds:.1f}s -> {self.path}"
        )


class _Progress:
    """Stage-level progress bar on stderr, only for large inputs on a terminal."""

    STAGES = 7

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.STAGES, desc="import", unit="stage", file=sys.stderr, leave=False
            )

    def step(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(name)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _sorted_ids(values: pd.Series) -> tuple[np.ndarray, np.ndarray, str]:
    """Codes and raw ids, ordered numerically when every id is a plain integer, else as text.

    A stable, content-only order makes internal ids independent of row order (and keeps
    LightGCN's 0-based ids equal to the internal ids).
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


def _clean_side(
    table: Table | None,
    keys: Sequence[str],
    on_error: str,
    rejected: list[BadRow],
    report: CleaningReport,
    kind: str,
) -> pd.DataFrame | None:
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


def _with_metadata(
    base: pd.DataFrame, meta: pd.DataFrame | None, key: str
) -> tuple[pd.DataFrame, int]:
    """Left-join metadata on the raw id; returns the table and the metadata rows with no match."""
    if meta is None or meta.empty:
        return base, 0
    meta = meta.drop(columns=[c for c in meta.columns if c in base.columns and c != key])
    out = base.merge(meta, on=key, how="left", validate="one_to_one")
    for col in meta.columns:
        if col == key:
            continue
        if col in _NUMERIC_META:
            num = pd.to_numeric(out[col], errors="coerce")
            if num.notna().sum() == (out[col].fillna("") != "").sum():
                out[col] = num.astype(np.float64)
                continue
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    unmatched = int((~meta[key].isin(base[key])).sum())
    return out, unmatched


def _parse_cut(test_after: str | float | None) -> float | None:
    if test_after is None:
        return None
    secs, bad = parse_timestamps(pd.Series([str(test_after)]))
    if bad[0] or np.isnan(secs[0]):
        raise ParameterError.invalid(
            "--test-after", "epoch seconds/milliseconds or an ISO 8601 date-time", test_after
        )
    return float(secs[0])


def _content_hash(edges: pd.DataFrame, part: np.ndarray) -> str:
    h = hashlib.sha256()
    for col in ("user", "item", "weight"):
        h.update(np.ascontiguousarray(edges[col].to_numpy()).tobytes())
    h.update(part.astype(np.int8).tobytes())
    return h.hexdigest()


def _rejected_csv(rejected: list[BadRow]) -> bytes:
    buf = io.StringIO()
    pd.DataFrame(
        {
            "file": [b.path for b in rejected],
            "line": [b.line for b in rejected],
            "field": [b.field or "" for b in rejected],
            "reason": [b.reason for b in rejected],
            "raw": [b.raw for b in rejected],
        }
    ).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def _check_output(output: Path, sources: Sequence[Path]) -> None:
    if output.exists():
        if not output.is_dir():
            raise ParameterError.invalid(
                "-o", "a directory path (it is an existing file)", str(output)
            )
        if any(output.iterdir()) and not (output / "manifest.json").is_file():
            raise ParameterError.invalid(
                "-o",
                "a new or empty directory, or an existing gemrec dataset to replace",
                str(output),
            )
    out = output.resolve()
    for s in sources:
        sp = Path(s).resolve()
        if sp == out or out in sp.parents:
            raise ParameterError.invalid(
                "-o", "a directory that does not hold the sources", str(output)
            )


def import_dataset(
    sources: Sequence[str | Path | pd.DataFrame],
    output: str | Path,
    *,
    format: str = "events",
    items: str | Path | pd.DataFrame | None = None,
    users: str | Path | pd.DataFrame | None = None,
    social: str | Path | pd.DataFrame | None = None,
    columns: str | Sequence[str] | Mapping[str, str] | None = None,
    on_error: str = "fail",
    weights: str | Sequence[str] | Mapping[str, float] | None = None,
    weight_by_value: bool | None = None,
    half_life_days: float | None = None,
    min_user_interactions: int = 0,
    min_item_interactions: int = 0,
    min_value: float | None = None,
    split: str | None = None,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.1,
    leave_n: int = 1,
    test_after: str | float | None = None,
    seed: int = 0,
    max_line_bytes: int = MAX_LINE_BYTES,
    progress: bool = False,
) -> ImportResult:
    """Read, validate, clean and split ``sources`` and write a dataset directory.

    Parameters
    ----------
    sources : sequence of path or of pandas.DataFrame
        Files or directories, as ``--format`` expects; or in-memory event tables
        (``format="events"``), e.g. from :mod:`gemrec.data.synthetic`.
    output : path
        The dataset directory (replaced atomically; nothing is written if the import fails).
    format : {"events", "lightgcn", "movielens", "taobao", "lastfm"}
    items, users, social : path or pandas.DataFrame, optional
        Side tables (CSV/TSV/JSONL/Parquet with a header) keyed by ``item_id`` / ``user_id`` /
        ``user_id, friend_id``; they replace what the format provides.
    columns : str or mapping, optional
        ``user_id=uid,item_id=sku,...``: canonical name = name in the source.
    on_error : {"fail", "skip"}
        Stop at the first bad row (nothing written), or skip bad rows into ``rejected.csv``.
    weights : str or mapping, optional
        Event type weights overriding the defaults (``view=1,click=2,fav=3,cart=4,purchase=5``).
    weight_by_value : bool, optional
        Multiply each event's weight by its ``value`` (default: only for ``lastfm`` play counts).
    half_life_days : float, optional
        Exponential time decay of event weights, relative to the latest event.
    min_user_interactions, min_item_interactions : int
        k-core thresholds on distinct user-item pairs (0 = off), iterated to a fixed point.
    min_value : float, optional
        Keep only events whose ``value`` is at least this (e.g. ratings >= 4 as positives);
        events without a value are dropped too.
    split : {"predefined", "random", "temporal", "leave-last", "none"}, optional
        Default: "predefined" for sources that carry a split (lightgcn), else "random".
    test_fraction : float
        Per-user share for "random"; global share of events after the cut for "temporal".
    valid_fraction : float
        Per-user share of train moved to "valid" (random, or most recent for time-based splits).
    leave_n : int
        Edges per user held out by "leave-last".
    test_after : str or float, optional
        Explicit cut time for "temporal" (epoch or ISO 8601).
    seed : int
        Seeds every random choice; the same inputs and options give the same dataset.

    Returns
    -------
    ImportResult
    """
    start = time.perf_counter()
    output = Path(output)
    if on_error not in ("fail", "skip"):
        raise ParameterError.invalid("--on-error", "'fail' or 'skip'", on_error)
    for name, v in (
        ("--min-user-interactions", min_user_interactions),
        ("--min-item-interactions", min_item_interactions),
    ):
        if int(v) != v or v < 0:
            raise ParameterError.invalid(name, "an integer >= 0", v)
    if split is not None and split not in splitting.SPLIT_METHODS:
        raise ParameterError.invalid(
            "--split", f"one of {', '.join(splitting.SPLIT_METHODS)}", split
        )
    col_map = dict(columns) if isinstance(columns, Mapping) else parse_columns(columns)
    frames = [s for s in sources if isinstance(s, pd.DataFrame)]
    if frames and (len(frames) != len(sources) or format != "events"):
        raise ParameterError.invalid(
            "sources", "only DataFrames (with format='events') or only paths", "a mix"
        )
    source_paths = [Path(s) for s in sources if not isinstance(s, pd.DataFrame)]
    _check_output(output, source_paths)
    cut = _parse_cut(test_after)

    big = sum(p.stat().st_size for p in source_paths if p.is_file()) > (64 << 20)
    bar = _Progress(progress and big)
    try:
        if frames:
            src = read_frames(frames, col_map)
        else:
            src = read_source(format, source_paths, col_map, max_line_bytes=max_line_bytes)
        for kind, side in (("items", items), ("users", users), ("social", social)):
            if side is not None:
                setattr(
                    src, kind, read_side_table(side, kind, col_map, max_line_bytes=max_line_bytes)
                )
                src.files.append(
                    fingerprint_frame(side, f"<{kind} DataFrame>")
                    if isinstance(side, pd.DataFrame)
                    else Path(side)
                )
        bar.step("read")
        return _build(
            src,
            output,
            bar=bar,
            start=start,
            on_error=on_error,
            weights=parse_weights(weights, src.default_weights),
            weight_by_value=src.weight_by_value if weight_by_value is None else weight_by_value,
            half_life_days=half_life_days,
            min_user=int(min_user_interactions),
            min_item=int(min_item_interactions),
            min_value=min_value,
            method=split or ("predefined" if src.predefined_split else "random"),
            test_fraction=test_fraction,
            valid_fraction=valid_fraction,
            leave_n=leave_n,
            cut=cut,
            seed=seed,
            options={
                "columns": col_map,
                "on_error": on_error,
                "items": _describe(items),
                "users": _describe(users),
                "social": _describe(social),
            },
        )
    finally:
        bar.close()


def _build(
    src: Source,
    output: Path,
    *,
    bar: _Progress,
    start: float,
    on_error: str,
    weights: dict[str, float],
    weight_by_value: bool,
    half_life_days: float | None,
    min_user: int,
    min_item: int,
    min_value: float | None,
    method: str,
    test_fraction: float,
    valid_fraction: float,
    leave_n: int,
    cut: float | None,
    seed: int,
    options: dict[str, Any],
) -> ImportResult:
    if method == "predefined" and not src.predefined_split:
        raise ParameterError.invalid(
            "--split",
            f"random, temporal, leave-last or none (format '{src.format}' has no predefined split)",
            method,
        )
    report = CleaningReport()
    events, rejected = validate_events(
        src.events,
        weights,
        on_error=on_error,
        timestamps_required=src.timestamps_required,
        report=report,
    )
    items_meta = _clean_side(src.items, ("item_id",), on_error, rejected, report, "items")
    users_meta = _clean_side(src.users, ("user_id",), on_error, rejected, report, "users")
    social_raw = _clean_side(
        src.social, ("user_id", "friend_id"), on_error, rejected, report, "social"
    )
    events = deduplicate(events, report)
    bar.step("validate")
    if events.empty:
        raise DataError(
            f"no valid events in {', '.join(t.path for t in src.events[:3])} "
            f"({report.rows_read} rows read, "
            f"{report.rejected} rejected); nothing to import"
        )

    if min_value is not None:
        # explicit feedback as implicit: keep events whose value reaches the threshold
        low = ~(events["value"].to_numpy(np.float64) >= min_value)
        report.extra["value_filtered_events"] = int(low.sum())
        events = events[~low].reset_index(drop=True)
        if events.empty:
            raise DataError(f"--min-value {min_value} removed every event; lower it")
    # k-core on distinct pairs, then contiguous ids over what is left
    keep = np.ones(len(events), dtype=bool)
    if min_user > 1 or min_item > 1:
        u, _ = pd.factorize(events["user_id"])
        i, _ = pd.factorize(events["item_id"])
        keep, report.kcore_rounds = kcore(u, i, min_user, min_item)
        report.kcore_removed_events = int((~keep).sum())
    if not keep.all():
        events = events[keep].reset_index(drop=True)
        if events.empty:
            raise DataError(
                f"the k-core filter (--min-user-interactions {min_user}, "
                f"--min-item-interactions {min_item}) "
                "removed every event; lower the thresholds"
            )
    u, user_ids, user_order = _sorted_ids(events["user_id"])
    i, item_ids, item_order = _sorted_ids(events["item_id"])
    bar.step("k-core")

    ts = events["timestamp"].to_numpy(np.float64)
    types = events["event_type"]
    values = events["value"].to_numpy(np.float64) if weight_by_value else None
    ref_time = float(np.nanmax(ts)) if np.isfinite(ts).any() else None
    w = event_weights(
        types,
        weights,
        values=values,
        timestamps=ts,
        half_life_days=half_life_days,
        reference_time=ref_time,
    )

    split_info: dict[str, Any] = {"method": method, "seed": seed, "valid_fraction": valid_fraction}
    if method == "predefined":
        parts = events["split"].map(_PART).to_numpy(np.int64)
    elif method == "temporal":
        test, cut = splitting.temporal_cut(ts, fraction=test_fraction, cut=cut)
        parts = np.where(test, _PART["test"], _PART["train"])
        split_info.update(test_fraction=test_fraction, cut=cut, cut_iso=_iso(cut))
    else:
        parts = np.zeros(len(events), dtype=np.int64)
    type_names = list(weights)
    edges = aggregate_edges(u, i, parts, w, ts, types, type_names)
    # a pair present in several parts keeps its earliest part (train before valid before test)
    dup_pair = edges.duplicated(subset=["user", "item"], keep="first").to_numpy()
    report.extra["held_out_pairs_already_in_train"] = int(dup_pair.sum())
    edges = edges[~dup_pair].reset_index(drop=True)
    bar.step("aggregate")

    eu = edges["user"].to_numpy()
    part = edges["part"].to_numpy().astype(np.int64)
    last_ts = edges["last_timestamp"].to_numpy(np.float64)
    if method == "random":
        part[splitting.random_holdout(eu, test_fraction, seed=seed)] = _PART["test"]
        split_info["test_fraction"] = test_fraction
    elif method == "leave-last":
        if np.isnan(last_ts).all():
            raise DataError("--split leave-last needs timestamps; this source has none")
        part[splitting.leave_last_n_out(eu, last_ts, leave_n, seed=seed)] = _PART["test"]
        split_info["leave_n"] = leave_n
    has_valid = bool((part == _PART["valid"]).any())
    if not has_valid:
        by_time = method in ("temporal", "leave-last")
        valid = splitting.carve_valid(
            eu,
            part == _PART["train"],
            valid_fraction,
            seed=seed,
            timestamps=last_ts if by_time else None,
        )
        part[valid] = _PART["valid"]
        split_info["valid_from"] = (
            "most recent train edges per user" if by_time else "random train edges per user"
        )
    else:
        split_info["valid_from"] = "source"
    in_train = np.zeros(len(user_ids), dtype=bool)
    in_train[eu[part == _PART["train"]]] = True
    held_users = np.unique(eu[part != _PART["train"]])
    split_info["held_out_users_without_train"] = int((~in_train[held_users]).sum())
    edges["split"] = pd.Categorical.from_codes(part, categories=list(SPLITS)).astype("str")
    edges = edges.drop(columns=["part"])
    cols = ["user", "item", "weight", "split", "last_timestamp", "first_timestamp", "n_events"]
    edges = edges[cols + [c for c in edges.columns if c not in cols]]
    bar.step("split")

    users_df, users_unmatched = _with_metadata(
        pd.DataFrame(
            {"user": np.arange(len(user_ids), dtype=np.int32), "user_id": user_ids.astype(object)}
        ),
        users_meta,
        "user_id",
    )
    items_df, items_unmatched = _with_metadata(
        pd.DataFrame(
            {"item": np.arange(len(item_ids), dtype=np.int32), "item_id": item_ids.astype(object)}
        ),
        items_meta,
        "item_id",
    )
    report.extra["users_metadata_unmatched"] = users_unmatched
    report.extra["items_metadata_unmatched"] = items_unmatched
    events_df = None
    if src.has_events:
        events_df = pd.DataFrame(
            {
                "user": u,
                "item": i,
                "event_type": types,
                "timestamp": ts,
                "value": events["value"].to_numpy(np.float64),
                "event_id": events["event_id"].astype(object),
            }
        )
    social_df = None
    if social_raw is not None:
        index = pd.Index(user_ids)
        a = index.get_indexer(social_raw["user_id"])
        b = index.get_indexer(social_raw["friend_id"])
        ok = (a >= 0) & (b >= 0)
        report.extra["social_unknown_users"] = int((~ok).sum())
        social_df = pd.DataFrame({"user": a[ok].astype(np.int32), "friend": b[ok].astype(np.int32)})
    bar.step("tables")

    manifest: dict[str, Any] = {
        "name": output.name,
        "format": src.format,
        "created_by": f"gemrec {__version__} import",
        "sources": [f if isinstance(f, dict) else fingerprint_file(f) for f in src.files],
        "options": options,
        "event_weights": weights,
        "weight_by_value": weight_by_value,
        "time_decay": None
        if half_life_days is None
        else {
            "half_life_days": half_life_days,
            "reference_time": ref_time,
            "reference_iso": _iso(ref_time),
        },
        "kcore": {"min_user_interactions": min_user, "min_item_interactions": min_item},
        "min_value": min_value,
        "cleaning": report.as_dict(),
        "split": split_info,
        "id_maps": {
            "users": "users.parquet: user (internal int32) -> user_id (raw string)",
            "items": "items.parquet: item (internal int32) -> item_id (raw string)",
            "user_order": user_order,
            "item_order": item_order,
        },
        "notes": src.notes,
    }
    basis = {
        **{
            k: manifest[k]
            for k in (
                "format",
                "sources",
                "event_weights",
                "weight_by_value",
                "time_decay",
                "kcore",
                "min_value",
                "cleaning",
                "split",
            )
        },
        "options": {k: v for k, v in options.items() if k not in ("items", "users", "social")},
        "counts": {"users": len(users_df), "items": len(items_df), "edges": len(edges)},
        "content_sha256": _content_hash(edges, part),
    }
    basis["sources"] = [{"sha256": s["sha256"], "size": s["size"]} for s in manifest["sources"]]
    manifest["content_sha256"] = basis["content_sha256"]
    manifest["fingerprint"] = hashlib.sha256(
        json.dumps(basis, sort_keys=True, default=str).encode()
    ).hexdigest()
    extra = [("rejected.csv", _rejected_csv(rejected))] if on_error == "skip" and rejected else []
    try:
        path = write_dataset(
            output,
            users=users_df,
            items=items_df,
            edges=edges,
            manifest=manifest,
            events=events_df,
            social=social_df,
            extra_files=extra,
        )
    except OSError as exc:
        raise DataError(
            f"cannot write the dataset directory: {exc.strerror or exc}; choose another -o",
            path=str(output),
        ) from None
    bar.step("write")
    full = json.loads((path / "manifest.json").read_text())
    return ImportResult(path, full, report, rejected, time.perf_counter() - start)


def _describe(side: object) -> str | None:
    if side is None:
        return None
    return "<DataFrame>" if isinstance(side, pd.DataFrame) else str(side)


def _iso(t: float | None) -> str | None:
    if t is None or not np.isfinite(t):
        return None
    return str(pd.Timestamp(t, unit="s", tz="UTC").isoformat())
