"""Benchmark datasets: the files in ``../shared/data`` imported by gemrec's importer, cached.

Every benchmark and study reads its data here, through :func:`gemrec.data.importer.import_dataset`
(what ``gemrec import`` runs), so a benchmark measures the library on the same dataset directory a
user would get::

    from _data import load, train_test

    ds = load("gowalla")                   # a gemrec.data.store.Dataset
    train, test = train_test("gowalla")    # train + valid, test (the published protocols)
    ds = load("gowalla", valid_fraction=0.2)
    fit, valid = ds.interactions("train"), ds.interactions("valid")   # tuning, never test

Each import is kept under ``$GEMREC_BENCH_DATA`` (default: ``gemrec-bench-data`` in the system
temp directory), keyed by the dataset, the import options and the source of ``gemrec.data``, so a
change to the importer imports again. ``python benchmarks/_data.py NAME...`` imports ahead of a
run and prints each dataset's counts.

Datasets (``NAME``): see :data:`DATASETS`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import gemrec.data
from gemrec.data.importer import import_dataset
from gemrec.data.interactions import Interactions
from gemrec.data.store import Dataset

__all__ = ["DATASETS", "SHARED_DATA", "load", "splits", "train_test"]

#: ``../shared/data`` next to the repository (``$GEMREC_SHARED_DATA`` overrides it)
SHARED_DATA = Path(
    os.environ.get("GEMREC_SHARED_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)


@dataclass(frozen=True)
class _Spec:
    """How one benchmark dataset is imported."""

    description: str
    #: ``sources(workdir) -> list of paths or DataFrames`` for ``import_dataset``
    sources: Callable[[Path], list[Any]]
    format: str = "events"
    options: dict[str, Any] = field(default_factory=dict)
    #: ``items(workdir) -> side table`` (``item_id`` + columns), optional
    items: Callable[[Path], pd.DataFrame] | None = None


def _dir(*parts: str) -> Callable[[Path], list[Any]]:
    return lambda _: [SHARED_DATA.joinpath(*parts)]


def _pairs_as_lightgcn(folder: str, train: str, test: str) -> Callable[[Path], list[Any]]:
    """A published split stored as ``user item [...]`` pair files, rewritten as the LightGCN
    layout (``user item item ...`` lines) so that the importer keeps the split as published.
    Raw ids are kept; the importer orders them numerically."""

    def sources(workdir: Path) -> list[Any]:
        root = SHARED_DATA / folder
        out = workdir / "lightgcn"
        out.mkdir(parents=True, exist_ok=True)
        for name, target in ((train, "train.txt"), (test, "test.txt")):
            pairs = np.loadtxt(root / name, dtype=np.int64, usecols=(0, 1), ndmin=2)
            frame = pd.DataFrame(pairs, columns=["user", "item"]).drop_duplicates()
            lines = frame.groupby("user", sort=True)["item"].apply(lambda s: " ".join(map(str, s)))
            (out / target).write_text(
                "".join(f"{u} {items}\n" for u, items in lines.items()), encoding="utf-8"
            )
        return [out]

    return sources


def _amazon_events(_: Path) -> list[Any]:
    """Scientific leave-one-out rows: the test row's history and target, in order.

    A position in the sequence stands in for the time, so ``leave-last`` holds out the target."""
    users, items, positions = [], [], []
    text = (SHARED_DATA / "amazon-scientific-text" / "Scientific.test.inter").read_text()
    for line in text.splitlines()[1:]:
        user, history, target = line.split("\t")
        sequence = [*history.split(), target]
        users += [user] * len(sequence)
        items += sequence
        positions += range(len(sequence))
    return [
        pd.DataFrame(
            {
                "user_id": users,
                "item_id": items,
                "event_type": "view",
                "timestamp": np.asarray(positions, dtype=np.float64),
            }
        )
    ]


def _amazon_items(_: Path) -> pd.DataFrame:
    """Category path and brand parsed from ``Scientific.text`` ("title. categories. brand.")."""
    root = SHARED_DATA / "amazon-scientific-text"
    index = dict(
        line.split("\t") for line in (root / "Scientific.item2index").read_text().splitlines()
    )
    rows = []
    for line in (root / "Scientific.text").read_text().splitlines()[1:]:
        asin, _, text = line.partition("\t")
        if asin not in index:
            continue
        parts = [p.strip() for p in text.strip().rstrip(".").split(". ")]
        long_enough = len(parts) >= 3
        rows.append(
            {
                "item_id": index[asin],
                "category": parts[-2] if long_enough else None,
                "brand": parts[-1] if long_enough else None,
            }
        )
    return pd.DataFrame(rows)


def _random_categories(_: Path) -> pd.DataFrame:
    """50 random categories for Gowalla's 40,981 items (seeded): the service's interest vectors
    and explanations read a category column."""
    n_items = 40_981
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "item_id": np.arange(n_items).astype(str),
            "category": [f"c{c}" for c in rng.integers(0, 50, n_items)],
        }
    )


#: name -> how it is imported
DATASETS: dict[str, _Spec] = {
    "gowalla": _Spec(
        "the LightGCN split of Gowalla check-ins (29,858 users, 40,981 items)",
        _dir("gowalla"),
        "lightgcn",
    ),
    "gowalla-valid-latest": _Spec(
        "gowalla, its validation split the last 10 % of each user's training line "
        "(`gemrec import --valid-latest`: the lines keep each user's check-ins in time order)",
        _dir("gowalla"),
        "lightgcn",
        {"valid_latest": True},
    ),
    "gowalla-categories": _Spec(
        "gowalla with 50 random item categories (serving benchmark)",
        _dir("gowalla"),
        "lightgcn",
        items=_random_categories,
    ),
    "movielens-1m": _Spec(
        "the UltraGCN implicit split of MovieLens-1M",
        _dir("movielens-1m", "ultragcn_implicit_split"),
        "lightgcn",
    ),
    "movielens-100k": _Spec(
        "MovieLens-100K, the official u1.base / u1.test split, every rating an interaction",
        _pairs_as_lightgcn("movielens-100k", "u1.base", "u1.test"),
        "lightgcn",
    ),
    "movielens-100k-temporal": _Spec(
        "MovieLens-100K with metadata, test = ratings after one global time cut (latest 20 %)",
        _dir("movielens-100k"),
        "movielens",
        {"split": "temporal", "test_fraction": 0.2},
    ),
    "lastfm-2k": _Spec(
        "Last.fm, the LightGCN-PyTorch split (data1.txt / test1.txt)",
        _pairs_as_lightgcn("lastfm-2k/lightgcn_pytorch_split", "data1.txt", "test1.txt"),
        "lightgcn",
    ),
    "taobao": _Spec(
        "the Taobao UserBehavior sample, test = events after one global time cut (latest 20 %), "
        "item category as side information",
        _dir("taobao-userbehavior-sample", "UserBehavior_prefix.csv"),
        "taobao",
        {"split": "temporal", "test_fraction": 0.2},
    ),
    "amazon-scientific": _Spec(
        "Amazon Industrial & Scientific, leave-one-out (the last item of each sequence is test), "
        "category path and brand as side information",
        _amazon_events,
        "events",
        {"split": "leave-last", "leave_n": 1},
        items=_amazon_items,
    ),
    "amazon-scientific-random": _Spec(
        "Amazon Industrial & Scientific, 20 % of each user's items held out at random (the "
        "protocol of the LightGCN-format splits)",
        _amazon_events,
        "events",
        {"split": "random", "test_fraction": 0.2},
        items=_amazon_items,
    ),
    "amazon-scientific-text": _Spec(
        "Amazon Industrial & Scientific (RecBole files, item text), the published leave-one-out "
        "split (warm: every test item has training interactions)",
        _dir("amazon-scientific-text"),
        "recbole",
    ),
    "amazon-scientific-cold-items": _Spec(
        "Amazon Industrial & Scientific (RecBole files, item text), 20 % of the items held out "
        "entirely as test (cold items)",
        _dir("amazon-scientific-text"),
        "recbole",
        {"split": "cold-items", "test_fraction": 0.2},
    ),
    "movielens-1m-cold-users": _Spec(
        "the UltraGCN implicit split of MovieLens-1M pooled, 20 % of the users held out entirely "
        "as test (cold users)",
        _dir("movielens-1m", "ultragcn_implicit_split"),
        "lightgcn",
        {"split": "cold-users", "test_fraction": 0.2},
    ),
    "movielens-100k-cold-users": _Spec(
        "MovieLens-100K ratings with u.user (gender, age, occupation, zip), 20 % of the users "
        "held out entirely as test (cold users)",
        _dir("movielens-100k"),
        "movielens",
        {"split": "cold-users", "test_fraction": 0.2},
    ),
    "lastfm-2k-cold-users": _Spec(
        "HetRec Last.fm (play counts, friendships kept), 20 % of the users held out entirely as "
        "test (cold users)",
        _dir("lastfm-2k"),
        "lastfm",
        {"split": "cold-users", "test_fraction": 0.2},
    ),
    "lastfm-2k-social": _Spec(
        "HetRec Last.fm (play counts, friendships kept), 20 % of each user's artists held out "
        "at random as test",
        _dir("lastfm-2k"),
        "lastfm",
        {"split": "random", "test_fraction": 0.2},
    ),
    "ciao-social": _Spec(
        "Ciao ratings (trust network kept), 20 % of each user's items held out at random as test",
        _dir("ciao"),
        "ciao",
        {"split": "random", "test_fraction": 0.2},
    ),
    "ciao-cold-users": _Spec(
        "Ciao ratings (trust network kept), 20 % of the users held out entirely as test "
        "(cold users)",
        _dir("ciao"),
        "ciao",
        {"split": "cold-users", "test_fraction": 0.2},
    ),
}


def _code_version() -> str:
    """Hash of the importer's source: a cached import is reused only by the same code."""
    h = hashlib.sha256()
    for path in sorted(Path(gemrec.data.__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _cache_root() -> Path:
    env = os.environ.get("GEMREC_BENCH_DATA")
    return Path(env) if env else Path(tempfile.gettempdir()) / "gemrec-bench-data"


def load(
    name: str, *, valid_fraction: float = 0.1, seed: int = 0, refresh: bool = False
) -> Dataset:
    """The dataset ``name`` imported with ``gemrec import`` (cached; see the module docstring).

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    valid_fraction : float
        Share of each user's training edges carved out as the validation split (for the
        cold-start datasets: share of the items or users held out as cold validation ones).
    seed : int
        The importer's seed (validation split, random splits).
    refresh : bool
        Import again even when a cached import exists.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown benchmark dataset {name!r}; expected one of {sorted(DATASETS)}")
    spec = DATASETS[name]
    options = {**spec.options, "valid_fraction": valid_fraction, "seed": seed}
    key = json.dumps([name, spec.format, options, _code_version()], sort_keys=True)
    tag = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = _cache_root() / f"{name}-{tag}"
    if (path / "manifest.json").is_file() and not refresh:
        return Dataset.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as work:
        result = import_dataset(
            spec.sources(Path(work)),
            path,
            format=spec.format,
            items=spec.items(Path(work)) if spec.items else None,
            **options,
        )
    return Dataset.open(result.path)


def splits(name: str, **options: Any) -> tuple[Interactions, Interactions, Interactions]:
    """``(train, valid, test)`` of :func:`load` ``(name, **options)``."""
    ds = load(name, **options)
    return ds.interactions("train"), ds.interactions("valid"), ds.interactions("test")


def train_test(name: str, **options: Any) -> tuple[Interactions, Interactions]:
    """``(train + valid, test)``: what a model is fit on and scored against in the published
    protocols (full ranking, training items excluded)."""
    ds = load(name, **options)
    return ds.interactions("train", "valid"), ds.interactions("test")


if __name__ == "__main__":
    for arg in sys.argv[1:] or sorted(DATASETS):
        ds = load(arg)
        print(f"{arg}: {ds.path}  {json.dumps(ds.manifest['counts'])}", flush=True)
