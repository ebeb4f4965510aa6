"""Top-k for every user on a Dask cluster: blocks of users scored by the workers, Parquet out.

Each task loads the saved model (once per worker process), reads its users' train + valid rows
from ``edges.parquet`` (what ``gemrec recommend`` excludes as already seen) and writes one part::

    OUTPUT/
      part-00000.parquet ...   user_id, rank (1 = best), item_id, score; one row per recommendation
      _recommend.json          model, dataset, k, counts: written last, marks a finished run

Parts are written under a temporary name and renamed, so a part that exists is complete: a run
that is interrupted is resumed by running it again (only missing parts are scored). The lists are
those of ``gemrec recommend`` (the same model, the same exclusion, the same ranking kernel).

With ``ann`` (``gemrec recommend --engine dask --ann``) each worker process builds the ANN index
over the model's item factors once, on its first block, and retrieves every block's candidates
from it (:class:`gemrec.models.ann.ANNRecommender`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gemrec.data.store import TRAIN_SPLITS, Dataset
from gemrec.errors import GemrecError, ParameterError
from gemrec.models.base import Recommender
from gemrec.scale.blocks import read_row_block

__all__ = ["AnnSettings", "RecommendResult", "ann_recall_task", "recommend_dask", "score_block"]

#: the marker of a finished output directory
MARKER = "_recommend.json"
_SPEC = ".spec.json"
#: bytes of dense scores a task holds at once (about 2 per user-item pair scored)
SCORE_MEMORY = 512 * 2**20


@dataclass(frozen=True)
class AnnSettings:
    """How the workers retrieve candidates (:class:`gemrec.models.ann.ANNRecommender`'s knobs)."""

    n_candidates: int = 200
    index: Literal["hnsw", "ivf"] = "hnsw"


@dataclass(frozen=True)
class RecommendResult:
    """What :func:`recommend_dask` wrote."""

    path: Path
    n_users: int
    n_parts: int
    n_resumed: int
    seconds: float

    def summary(self) -> str:
        rate = self.n_users / max(self.seconds, 1e-9)
        resumed = f", {self.n_resumed} parts kept from an earlier run" if self.n_resumed else ""
        return (
            f"wrote top-k for {self.n_users:,} users in {self.n_parts} parts{resumed} in "
            f"{self.seconds:.1f}s ({rate:,.0f} users/s) -> {self.path}"
        )


def recommend_dask(
    model_dir: str | Path,
    dataset: str | Path,
    users: np.ndarray,
    k: int,
    output: str | Path,
    *,
    client: Any,
    users_per_block: int = 4096,
    exclude_seen: bool = True,
    progress: bool = False,
    ann: AnnSettings | None = None,
) -> RecommendResult:
    """Write the top-``k`` of internal ``users`` as Parquet parts under ``output``.

    Parameters
    ----------
    model_dir, dataset : path
        A saved model and the dataset it was trained on, readable by every worker at these paths.
    users : ndarray of int, shape (n,)
        Internal user ids, in output order (sorted ids read the fewest rows per block).
    k : int
    output : path
        A new directory, an earlier output of this function (finished: replaced; unfinished:
        resumed when model, dataset, users and ``k`` are the same).
    client : distributed.Client
    users_per_block : int
        Users per part.
    exclude_seen : bool
        Exclude the users' train and valid items.
    progress : bool
        A progress bar with the rate on stderr.
    ann : AnnSettings, optional
        Retrieve candidates from an ANN index (built once per worker process) instead of scoring
        every item.
    """
    start = time.perf_counter()
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ParameterError.invalid("-k", "a positive integer", k)
    model_dir, output = Path(model_dir), Path(output)
    ds = Dataset.open(dataset)
    _check_compatible(model_dir, ds)
    users = np.asarray(users, dtype=np.int64)
    spec = {
        "model": str(model_dir.resolve()),
        "model_manifest_sha256": _sha256(model_dir / "manifest.json"),
        "arrays_mtime": (model_dir / "arrays.npz").stat().st_mtime,
        "dataset": str(ds.path.resolve()),
        "dataset_fingerprint": ds.manifest.get("fingerprint"),
        "k": int(k),
        "exclude_seen": bool(exclude_seen),
        "users_sha256": hashlib.sha256(users.tobytes()).hexdigest(),
        "users_per_block": int(users_per_block),
        "ann": None if ann is None else asdict(ann),
    }
    _prepare(output, spec)
    blocks = [users[i : i + users_per_block] for i in range(0, len(users), users_per_block)]
    todo = [b for b in range(len(blocks)) if not (output / _part(b)).is_file()]
    futures = [
        client.submit(
            score_block,
            str(model_dir),
            str(ds.path),
            blocks[b],
            int(k),
            str(output / _part(b)),
            exclude_seen,
            ann,
            pure=False,
        )
        for b in todo
    ]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(users), desc="recommend", unit="user", file=sys.stderr, leave=False)
        bar.update(sum(len(blocks[b]) for b in range(len(blocks)) if b not in set(todo)))
    try:
        from distributed import as_completed

        for fut in as_completed(futures):  # type: ignore[no-untyped-call]
            done = fut.result()
            if bar is not None:
                bar.update(done)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    (output / MARKER).write_text(
        json.dumps(
            {**spec, "users": len(users), "parts": len(blocks), "seconds": round(seconds, 2)},
            indent=2,
        )
    )
    return RecommendResult(output, len(users), len(blocks), len(blocks) - len(todo), seconds)


