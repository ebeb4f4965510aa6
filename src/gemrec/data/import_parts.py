"""Import steps for event logs larger than memory: one part at a time, then an out-of-core engine.

The in-process importer holds every row as text. Here each part (a file of a partitioned log) is
read and validated on its own by the same readers and :func:`~gemrec.data.cleaning.validate_events`
and spilled as typed Parquet; an engine then drops duplicates across parts and finds the id maps
without holding the text of the log; the rest of the import (k-core, id maps, weights, splits,
aggregation, output) runs on compact numeric columns through the same steps as in process, and
``events.parquet`` is written part by part. The output is identical to the in-process importer's.

Engines
-------
duckdb
    One machine, bounded memory: DuckDB with a memory limit, spilling to disk (chosen by
    measurement over Polars and pandas; see ``docs/scaling.md``).
dask
    A ``dask.distributed`` cluster: parts validated by the workers, duplicates and ids found
    by shuffles (:mod:`gemrec.data.import_dask`).

Resuming
--------
Finished parts are kept under a work directory beside the output (``.NAME.work/``), keyed by the
part's content and the options that shape validation; a re-run after an interruption validates
only the parts not yet done, and the work directory is removed once the dataset is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gemrec._optional import require
from gemrec.data.cleaning import CleaningReport, validate_events
from gemrec.data.idmaps import IdMaps, sorted_ids
from gemrec.data.import_clean import check_not_empty
from gemrec.data.import_output import events_table
from gemrec.data.readers import read_events
from gemrec.data.store import TableFile
from gemrec.data.tables import BadRow, fingerprint_file
from gemrec.errors import DataError, ParameterError

__all__ = [
    "ENGINES",
    "Deduplicated",
    "PartResult",
    "PartSpec",
    "PartsImport",
    "import_parts",
    "stage_part",
]

#: engines of the partitioned importer
ENGINES = ("duckdb", "dask")
#: columns of a spilled part
_SPILL_COLUMNS = ("user_id", "item_id", "type", "timestamp", "value", "event_id", "source", "line")


@dataclass(frozen=True)
class PartSpec:
    """What validating one part depends on (also the key of its resumable result)."""

    columns: dict[str, str]
    event_types: tuple[str, ...]
    on_error: str
    max_line_bytes: int

    def key(self, sha256: str) -> str:
        text = json.dumps([asdict(self), sha256], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class PartResult:
    """One validated part: where its typed rows went and how its rows were accounted for."""

    index: int
    fingerprint: dict[str, object]
    spill: str
    rows_read: int
    n_valid: int
    rejected: list[BadRow] = field(default_factory=list)


def stage_part(path: str, index: int, spec: PartSpec, work: str) -> PartResult:
    """Read and validate part ``index`` and spill its valid rows (or reuse an earlier run's).

    The spill holds ``user_id, item_id`` (raw), ``type`` (index into ``spec.event_types``),
    ``timestamp``, ``value`` (null if unknown), ``event_id``, ``source`` (= ``index``) and
    ``line``, in line order.

    Raises
    ------
    DataError
        On the part's first bad row with ``on_error="fail"``.
    """
    fp = fingerprint_file(path)
    key = spec.key(str(fp["sha256"]))
    done = Path(work) / f"part-{index:05d}-{key}.json"
    spill = done.with_suffix(".parquet")
    if done.is_file() and spill.is_file():
        saved = json.loads(done.read_text())
        return PartResult(
            index,
            {**saved["fingerprint"], "path": str(path)},
            str(spill),
            int(saved["rows_read"]),
            int(saved["n_valid"]),
            [BadRow(**b) for b in saved["rejected"]],
        )
    src = read_events([path], spec.columns, max_line_bytes=spec.max_line_bytes)
    (table,) = src.events
    if "split" in table.frame:
        raise DataError(
            "a 'split' column is not read by the partitioned importer; drop it, or import with "
            "--engine memory",
            path=str(path),
        )
    report = CleaningReport()
    weights = dict.fromkeys(spec.event_types, 1.0)
    events, rejected = validate_events([table], weights, on_error=spec.on_error, report=report)
    types = pd.Index(list(spec.event_types)).get_indexer(events["event_type"]).astype(np.int8)
    spilled = pa.table(
        {
            "user_id": pa.array(events["user_id"], pa.string()),
            "item_id": pa.array(events["item_id"], pa.string()),
            "type": pa.array(types, pa.int8()),
            "timestamp": pa.array(events["timestamp"].to_numpy(np.float64), pa.float64()),
            "value": pa.array(events["value"].to_numpy(np.float64), pa.float64(), from_pandas=True),
            "event_id": pa.array(events["event_id"], pa.string(), from_pandas=True),
            "source": pa.array(np.full(len(events), index, np.int32)),
            "line": pa.array(events["line"].to_numpy(np.int64)),
        }
    )
    tmp = spill.with_suffix(".tmp")
    pq.write_table(spilled, tmp)
    os.replace(tmp, spill)
    saved = {
        "fingerprint": fp,
        "rows_read": report.rows_read,
        "n_valid": len(events),
        "rejected": [asdict(b) for b in rejected],
    }
    done.write_text(json.dumps(saved))
    return PartResult(index, fp, str(spill), report.rows_read, len(events), rejected)


@dataclass
class Deduplicated:
    """The valid events of every part after dropping duplicates, in (part, line) order.

    Attributes
    ----------
    users, items : ndarray of int32, shape (n,)
        Positions in ``user_ids`` / ``item_ids``.
    types : ndarray of int8, shape (n,)
    timestamp, value : ndarray of float64, shape (n,)
    source : ndarray of int32, shape (n,)
    line : ndarray of int64, shape (n,)
    user_ids, item_ids : ndarray of str
        The distinct raw ids, ordered as :func:`~gemrec.data.idmaps.sorted_ids` orders them.
    user_order, item_order : str
    duplicates_exact, duplicates_event_id : int
    """

    users: np.ndarray
    items: np.ndarray
    types: np.ndarray
    timestamp: np.ndarray
    value: np.ndarray
    source: np.ndarray
    line: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_order: str
    item_order: str
    duplicates_exact: int
    duplicates_event_id: int


#: the key of an exact duplicate (the in-process importer's: every column of the event)
_DEDUP_KEY = "user_id, item_id, type, timestamp, value, event_id"


def deduplicate_duckdb(
    spills: Sequence[str], *, memory_limit: str, threads: int, temp_dir: Path
) -> Deduplicated:
    """Drop exact duplicates, then repeated event ids (first in part, line order wins).

    DuckDB keeps at most ``memory_limit`` in memory and spills the rest to ``temp_dir``.
    """
    duckdb = require("duckdb", "--engine duckdb")
    temp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            "memory_limit": memory_limit,
            "threads": int(threads),
            "temp_directory": str(temp_dir),
            "preserve_insertion_order": True,
        }
    )
    con.execute("SET enable_progress_bar = false")  # stdout carries the summary line only
    try:
        n_all = sum(pq.ParquetFile(s).metadata.num_rows for s in spills)
        con.execute(
            "CREATE TEMP TABLE k1 AS SELECT * FROM read_parquet(?) QUALIFY row_number() OVER "
            f"(PARTITION BY {_DEDUP_KEY} ORDER BY source, line) = 1",
            [list(spills)],
        )
        n_exact = _count(con, "k1")
        con.execute(
            "CREATE TEMP TABLE k2 AS SELECT * FROM k1 QUALIFY event_id IS NULL OR "
            "row_number() OVER (PARTITION BY event_id ORDER BY source, line) = 1"
        )
        con.execute("DROP TABLE k1")
        n_kept = _count(con, "k2")
        maps = {}
        for col in ("user_id", "item_id"):
            distinct = con.execute(f"SELECT DISTINCT {col} FROM k2").to_arrow_table()
            values = distinct.column(0).to_pandas()
            codes, ids, order = sorted_ids(values)
            con.register(f"map_{col}", pd.DataFrame({col: values, "code": codes}))
            maps[col] = (ids, order)
        rows = con.execute(
            "SELECT u.code AS u, i.code AS i, type, timestamp, value, source, line FROM k2 "
            "JOIN map_user_id u USING (user_id) JOIN map_item_id i USING (item_id) "
            "ORDER BY source, line"
        ).to_arrow_table()
    finally:
        con.close()
    # column by column, each Arrow column released once copied: peak is one column, not a table
    cols = {}
    for name, dtype in (
        ("u", np.int32),
        ("i", np.int32),
        ("type", np.int8),
        ("timestamp", np.float64),
        ("value", np.float64),
        ("source", np.int32),
        ("line", np.int64),
    ):
        cols[name] = _numpy(rows, name, dtype)
        rows = rows.drop_columns([name])
    if len(cols["line"]) and cols["line"].max() < 2**31:  # line numbers of parts: 32 bits do
        cols["line"] = cols["line"].astype(np.int32)
    return Deduplicated(
        users=cols["u"],
        items=cols["i"],
        types=cols["type"],
        timestamp=cols["timestamp"],
        value=cols["value"],
        source=cols["source"],
        line=cols["line"],
        user_ids=maps["user_id"][0],
        item_ids=maps["item_id"][0],
        user_order=maps["user_id"][1],
        item_order=maps["item_id"][1],
        duplicates_exact=n_all - n_exact,
        duplicates_event_id=n_exact - n_kept,
    )


def _count(con: Any, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _numpy(table: pa.Table, name: str, dtype: type) -> np.ndarray:
    col = table.column(name)
    if col.null_count and np.dtype(dtype).kind == "f":
        col = col.fill_null(float("nan"))
    return np.ascontiguousarray(col.to_numpy(), dtype=dtype)


@dataclass
class PartsImport:
    """What the partitioned steps hand to the rest of the import.

    Attributes
    ----------
    events : pandas.DataFrame
        ``user_id``, ``item_id`` (int32 positions in the distinct id lists), ``event_type``
        (categorical), ``timestamp``, ``value``, ``source``, ``line``: the deduplicated events.
    rejected : list of BadRow
        Sorted by file and line.
    files : list of dict
        The fingerprint of every part.
    id_maps : callable
        ``events -> IdMaps`` (after filtering), as :meth:`IdMaps.from_events` maps raw ids.
    write_events : callable
        ``(events, ids, path) -> TableFile``: ``events.parquet`` written part by part.
    """

    events: pd.DataFrame
    rejected: list[BadRow]
    files: list[dict[str, object]]
    id_maps: Callable[[pd.DataFrame], IdMaps]
    write_events: Callable[[pd.DataFrame, IdMaps, Path], TableFile]


def import_parts(
    files: Sequence[Path],
    *,
    event_types: Sequence[str],
    columns: dict[str, str],
    on_error: str,
    max_line_bytes: int,
    report: CleaningReport,
    work: Path,
    engine: str = "duckdb",
    scheduler: Any = None,
    memory_limit: str = "4GB",
    progress: bool = False,
) -> PartsImport:
    """Validate every part, drop duplicates across parts and map ids with ``engine``.

    ``report`` gains the rows read, rejected and deduplicated, as the in-process steps count them.

    Raises
    ------
    DataError
        On the first bad row (file order) with ``on_error="fail"``, or when no event is valid.
    """
    if engine not in ENGINES:
        raise ParameterError.invalid("--engine", f"one of {', '.join(ENGINES)}", engine)
    spec = PartSpec(dict(columns), tuple(event_types), on_error, int(max_line_bytes))
    parts_dir = work / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    dedup_fn: Callable[[Sequence[str]], Deduplicated]
    with contextlib.ExitStack() as stack:
        if engine == "dask":
            from gemrec.data.import_dask import dask_client, dask_deduplicate, dask_stage_parts

            client = stack.enter_context(dask_client(scheduler))
            results = dask_stage_parts(files, spec, parts_dir, client=client, progress=progress)

            def dedup_fn(spills: Sequence[str]) -> Deduplicated:
                return dask_deduplicate(spills, client=client)

        else:
            results = _stage_local(files, spec, parts_dir, progress)
            threads = os.cpu_count() or 1

            def dedup_fn(spills: Sequence[str]) -> Deduplicated:
                return deduplicate_duckdb(
                    spills, memory_limit=memory_limit, threads=threads, temp_dir=work / "duckdb"
                )

        rejected = sorted((b for r in results for b in r.rejected), key=lambda b: (b.path, b.line))
        report.rows_read += sum(r.rows_read for r in results)
        report.rejected += len(rejected)
        spills = [r.spill for r in results if r.n_valid]
        if not spills:
            check_not_empty(0, [str(f) for f in files], report)
        dd = dedup_fn(spills)
    report.duplicates_exact += dd.duplicates_exact
    report.duplicates_event_id += dd.duplicates_event_id
    report.accepted = len(dd.users)
    events = pd.DataFrame(
        {
            "user_id": dd.users,
            "item_id": dd.items,
            "event_type": pd.Categorical.from_codes(dd.types, categories=list(event_types)),
            "timestamp": dd.timestamp,
            "value": dd.value,
            "source": dd.source,
            "line": dd.line,
        },
        copy=False,
    )
    spill_of = {r.index: r.spill for r in results}
    return PartsImport(
        events,
        rejected,
        [r.fingerprint for r in results],
        lambda ev: _id_maps(ev, dd),
        lambda ev, ids, path: _write_events(ev, ids, path, spill_of, list(event_types)),
    )


def _stage_local(
    files: Sequence[Path], spec: PartSpec, parts_dir: Path, progress: bool
) -> list[PartResult]:
    """Validate the parts one after another (each part's parsing is itself vectorised)."""
    bar = _part_bar(progress, len(files))
    out = []
    try:
        for k, f in enumerate(files):
            out.append(stage_part(str(f), k, spec, str(parts_dir)))
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{sum(r.rows_read for r in out):,} rows")
    finally:
        if bar is not None:
            bar.close()
    return out


def _part_bar(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="import parts", unit="part", file=sys.stderr, leave=False)


def _id_maps(events: pd.DataFrame, dd: Deduplicated) -> IdMaps:
    """Id maps of the events left after filtering, exactly as ``IdMaps.from_events`` makes them.

    The distinct ids are already ordered; a filter can only remove ids, and only when it removes
    every non-integer id can the order change (lexicographic -> numeric), so the kept ids are
    ordered again by :func:`sorted_ids` itself.
    """
    users, user_ids, user_order = _remap(events["user_id"].to_numpy(), dd.user_ids)
    items, item_ids, item_order = _remap(events["item_id"].to_numpy(), dd.item_ids)
    return IdMaps(users, items, user_ids, item_ids, user_order, item_order)


def _remap(codes: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    kept = np.unique(codes)
    new_codes, new_ids, order = sorted_ids(pd.Series(ids[kept]))
    lookup = np.full(len(ids), -1, dtype=np.int32)
    lookup[kept] = new_codes
    return lookup[codes], new_ids, order


def _write_events(
    events: pd.DataFrame,
    ids: IdMaps,
    path: Path,
    spill_of: dict[int, str],
    event_types: list[str],
) -> TableFile:
    """``events.parquet`` part by part: the kept rows of each spill with their internal ids."""
    source = events["source"].to_numpy()
    line = events["line"].to_numpy()
    names = np.asarray(event_types, dtype=object)
    type_codes = events["event_type"].cat.codes.to_numpy()
    bounds = np.searchsorted(source, np.arange(max(spill_of) + 2))
    writer: pq.ParquetWriter | None = None
    schema: dict[str, str] = {}
    tmp = path.with_suffix(".tmp")
    try:
        for k in sorted(spill_of):
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            if lo == hi:
                continue
            spilled = pq.read_table(spill_of[k], columns=["event_id", "line"])
            at = np.searchsorted(spilled.column("line").to_numpy(), line[lo:hi])
            event_id = spilled.column("event_id").take(pa.array(at)).to_pylist()
            chunk = events_table(
                ids.users[lo:hi],
                ids.items[lo:hi],
                pd.Series(names[type_codes[lo:hi]], dtype="str"),
                events["timestamp"].to_numpy()[lo:hi],
                events["value"].to_numpy()[lo:hi],
                pd.Series(event_id, dtype=object),
            )
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                fields = [
                    pa.field("event_id", pa.string()) if f.name == "event_id" else f
                    for f in table.schema
                ]
                writer = pq.ParquetWriter(tmp, pa.schema(fields, metadata=table.schema.metadata))
                schema = {str(c): str(t) for c, t in chunk.dtypes.items()}
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    return TableFile(path, len(events), schema)


def work_dir(output: Path) -> Path:
    """The resumable work directory of an import into ``output`` (beside it, hidden)."""
    return output.parent / f".{output.name}.work"
