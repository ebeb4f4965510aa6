"""Shared fixtures: paths to the real datasets in ../shared/data (skipped only when absent)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# shared, noisy 2-core machines: no per-example deadlines (speed lives in benchmarks/)
settings.register_profile("gemrec", deadline=None, derandomize=True)
settings.load_profile("gemrec")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _no_tracking():
    """Commands run by the tests (module fixtures included) record no MLflow run, so no mlflow.db
    appears in the working directory; tests/tracking turns recording on into stores of its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEMREC_NO_TRACK", "1")
        yield


def shared_data(name: str) -> Path:
    """Path to ``../shared/data/<name>``; skips the test with a clear reason when it is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real dataset {path} not present (CI always has ../shared/data)")
    return path


def shared_lightgcn_split(name: str):
    """``(train, test)`` Interactions of the LightGCN-format split ``../shared/data/<name>``.

    Imported as ``gemrec import --format lightgcn`` does (train = train.txt, test = test.txt, ids
    the files' 0-based ids); skips when absent.
    """
    from gemrec.data.importer import import_dataset
    from gemrec.data.store import Dataset

    root = shared_data(name)
    with tempfile.TemporaryDirectory() as tmp:
        result = import_dataset([root], Path(tmp) / "ds", format="lightgcn", valid_fraction=0)
        dataset = Dataset.open(result.path)
        return dataset.interactions("train", "valid"), dataset.interactions("test")