def score_block(
    model_dir: str,
    dataset: str,
    users: np.ndarray,
    k: int,
    path: str,
    exclude_seen: bool = True,
    ann: AnnSettings | None = None,
) -> int:
    """Score one block of users and write its part; returns the number of users written."""
    model = _model(model_dir, os.stat(Path(model_dir) / "arrays.npz").st_mtime, ann)
    user_ids, item_ids = _ids(dataset)
    exclude = _seen(dataset, users, len(item_ids)) if exclude_seen else None
    # dense scores are len(users) x n_items floats (and a copy): score in batches that fit; the
    # ANN path scores only candidates, in blocks of its own
    batch = max(1, len(users)) if ann else max(1, SCORE_MEMORY // (8 * len(item_ids)))
    parts = [
        model.recommend(
            users[i : i + batch],
            k,
            exclude_seen=exclude_seen,
            exclude=None if exclude is None else exclude[i : i + batch],
        )
        for i in range(0, len(users), batch)
    ]
    ids = np.vstack([p[0] for p in parts])
    scores = np.vstack([p[1] for p in parts])
    keep = ids >= 0
    rows, ranks = np.nonzero(keep)
    table = pa.table(
        {
            "user_id": pa.array(user_ids[users[rows]]),
            "rank": pa.array((ranks + 1).astype(np.int16)),
            "item_id": pa.array(item_ids[ids[keep]]),
            "score": pa.array(scores[keep].astype(np.float32)),
        }
    )
    tmp = Path(path).with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return len(users)


def ann_recall_task(
    model_dir: str,
    dataset: str,
    users: np.ndarray,
    k: int,
    ann: AnnSettings,
    exclude_seen: bool = True,
) -> float:
    """:func:`gemrec.models.ann.ann_recall` of ``users`` on a worker (its cached index)."""
    from gemrec.models.ann import ANNRecommender, ann_recall

    model = _model(model_dir, os.stat(Path(model_dir) / "arrays.npz").st_mtime, ann)
    assert isinstance(model, ANNRecommender)  # _model wraps whenever ann is given
    n_items = len(_ids(dataset)[1])
    exclude = _seen(dataset, users, n_items) if exclude_seen and len(users) else None
    return ann_recall(model, users, k, exclude_seen=exclude_seen, exclude=exclude)


def _seen(dataset: str, users: np.ndarray, n_items: int) -> Any:
    """The train + valid rows of ``users`` (what ``gemrec recommend`` excludes), read from disk."""
    if not len(users):
        return None
    lo, hi = int(users.min()), int(users.max()) + 1
    return read_row_block(dataset, lo, hi, n_items, TRAIN_SPLITS)[users - lo]


@functools.lru_cache(maxsize=1)
def _model(model_dir: str, mtime: float, ann: AnnSettings | None = None) -> Recommender:
    """The model, loaded once per worker process (``mtime`` tells a re-saved model apart);
    with ``ann``, wrapped in an :class:`~gemrec.models.ann.ANNRecommender` whose index is built
    here, once."""
    model = Recommender.load(model_dir)
    if ann is None:
        return model
    from gemrec.models.ann import ANNRecommender

    # a worker process is single-threaded: the index searches with one thread
    return ANNRecommender(
        model=model, n_candidates=ann.n_candidates, index=ann.index, threads=1
    ).build()


@functools.lru_cache(maxsize=1)
def _ids(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    ds = Dataset.open(dataset)
    return ds.user_ids, ds.item_ids


def _check_compatible(model_dir: Path, ds: Dataset) -> None:
    """:func:`check_compatible` from the model's manifest (the client never loads the model)."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    shape = (int(manifest["n_users"]), int(manifest["n_items"]))
    if shape != (ds.n_users, ds.n_items):
        raise GemrecError(
            f"model has {shape[0]} users x {shape[1]} items but dataset {ds.path} has "
            f"{ds.n_users} x {ds.n_items}: use the dataset the model was trained on"
        )


def _prepare(output: Path, spec: dict[str, Any]) -> None:
    """Create ``output``, keep an unfinished run of the same spec, otherwise start afresh."""
    if output.exists() and not output.is_dir():
        raise ParameterError.invalid("-o", "a directory path (it is an existing file)", output)
    if output.is_dir() and any(output.iterdir()):
        spec_file = output / _SPEC
        if not spec_file.is_file():
            raise ParameterError.invalid(
                "-o",
                "a new or empty directory, or an earlier `recommend --engine dask` output",
                output,
            )
        same = json.loads(spec_file.read_text()) == spec and not (output / MARKER).is_file()
        if not same:
            shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    (output / _SPEC).write_text(json.dumps(spec))


def _part(block: int) -> str:
    return f"part-{block:05d}.parquet"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
