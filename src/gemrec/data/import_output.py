"""Import steps at the end: the output tables, the manifest with its fingerprint, the write.

A dataset directory holds ``users.parquet`` and ``items.parquet`` (the id maps with side
information), ``edges.parquet``, optionally ``events.parquet`` and ``social.parquet``,
``rejected.csv`` for skipped rows, and ``manifest.json`` (see :mod:`gemrec.data.store`).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gemrec import __version__
from gemrec.data.cleaning import CleaningReport
from gemrec.data.idmaps import IdMaps
from gemrec.data.readers import Source
from gemrec.data.store import TableFile, write_dataset
from gemrec.data.tables import BadRow, fingerprint_file
from gemrec.errors import DataError

__all__ = [
    "OutputTables",
    "build_manifest",
    "events_table",
    "output_tables",
    "rejected_csv",
    "seal_manifest",
    "write_output",
]

#: metadata columns stored as numbers when every non-empty value parses as one
_NUMERIC_META = ("price", "age")
#: manifest entries that make up the fingerprint (with sources, options and counts)
_FINGERPRINTED = (
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


@dataclass
class OutputTables:
    """Every table of the dataset directory but the edges.

    Attributes
    ----------
    users, items : pandas.DataFrame
        ``user`` / ``item`` (internal int32) -> ``user_id`` / ``item_id`` (raw), then metadata.
    events : pandas.DataFrame or None
        One row per kept event (only for real event logs).
    social : pandas.DataFrame or None
        ``user``, ``friend`` (internal ids).
    """

    users: pd.DataFrame
    items: pd.DataFrame
    events: pd.DataFrame | TableFile | None
    social: pd.DataFrame | None


def output_tables(
    events: pd.DataFrame,
    ids: IdMaps,
    *,
    users_meta: pd.DataFrame | None,
    items_meta: pd.DataFrame | None,
    social: pd.DataFrame | None,
    keep_events: bool,
    report: CleaningReport,
) -> OutputTables:
    """Id-map tables joined with side information, the events and the social graph.

    ``report.extra`` gains the metadata rows that match no user or item and the social edges
    with an unknown user.
    """
    users, users_unmatched = with_metadata(
        pd.DataFrame(
            {"user": np.arange(ids.n_users, dtype=np.int32), "user_id": ids.user_ids.astype(object)}
        ),
        users_meta,
        "user_id",
    )
    items, items_unmatched = with_metadata(
        pd.DataFrame(
            {"item": np.arange(ids.n_items, dtype=np.int32), "item_id": ids.item_ids.astype(object)}
        ),
        items_meta,
        "item_id",
    )
    report.extra["users_metadata_unmatched"] = users_unmatched
    report.extra["items_metadata_unmatched"] = items_unmatched
    events_df = None
    if keep_events:
        events_df = events_table(
            ids.users,
            ids.items,
            events["event_type"],
            events["timestamp"],
            events["value"],
            events["event_id"],
        )
    social_df = None
    if social is not None:
        index = pd.Index(ids.user_ids)
        a = index.get_indexer(social["user_id"])
        b = index.get_indexer(social["friend_id"])
        ok = (a >= 0) & (b >= 0)
        report.extra["social_unknown_users"] = int((~ok).sum())
        social_df = pd.DataFrame({"user": a[ok].astype(np.int32), "friend": b[ok].astype(np.int32)})
    return OutputTables(users, items, events_df, social_df)


def events_table(
    users: np.ndarray,
    items: np.ndarray,
    event_type: pd.Series,
    timestamp: pd.Series | np.ndarray,
    value: pd.Series | np.ndarray,
    event_id: pd.Series,
) -> pd.DataFrame:
    """``events.parquet`` rows: ``user, item`` (internal ids), ``event_type`` (str), ``timestamp``,
    ``value`` (float64, NaN if unknown), ``event_id`` (object, None if absent)."""
    return pd.DataFrame(
        {
            "user": users,
            "item": items,
            "event_type": event_type,
            "timestamp": np.asarray(timestamp, dtype=np.float64),
            "value": np.asarray(value, dtype=np.float64),
            "event_id": event_id.astype(object),
        }
    )


def with_metadata(
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


def build_manifest(
    name: str,
    src: Source,
    recipe: dict[str, Any],
    report: CleaningReport,
    split_info: dict[str, Any],
    ids: IdMaps,
) -> dict[str, Any]:
    """The manifest's description of the import (without counts, schema and fingerprint).

    ``recipe`` holds what was asked for, in manifest order: ``options``, ``event_weights``,
    ``weight_by_value``, ``time_decay``, ``kcore``, ``min_value``.
    """
    return {
        "name": name,
        "format": src.format,
        "created_by": f"gemrec {__version__} import",
        "sources": [f if isinstance(f, dict) else fingerprint_file(f) for f in src.files],
        **recipe,
        "cleaning": report.as_dict(),
        "split": split_info,
        "id_maps": {
            "users": "users.parquet: user (internal int32) -> user_id (raw string)",
            "items": "items.parquet: item (internal int32) -> item_id (raw string)",
            "user_order": ids.user_order,
            "item_order": ids.item_order,
        },
        "notes": src.notes,
    }


def seal_manifest(
    manifest: dict[str, Any], tables: OutputTables, edges: pd.DataFrame, part: np.ndarray
) -> dict[str, Any]:
    """``manifest`` with ``content_sha256`` (the edges) and ``fingerprint`` (content + recipe).

    The fingerprint leaves out file paths and side-table names, so the same data imported the
    same way from another place has the same fingerprint.
    """
    content = _content_hash(edges, part)
    basis = {
        **{k: manifest[k] for k in _FINGERPRINTED},
        "options": {
            k: v for k, v in manifest["options"].items() if k not in ("items", "users", "social")
        },
        "counts": {"users": len(tables.users), "items": len(tables.items), "edges": len(edges)},
        "content_sha256": content,
    }
    basis["sources"] = [{"sha256": s["sha256"], "size": s["size"]} for s in manifest["sources"]]
    fingerprint = hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode())
    return {**manifest, "content_sha256": content, "fingerprint": fingerprint.hexdigest()}


def write_output(
    output: Path,
    tables: OutputTables,
    edges: pd.DataFrame,
    manifest: dict[str, Any],
    rejected: Sequence[BadRow] = (),
) -> Path:
    """Write the dataset directory atomically (with ``rejected.csv`` when rows were skipped).

    Raises
    ------
    DataError
        When the directory cannot be written.
    """
    extra = [("rejected.csv", rejected_csv(rejected))] if rejected else []
    try:
        return write_dataset(
            output,
            users=tables.users,
            items=tables.items,
            edges=edges,
            manifest=manifest,
            events=tables.events,
            social=tables.social,
            extra_files=extra,
        )
    except OSError as exc:
        raise DataError(
            f"cannot write the dataset directory: {exc.strerror or exc}; choose another -o",
            path=str(output),
        ) from None


def rejected_csv(rejected: Sequence[BadRow]) -> bytes:
    """``rejected.csv``: file, line, field, reason and raw text of each skipped row."""
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


def _content_hash(edges: pd.DataFrame, part: np.ndarray) -> str:
    h = hashlib.sha256()
    for col in ("user", "item", "weight"):
        h.update(np.ascontiguousarray(edges[col].to_numpy()).tobytes())
    h.update(part.astype(np.int8).tobytes())
    return h.hexdigest()
