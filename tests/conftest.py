"""Shared fixtures: paths to the real datasets in ../shared/data (skipped only when absent)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import settings

# shared, noisy 2-core machines: no per-example deadlines (speed lives in benchmarks/)
settings.register_profile("gemrec", deadline=None, derandomize=True)
settings.load_profile("gemrec")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def shared_data(name: str) -> Path:
    """Path to ``../shared/data/<name>``; skips the test with a clear reason when it is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real dataset {path} not present (CI always has ../shared/data)")
    return path


def shared_lightgcn_split(name: str):
    """``(train, test)`` Interactions of the LightGCN-format split ``../shared/data/<name>``.

    Read as the benchmarks read it (``benchmarks/_gowalla.py``: the importer); skips when absent.
    """
    root = shared_data(name)
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    from _gowalla import read_lightgcn_split

    return read_lightgcn_split(root)
