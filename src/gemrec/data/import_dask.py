"""The partitioned importer's steps on a ``dask.distributed`` cluster.

Workers validate the parts (:func:`~gemrec.data.import_parts.stage_part`, so every worker must see
the sources and the work directory at the same paths: one machine, or a shared file system), then
two shuffles bring duplicates together: rows with the same content land in the same partition,
where the first in (part, line) order is kept, and then rows with the same event id. The distinct
raw ids are gathered and ordered on the client (:func:`~gemrec.data.idmaps.sorted_ids`), the
workers map ids to positions, and the client receives the numeric columns, ordered by part and
line: the in-process steps take over from there.

``scheduler`` is an address (``tcp://HOST:8786``), a ``distributed.Client``, or None for a local
cluster of one single-threaded worker process per core.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gemrec._optional import require
from gemrec.data.idmaps import sorted_ids
from gemrec.data.import_parts import Deduplicated, PartResult, PartSpec, stage_part

__all__ = ["dask_client", "dask_deduplicate", "dask_stage_parts"]

_KEY = ["user_id", "item_id", "type", "timestamp", "value", "event_id"]


@contextlib.contextmanager
def dask_client(scheduler: Any = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler`` (closed afterwards unless it was given)."""
    dist: Any = require("distributed", "--engine dask")  # untyped library
    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler
        return
    if scheduler is not None:
        with dist.Client(scheduler) as client:
            yield client
        return
    with (
        dist.LocalCluster(
            threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        dist.Client(cluster) as client,
    ):
        yield client


def dask_stage_parts(
    files: Sequence[Path], spec: PartSpec, parts_dir: Path, *, client: Any, progress: bool
) -> list[PartResult]:
    """Validate every part on the cluster's workers; the first failing part (in order) raises."""
    import distributed

    as_completed: Any = distributed.as_completed
    futures = client.map(
        stage_part,
        [str(f) for f in files],
        list(range(len(files))),
        spec=spec,
        work=str(parts_dir),
        pure=False,
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=len(futures), desc="import parts", unit="part", file=sys.stderr, leave=False
        )
    try:
        for _ in as_completed(futures, raise_errors=False):
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return [f.result() for f in futures]


def dask_deduplicate(spills: Sequence[str], *, client: Any) -> Deduplicated:
    """Drop exact duplicates, then repeated event ids (first in part, line order wins).

    Runs on ``client``'s cluster.
    """
    dd: Any = require("dask.dataframe", "--engine dask")
    events = dd.read_parquet(list(spills))
    n_parts = max(1, events.npartitions)
    n_all = len(events)
    exact = (
        events.map_partitions(_with_hash, _KEY)
        .shuffle(on="_hash", npartitions=n_parts)
        .map_partitions(_first_of, _KEY)
        .persist()
    )
    n_exact = len(exact)
    kept = (
        exact.map_partitions(_with_event_id_hash)
        .shuffle(on="_hash", npartitions=n_parts)
        .map_partitions(_first_of, ["event_id"], True)
        .persist()
    )
    del exact
    n_kept = len(kept)
    maps = {}
    for col in ("user_id", "item_id"):
        values = pd.Series(kept[col].unique().compute().to_numpy())
        codes, ids, order = sorted_ids(values)
        lookup = pd.Series(codes, index=values.to_numpy())
        # sent to each worker once, not embedded in the task graph
        maps[col] = (client.scatter(lookup, broadcast=True), ids, order)
    rows = kept.map_partitions(
        _codes, maps["user_id"][0], maps["item_id"][0], meta=_CODES_META
    ).compute()
    rows = rows.sort_values(["source", "line"], kind="stable")
    return Deduplicated(
        users=rows["u"].to_numpy(np.int32),
        items=rows["i"].to_numpy(np.int32),
        types=rows["type"].to_numpy(np.int8),
        timestamp=rows["timestamp"].to_numpy(np.float64),
        value=rows["value"].to_numpy(np.float64, na_value=np.nan),
        source=rows["source"].to_numpy(np.int32),
        line=rows["line"].to_numpy(np.int64),
        user_ids=maps["user_id"][1],
        item_ids=maps["item_id"][1],
        user_order=maps["user_id"][2],
        item_order=maps["item_id"][2],
        duplicates_exact=int(n_all - n_exact),
        duplicates_event_id=int(n_exact - n_kept),
    )


_CODES_META = pd.DataFrame(
    {
        "u": pd.Series(dtype=np.int32),
        "i": pd.Series(dtype=np.int32),
        "type": pd.Series(dtype=np.int8),
        "timestamp": pd.Series(dtype=np.float64),
        "value": pd.Series(dtype=np.float64),
        "source": pd.Series(dtype=np.int32),
        "line": pd.Series(dtype=np.int64),
    }
)


def _with_hash(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """``df`` with ``_hash``: equal rows over ``key`` get equal hashes (missing values too)."""
    h = pd.util.hash_pandas_object(df[key], index=False).to_numpy()
    return df.assign(_hash=h)


def _with_event_id_hash(df: pd.DataFrame) -> pd.DataFrame:
    """``_hash`` of the event id; rows without one hash their (part, line) and stay apart."""
    eid = df["event_id"]
    has = eid.notna().to_numpy()
    h = pd.util.hash_pandas_object(df[["source", "line"]], index=False).to_numpy().copy()
    if has.any():
        h[has] = pd.util.hash_pandas_object(eid[has], index=False).to_numpy()
    return df.assign(_hash=h)


def _first_of(df: pd.DataFrame, key: list[str], only_present: bool = False) -> pd.DataFrame:
    """Rows of ``df`` whose ``key`` was not seen earlier in (source, line) order."""
    df = df.sort_values(["source", "line"], kind="stable")
    dup = df.duplicated(subset=key, keep="first").to_numpy()
    if only_present:
        dup = dup & df[key[0]].notna().to_numpy()
    return df[~dup].drop(columns="_hash")


def _codes(df: pd.DataFrame, users: pd.Series, items: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "u": users.reindex(df["user_id"].to_numpy()).to_numpy(np.int32),
            "i": items.reindex(df["item_id"].to_numpy()).to_numpy(np.int32),
            "type": df["type"].to_numpy(np.int8),
            "timestamp": df["timestamp"].to_numpy(np.float64),
            "value": df["value"].to_numpy(np.float64, na_value=np.nan),
            "source": df["source"].to_numpy(np.int32),
            "line": df["line"].to_numpy(np.int64),
        }
    )
