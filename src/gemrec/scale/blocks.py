"""Row blocks of a dataset's interaction matrix, read where they are used."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from gemrec.data.store import TRAIN_SPLITS

__all__ = ["block_bounds", "read_row_block"]


def block_bounds(n_rows: int, rows_per_block: int) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]`` covering ``0 .. n_rows`` in blocks of ``rows_per_block``."""
    step = max(1, int(rows_per_block))
    return [(lo, min(lo + step, n_rows)) for lo in range(0, n_rows, step)]


def read_row_block(
    dataset: str | Path,
    lo: int,
    hi: int,
    n_items: int,
    splits: Sequence[str] = TRAIN_SPLITS,
) -> sp.csr_matrix:
    """Rows ``lo .. hi - 1`` (users) of the interaction matrix of ``splits``, float32.

    Reads only the row groups of ``edges.parquet`` that can hold those users, so a worker never
    loads the whole matrix. The rows are those of
    ``Dataset.open(dataset).interactions(*splits).matrix[lo:hi]``.

    Returns
    -------
    csr_matrix of float32, shape (hi - lo, n_items)
    """
    table = pq.read_table(
        Path(dataset) / "edges.parquet",
        columns=["user", "item", "weight", "split"],
        filters=[("user", ">=", int(lo)), ("user", "<", int(hi))],
    )
    split = table.column("split")
    table = table.filter(pc.is_in(split, value_set=pa.array(list(splits)).cast(split.type)))
    users = table.column("user").to_numpy().astype(np.int64) - int(lo)
    items = table.column("item").to_numpy()
    weights = table.column("weight").to_numpy().astype(np.float32)
    m = sp.csr_matrix((weights, (users, items)), shape=(int(hi) - int(lo), int(n_items)))
    m.sum_duplicates()
    m.sort_indices()
    return m.astype(np.float32)
