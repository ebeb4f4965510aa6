"""``import_dataset``: sources -> validated, cleaned, split dataset directory.

The pipeline, one step per stage (each in the module named)::

    readers.read_source            files -> string tables with line numbers (+ side tables)
    import_clean.validate_source   type checks, side tables, duplicates; bad rows fail the import
                                   or go to rejected.csv
    import_clean.filter_events     optional minimum value and k-core filter
    idmaps.IdMaps                  raw ids -> contiguous internal ids (content order)
    import_edges.weigh_events      behaviour weights (x value) x time decay
    import_edges.split_events      predefined / temporal parts of events
    import_edges.aggregate         weighted user-item edges with per-type counts
    import_edges.split_edges       random / leave-last / cold-start holdouts + valid
    import_output.output_tables    id maps with side information, events, social graph
    import_output.build_manifest   what was read and asked for, the row accounting, the split
    import_output.write_output     Parquet tables + manifest.json (atomic)

With ``engine="duckdb"`` or ``"dask"`` (logs larger than memory), reading, validation and
deduplication run part by part and out of core (:mod:`gemrec.data.import_parts`); every later step
is the same.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gemrec.data import splits as splitting
from gemrec.data.cleaning import CleaningReport, parse_timestamps, parse_weights
from gemrec.data.idmaps import IdMaps
from gemrec.data.import_clean import ValidSource, clean_sides, filter_events, validate_source
from gemrec.data.import_edges import (
    SplitOptions,
    aggregate,
    iso_utc,
    split_edges,
    split_events,
    weigh_events,
)
from gemrec.data.import_output import build_manifest, output_tables, seal_manifest, write_output
from gemrec.data.readers import (
    Source,
    event_files,
    parse_columns,
    read_frames,
    read_side_table,
    read_source,
)
from gemrec.data.store import TableFile
from gemrec.data.tables import MAX_LINE_BYTES, BadRow, fingerprint_frame
from gemrec.errors import ParameterError

__all__ = ["ImportResult", "import_dataset"]


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


def _check_options(on_error: str, min_user: int, min_item: int, split: str | None) -> None:
    if on_error not in ("fail", "skip"):
        raise ParameterError.invalid("--on-error", "'fail' or 'skip'", on_error)
    for name, v in (("--min-user-interactions", min_user), ("--min-item-interactions", min_item)):
        if int(v) != v or v < 0:
            raise ParameterError.invalid(name, "an integer >= 0", v)
    if split is not None and split not in splitting.SPLIT_METHODS:
        raise ParameterError.invalid(
            "--split", f"one of {', '.join(splitting.SPLIT_METHODS)}", split
        )


def _parse_cut(test_after: str | float | None) -> float | None:
    if test_after is None:
        return None
    secs, bad = parse_timestamps(pd.Series([str(test_after)]))
    if bad[0] or np.isnan(secs[0]):
        raise ParameterError.invalid(
            "--test-after", "epoch seconds/milliseconds or an ISO 8601 date-time", test_after
        )
    return float(secs[0])


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
    valid_fraction: float | None = None,
    valid_latest: bool = False,
    leave_n: int = 1,
    test_after: str | float | None = None,
    seed: int = 0,
    max_line_bytes: int = MAX_LINE_BYTES,
    progress: bool = False,
    engine: str = "memory",
    scheduler: Any = None,
    memory_limit: str = "4GB",
) -> ImportResult:
    """Read, validate, clean and split ``sources`` and write a dataset directory.

    Parameters
    ----------
    sources : sequence of path or of pandas.DataFrame
        Files or directories, as ``--format`` expects; or in-memory event tables
        (``format="events"``), e.g. from :mod:`gemrec.data.synthetic`.
    output : path
        The dataset directory (replaced atomically; nothing is written if the import fails).
    format : {"events", "lightgcn", "movielens", "taobao", "lastfm", "recbole", "ciao"}
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
    split : str, optional
        One of :data:`gemrec.data.splits.SPLIT_METHODS`: "predefined", "random", "temporal",
        "leave-last", "cold-items", "cold-users", "none". Default: "predefined" for sources
        that carry a split (lightgcn, split RecBole files), else "random".
        "cold-items" / "cold-users" hold out every interaction of a share of the items / users
        (their side information, text, attributes and social ties stay in the dataset).
    test_fraction : float
        Per-user share for "random"; global share of events after the cut for "temporal"; share
        of the items / users held out for the cold splits.
    valid_fraction : float, optional
        Per-user share of train moved to "valid" (random, or most recent for time-based splits;
        default 0.1). For the cold splits, a share of the items / users held out for "valid",
        disjoint from the test ones (default 0: no validation part).
    valid_latest : bool
        Carve the validation part from each user's latest train edges, as time-based splits do,
        also when the test split is random or given: by time, or without times by the source's
        own order (a LightGCN file whose lines are not sorted by item, such as Gowalla's, whose
        test leans to each user's latest items). Tuning then validates on what comes last.
    leave_n : int
        Edges per user held out by "leave-last".
    test_after : str or float, optional
        Explicit cut time for "temporal" (epoch or ISO 8601).
    seed : int
        Seeds every random choice; the same inputs and options give the same dataset.
    engine : {"memory", "duckdb", "dask"}
        ``"memory"`` holds the whole log in memory (every format). ``"duckdb"`` and ``"dask"``
        read an ``events`` log part by part in bounded memory, on this machine or on a Dask
        cluster, and write the same dataset (:mod:`gemrec.data.import_parts`); an interrupted
        run resumes from the parts it finished.
    scheduler : str, optional
        ``tcp://HOST:8786`` or a ``distributed.Client``: the Dask cluster (default: a local one).
    memory_limit : str
        DuckDB's memory limit (e.g. ``"4GB"``); it spills to disk beyond it.

    Returns
    -------
    ImportResult
    """
    start = time.perf_counter()
    output = Path(output)
    _check_options(on_error, min_user_interactions, min_item_interactions, split)
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
    sides = {"items": items, "users": users, "social": social}
    if engine not in ("memory", "duckdb", "dask"):
        raise ParameterError.invalid("--engine", "one of memory, duckdb, dask", engine)
    if scheduler is not None and engine != "dask":
        raise ParameterError.invalid("--scheduler", "only with --engine dask", scheduler)
    partitioned = engine != "memory"
    if partitioned and (format != "events" or frames):
        raise ParameterError.invalid(
            "--engine", "'memory' for in-memory tables and formats other than events", engine
        )
    bar = _Progress(progress and big and not partitioned)
    try:
        if partitioned:
            src = _read_sides(Source("events", []), sides, col_map, max_line_bytes)
        else:
            src = _read(frames, source_paths, format, sides, col_map, max_line_bytes)
        bar.step("read")
        method = _split_method(split, src)
        recipe = _Recipe(
            on_error=on_error,
            weights=parse_weights(weights, src.default_weights),
            weight_by_value=src.weight_by_value if weight_by_value is None else weight_by_value,
            half_life_days=half_life_days,
            min_user=int(min_user_interactions),
            min_item=int(min_item_interactions),
            min_value=min_value,
            split=SplitOptions(
                method=method,
                test_fraction=test_fraction,
                valid_fraction=_valid_fraction(valid_fraction, method),
                leave_n=leave_n,
                cut=cut,
                seed=seed,
                valid_latest=bool(valid_latest),
            ),
            ordered=src.ordered,
            options={
                "columns": col_map,
                "on_error": on_error,
                "items": _describe(items),
                "users": _describe(users),
                "social": _describe(social),
            },
        )
        if partitioned:
            path, report, rejected = _build_parts(
                src,
                event_files(source_paths),
                output,
                recipe,
                engine=engine,
                scheduler=scheduler,
                memory_limit=memory_limit,
                max_line_bytes=max_line_bytes,
                progress=progress,
            )
        else:
            path, report, rejected = _build(src, output, recipe, bar)
    finally:
        bar.close()
    manifest = json.loads((path / "manifest.json").read_text())
    return ImportResult(path, manifest, report, rejected, time.perf_counter() - start)


@dataclass(frozen=True)
class _Recipe:
    """The options of one import, resolved against its source."""

    on_error: str
    weights: dict[str, float]
    weight_by_value: bool
    half_life_days: float | None
    min_user: int
    min_item: int
    min_value: float | None
    split: SplitOptions
    options: dict[str, Any]  # as given, for the manifest
    #: the source gives each user's order but no times: edges keep it (``source_order``)
    ordered: bool = False

    def manifest_entries(self, reference_time: float | None) -> dict[str, Any]:
        """What was asked for, as the manifest records it (in its order)."""
        return {
            "options": self.options,
            "event_weights": self.weights,
            "weight_by_value": self.weight_by_value,
            "time_decay": None
            if self.half_life_days is None
            else {
                "half_life_days": self.half_life_days,
                "reference_time": reference_time,
                "reference_iso": iso_utc(reference_time),
            },
            "kcore": {
                "min_user_interactions": self.min_user,
                "min_item_interactions": self.min_item,
            },
            "min_value": self.min_value,
        }


def _read(
    frames: Sequence[pd.DataFrame],
    paths: Sequence[Path],
    format: str,
    sides: dict[str, str | Path | pd.DataFrame | None],
    col_map: dict[str, str],
    max_line_bytes: int,
) -> Source:
    """Read the sources, then the side tables given explicitly (they replace the format's)."""
    if frames:
        src = read_frames(frames, col_map)
    else:
        src = read_source(format, paths, col_map, max_line_bytes=max_line_bytes)
    return _read_sides(src, sides, col_map, max_line_bytes)


def _read_sides(
    src: Source,
    sides: dict[str, str | Path | pd.DataFrame | None],
    col_map: dict[str, str],
    max_line_bytes: int,
) -> Source:
    """Read the side tables given explicitly into ``src`` (they replace the format's)."""
    for kind, side in sides.items():
        if side is not None:
            setattr(src, kind, read_side_table(side, kind, col_map, max_line_bytes=max_line_bytes))
            src.files.append(
                fingerprint_frame(side, f"<{kind} DataFrame>")
                if isinstance(side, pd.DataFrame)
                else Path(side)
            )
    return src


def _split_method(split: str | None, src: Source) -> str:
    """``--split``, or the source's own split where it has one, else random."""
    method = split or ("predefined" if src.predefined_split else "random")
    if method == "predefined" and not src.predefined_split:
        raise ParameterError.invalid(
            "--split",
            "random, temporal, leave-last, cold-items, cold-users or none "
            f"(format '{src.format}' has no predefined split)",
            method,
        )
    return method


def _valid_fraction(valid_fraction: float | None, method: str) -> float:
    """``--valid-fraction``, or its default: 0.1 per user, none for the cold splits."""
    if valid_fraction is not None:
        return float(valid_fraction)
    return 0.0 if method in splitting.COLD_SPLITS else 0.1


def _build(
    src: Source, output: Path, recipe: _Recipe, bar: _Progress
) -> tuple[Path, CleaningReport, list[BadRow]]:
    """Run the steps after reading (see the module docstring); returns what was written."""
    report = CleaningReport()
    valid = validate_source(src, recipe.weights, on_error=recipe.on_error, report=report)
    bar.step("validate")
    return _finish(src, valid, output, recipe, report, bar)


def _build_parts(
    src: Source,
    files: list[Path],
    output: Path,
    recipe: _Recipe,
    *,
    engine: str,
    scheduler: Any,
    memory_limit: str,
    max_line_bytes: int,
    progress: bool,
) -> tuple[Path, CleaningReport, list[BadRow]]:
    """Validate part by part (:mod:`gemrec.data.import_parts`), then the in-process steps."""
    from gemrec.data.import_parts import import_parts, work_dir

    report = CleaningReport()
    work = work_dir(output)
    parts = import_parts(
        files,
        event_types=list(recipe.weights),
        columns=dict(recipe.options["columns"]),
        on_error=recipe.on_error,
        max_line_bytes=max_line_bytes,
        report=report,
        work=work,
        engine=engine,
        scheduler=scheduler,
        memory_limit=memory_limit,
        progress=progress,
    )
    rejected = parts.rejected
    items, users, social = clean_sides(src, recipe.on_error, rejected, report)
    src.files[:0] = parts.files
    valid = ValidSource(parts.events, items, users, social, rejected)
    # `valid` holds the only references, which `_finish` releases once they are used
    del parts.events, items, users, social
    out = _finish(
        src,
        valid,
        output,
        recipe,
        report,
        _Progress(False),
        id_maps=parts.id_maps,
        events_file=lambda events, ids: parts.write_events(events, ids, work / "events.parquet"),
    )
    shutil.rmtree(work, ignore_errors=True)
    return out


def _finish(
    src: Source,
    valid: ValidSource,
    output: Path,
    recipe: _Recipe,
    report: CleaningReport,
    bar: _Progress,
    *,
    id_maps: Callable[[pd.DataFrame], IdMaps] = IdMaps.from_events,
    events_file: Callable[[pd.DataFrame, IdMaps], TableFile] | None = None,
) -> tuple[Path, CleaningReport, list[BadRow]]:
    """The steps after validation: filter, id maps, weights, splits, tables, manifest, write."""
    events = filter_events(
        valid.events,
        min_value=recipe.min_value,
        min_user=recipe.min_user,
        min_item=recipe.min_item,
        report=report,
    )
    ids = id_maps(events)
    # no step below reads the raw id columns (`ids` maps them): release them and the unfiltered
    # table, the largest objects of an import
    events = events.drop(columns=["user_id", "item_id"])
    valid.events = events
    bar.step("k-core")

    weights, reference_time = weigh_events(
        events,
        recipe.weights,
        weight_by_value=recipe.weight_by_value,
        half_life_days=recipe.half_life_days,
    )
    parts, split_info = split_events(events, recipe.split)
    edges = aggregate(
        events, ids, parts, weights, list(recipe.weights), report, first_row=recipe.ordered
    )
    del weights, parts  # one number per event each, no longer needed
    bar.step("aggregate")

    edges, part, split_info = split_edges(edges, ids.n_users, recipe.split, split_info)
    bar.step("split")

    tables = output_tables(
        events,
        ids,
        users_meta=valid.users,
        items_meta=valid.items,
        social=valid.social,
        keep_events=src.has_events and events_file is None,
        report=report,
    )
    valid.items = valid.users = valid.social = None  # joined into `tables`
    if events_file is not None and src.has_events:
        tables.events = events_file(events, ids)
    bar.step("tables")

    manifest = build_manifest(
        output.name, src, recipe.manifest_entries(reference_time), report, split_info, ids
    )
    manifest = seal_manifest(manifest, tables, edges, part)
    rejected = valid.rejected if recipe.on_error == "skip" else []
    path = write_output(output, tables, edges, manifest, rejected)
    bar.step("write")
    return path, report, valid.rejected


def _describe(side: object) -> str | None:
    if side is None:
        return None
    return "<DataFrame>" if isinstance(side, pd.DataFrame) else str(side)
