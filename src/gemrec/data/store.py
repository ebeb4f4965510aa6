"""The dataset directory every command after ``gemrec import`` reads.

Layout (all Parquet; ids are contiguous internal ints, raw ids kept as strings)::

    DATASET_DIR/
      manifest.json    counts, schema, splits, event weights, cleaning report, source fingerprints
      users.parquet    user (int32), user_id (str), [metadata columns...]
      items.parquet    item (int32), item_id (str), [category, brand, title, price, tags, ...]
      edges.parquet    user, item (int32), weight (float32), split ("train"|"valid"|"test"),
                       last_timestamp (float64 epoch s, NaN if unknown), n_events (int32),
                       n_<event_type> (int32) per event type
      events.parquet   (optional) user, item, event_type, timestamp, value, event_id
      social.parquet   (optional) user, friend (int32; directed edges as given)

Each user-item pair appears once in ``edges.parquet`` with one split label.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.errors import DataError

__all__ = ["SPLITS", "TRAIN_SPLITS", "Dataset", "TableFile", "write_dataset"]

SPLITS = ("train", "valid", "test")
#: the parts a final model is trained on (the published protocols train on all of train.txt)
TRAIN_SPLITS = ("train", "valid")
FORMAT_VERSION = 1


@dataclass
class Dataset:
    """A dataset directory opened for reading.

    Examples
    --------
    >>> ds = Dataset.open("data/shop")          # doctest: +SKIP
    >>> train = ds.interactions("train", "valid")  # doctest: +SKIP
    >>> test = ds.interactions("test")             # doctest: +SKIP
    """

    path: Path
    manifest: dict[str, Any] = field(repr=False)

    @classmethod
    def open(cls, path: str | Path) -> Dataset:
        path = Path(path)
        mf = path / "manifest.json"
        if not mf.is_file():
            raise DataError(
                "not a gemrec dataset directory (no manifest.json); "
                "create one with `gemrec import`",
                path=str(path),
            )
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(
                f"manifest.json is not valid JSON ({exc}); re-run `gemrec import`", path=str(mf)
            ) from None
        if not isinstance(manifest, dict):
            raise DataError(
                "manifest.json must hold a JSON object; re-run `gemrec import`", path=str(mf)
            )
        if manifest.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"dataset format version {manifest.get('format_version')!r} is not supported "
                f"(expected {FORMAT_VERSION}); re-run `gemrec import`",
                path=str(mf),
            )
        return cls(path, manifest)

    # ----------------------------------------------------------------- tables
    @cached_property
    def users(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "users.parquet")

    @cached_property
    def items(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "items.parquet")

    @cached_property
    def edges(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "edges.parquet")

    @property
    def has_events(self) -> bool:
        return (self.path / "events.parquet").is_file()

    @cached_property
    def events(self) -> pd.DataFrame:
        if not self.has_events:
            raise DataError(
                "this dataset has no event log (it was imported from a format without events)",
                path=str(self.path),
            )
        return pd.read_parquet(self.path / "events.parquet")

    @property
    def has_social(self) -> bool:
        return (self.path / "social.parquet").is_file()

    @cached_property
    def social(self) -> sp.csr_matrix:
        """Directed user x user adjacency (float32 ones), shape (n_users, n_users)."""
        if not self.has_social:
            raise DataError("this dataset has no social graph", path=str(self.path))
        df = pd.read_parquet(self.path / "social.parquet")
        n = self.n_users
        m = sp.csr_matrix(
            (np.ones(len(df), np.float32), (df["user"].to_numpy(), df["friend"].to_numpy())),
            shape=(n, n),
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    @property
    def n_users(self) -> int:
        return int(self.manifest["counts"]["users"])

    @property
    def n_items(self) -> int:
        return int(self.manifest["counts"]["items"])

    @cached_property
    def user_ids(self) -> np.ndarray:
        out: np.ndarray = self.users["user_id"].to_numpy(dtype=object).astype(str)
        return out

    @cached_property
    def item_ids(self) -> np.ndarray:
        out: np.ndarray = self.items["item_id"].to_numpy(dtype=object).astype(str)
        return out

    @cached_property
    def user_index(self) -> dict[str, int]:
        """Raw user id -> internal id."""
        return {u: i for i, u in enumerate(self.user_ids)}

    @cached_property
    def item_index(self) -> dict[str, int]:
        """Raw item id -> internal id."""
        return {u: i for i, u in enumerate(self.item_ids)}

    # ----------------------------------------------------------------- matrices
    def interactions(self, *splits: str, binary: bool = False) -> Interactions:
        """The union of the named splits as :class:`Interactions` over the full id space.

        Parameters
        ----------
        *splits : {"train", "valid", "test"}
            Defaults to ``TRAIN_SPLITS`` (train + valid).
        binary : bool
            Use weight 1 for every edge instead of the behaviour weights.
        """
        splits = splits or TRAIN_SPLITS
        bad = [s for s in splits if s not in SPLITS]
        if bad:
            raise DataError(
                f"unknown split {bad[0]!r}; expected one of {SPLITS}", path=str(self.path)
            )
        e = self.edges
        sel = e[e["split"].isin(splits)]
        w = np.ones(len(sel), np.float32) if binary else sel["weight"].to_numpy(np.float32)
        ts = sel["last_timestamp"].to_numpy(np.float64) if "last_timestamp" in sel else None
        if ts is not None and np.isnan(ts).all():
            ts = None
        first = sel["first_timestamp"].to_numpy(np.float64) if "first_timestamp" in sel else None
        if ts is None or (first is not None and np.isnan(first).all()):
            first = None
        # a source's own order where it gives no times (see Interactions.order)
        order = (
            sel["source_order"].to_numpy(np.float64)
            if ts is None and "source_order" in sel
            else None
        )
        return Interactions.from_arrays(
            sel["user"].to_numpy(),
            sel["item"].to_numpy(),
            w,
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            timestamps=ts,
            first_timestamps=first,
            order=order,
        )

    def side_information(self) -> SideInformation:
        """What the dataset knows about its items and users' ties, for models that declare they
        use it."""
        return SideInformation(
            item_features=self.items,
            item_categories=self.item_categories(),
            social=self.social if self.has_social else None,
            user_features=self.users,
        )

    def item_categories(self) -> np.ndarray | None:
        """Category code per item (int32, -1 where unknown), or None without a category column."""
        if "category" not in self.items:
            return None
        # "" is how the tables write a missing value: unknown, not a category of its own
        codes, _ = pd.factorize(self.items["category"].replace("", None))
        out: np.ndarray = codes.astype(np.int32)
        return out


@dataclass(frozen=True)
class TableFile:
    """A table already written as Parquet (too large to hold in memory), moved into a dataset.

    Attributes
    ----------
    path : Path
        The file; on the same file system as the dataset directory.
    n_rows : int
    schema : dict of str to str
        Column -> pandas dtype name, as the manifest records it.
    """

    path: Path
    n_rows: int
    schema: dict[str, str]

    def __len__(self) -> int:
        return self.n_rows


def write_dataset(
    path: str | Path,
    *,
    users: pd.DataFrame,
    items: pd.DataFrame,
    edges: pd.DataFrame,
    manifest: dict[str, Any],
    events: pd.DataFrame | TableFile | None = None,
    social: pd.DataFrame | None = None,
    extra_files: Iterable[tuple[str, bytes]] = (),
) -> Path:
    """Write a dataset directory atomically (a temp dir renamed into place).

    ``manifest`` is completed with ``format_version``, ``counts`` and ``schema``. ``events`` may be
    a :class:`TableFile`, moved into place instead of written.
    """
    path = Path(path)
    for name, df, required in (
        ("users", users, ("user", "user_id")),
        ("items", items, ("item", "item_id")),
        ("edges", edges, ("user", "item", "weight", "split")),
    ):
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise DataError(f"{name} table lacks columns {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tables: dict[str, pd.DataFrame | TableFile] = {
            "users": users,
            "items": items,
            "edges": edges,
        }
        if events is not None:
            tables["events"] = events
        if social is not None:
            tables["social"] = social
        for name, df in tables.items():
            if isinstance(df, TableFile):
                os.replace(df.path, tmp / f"{name}.parquet")
            else:
                df.to_parquet(tmp / f"{name}.parquet", index=False)
        for name, data in extra_files:
            (tmp / name).write_bytes(data)
        split_counts = edges["split"].value_counts().to_dict()
        full = {
            "format_version": FORMAT_VERSION,
            **manifest,
            "counts": {
                "users": len(users),
                "items": len(items),
                "edges": len(edges),
                "events": None if events is None else len(events),
                "social_edges": None if social is None else len(social),
                "splits": {s: int(split_counts.get(s, 0)) for s in SPLITS},
            },
            "schema": {name: _schema(df) for name, df in tables.items()},
            "files": [*sorted(p.name for p in tmp.iterdir()), "manifest.json"],
        }
        (tmp / "manifest.json").write_text(json.dumps(full, indent=2, default=_json_default))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _schema(table: pd.DataFrame | TableFile) -> dict[str, str]:
    if isinstance(table, TableFile):
        return dict(table.schema)
    return {str(c): str(t) for c, t in table.dtypes.items()}


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
