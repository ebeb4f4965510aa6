"""A small imported shop and a 2-worker Dask cluster whose workers may hold less than its matrix."""

from __future__ import annotations

import pytest

from gemrec.data.generate import generate_to_parquet
from gemrec.data.importer import import_dataset
from gemrec.data.store import Dataset

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

#: a worker's memory limit: below the interaction matrix's size (about 160 kB as CSR), so
#: workers spill blocks they hold to disk beyond 60% of it instead of holding the matrix
WORKER_MEMORY = 100_000


@pytest.fixture(scope="session")
def shop_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    shop = generate_to_parquet(
        root / "shop", n_users=1500, n_items=900, n_events=60_000, n_categories=12, seed=11
    )
    result = import_dataset(
        [shop.path / "events"], root / "ds", format="events", items=shop.path / "items.parquet"
    )
    return Dataset.open(result.path)


@pytest.fixture(scope="session")
def client():
    config = {
        # in-process workers share the test's memory: judge them by what they store, not by RSS
        "distributed.worker.memory.target": 0.6,
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.pause": False,
        "distributed.worker.memory.terminate": False,
    }
    with (
        dask.config.set(config),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            memory_limit=WORKER_MEMORY,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c
