"""Small independent loaders: raw public files -> gemrec dataset dirs (via ``write_dataset``).

Kept independent of the importer so the analysis tests double as an independent recount.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gemrec.data.store import write_dataset

TAOBAO_TYPES = {"pv": "view", "buy": "purchase", "cart": "cart", "fav": "fav"}
WEIGHTS = {"view": 1.0, "click": 1.0, "fav": 2.0, "cart": 3.0, "purchase": 4.0, "rating": 1.0}


def read_taobao(root: Path) -> pd.DataFrame:
    """Raw rows: user, item, category (str), event_type, timestamp (float64)."""
    df = pd.read_csv(
        root / "UserBehavior_prefix.csv",
        names=["user", "item", "category", "behavior", "timestamp"],
        dtype={"user": str, "item": str, "category": str, "behavior": str},
    )
    return pd.DataFrame(
        {
            "user_id": df["user"],
            "item_id": df["item"],
            "category": df["category"],
            "event_type": df["behavior"].map(TAOBAO_TYPES),
            "timestamp": df["timestamp"].astype(np.float64),
            "value": np.nan,
        }
    )


def read_movielens(root: Path) -> pd.DataFrame:
    """Ratings as behaviour: event_type "rating", value = the rating; category = first genre."""
    df = pd.read_csv(root / "u.data", sep="\t", names=["user", "item", "rating", "ts"], dtype=str)
    genres = [
        line.split("|")[0]
        for line in (root / "u.genre").read_text(encoding="latin-1").splitlines()
        if line.strip()
    ]
    items = pd.read_csv(root / "u.item", sep="|", header=None, encoding="latin-1", dtype=str)
    flags = items.iloc[:, 5 : 5 + len(genres)].astype(int).to_numpy()
    first = np.where(flags.any(axis=1), flags.argmax(axis=1), -1)
    cat = {i: (genres[g] if g >= 0 else "") for i, g in zip(items[0], first, strict=True)}
    return pd.DataFrame(
        {
            "user_id": df["user"],
            "item_id": df["item"],
            "category": df["item"].map(cat),
            "event_type": "rating",
            "timestamp": df["ts"].astype(np.float64),
            "value": df["rating"].astype(np.float64),
        }
    )


def temporal_split(edges: pd.DataFrame, valid: float = 0.1, test: float = 0.2) -> np.ndarray:
    """Like ``gemrec import --split temporal``: edges after a global time cut (the latest ``test``
    share) -> test; then each user's latest ``valid`` share of train edges (at least one for users
    with 3 or more) -> valid."""
    t = edges["last_timestamp"].to_numpy()
    u = edges["user"].to_numpy()
    t_test = np.quantile(t, 1.0 - test)
    split = np.where(t > t_test, "test", "train").astype(object)
    tr = np.flatnonzero(split == "train")
    order = tr[np.lexsort((-t[tr], u[tr]))]  # per user, latest first
    ou = u[order]
    counts = np.bincount(ou, minlength=int(u.max()) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(order)) - starts[ou]
    n_valid = np.where(counts >= 3, np.maximum(1, np.floor(counts * valid)), 0)
    split[order[rank < n_valid[ou]]] = "valid"
    return split.astype(str)


def build_dataset(raw: pd.DataFrame, path: Path, *, split: str = "train") -> Path:
    """Write a dataset directory from raw rows (user_id, item_id, category, event_type, timestamp,
    value). ``split``: "train" (everything train) or "temporal" (see :func:`temporal_split`)."""
    user_ids = np.sort(raw["user_id"].unique())
    item_ids = np.sort(raw["item_id"].unique())
    u = np.searchsorted(user_ids, raw["user_id"].to_numpy()).astype(np.int32)
    i = np.searchsorted(item_ids, raw["item_id"].to_numpy()).astype(np.int32)
    events = pd.DataFrame(
        {
            "user": u,
            "item": i,
            "event_type": raw["event_type"].to_numpy(),
            "timestamp": raw["timestamp"].to_numpy(np.float64),
            "value": raw["value"].to_numpy(np.float64),
            "event_id": np.arange(len(raw), dtype=np.int64),
        }
    )
    cat_of_item = raw.assign(item=i).drop_duplicates("item").set_index("item")["category"]
    items = pd.DataFrame(
        {
            "item": np.arange(len(item_ids), dtype=np.int32),
            "item_id": item_ids.astype(str),
            "category": cat_of_item.reindex(np.arange(len(item_ids))).to_numpy(),
        }
    )
    users = pd.DataFrame(
        {"user": np.arange(len(user_ids), dtype=np.int32), "user_id": user_ids.astype(str)}
    )
    w = events["event_type"].map(WEIGHTS).to_numpy(np.float32)
    edges = (
        events.assign(weight=w)
        .groupby(["user", "item"], sort=True)
        .agg(
            weight=("weight", "sum"),
            last_timestamp=("timestamp", "max"),
            n_events=("event_id", "size"),
        )
        .reset_index()
    )
    edges["n_events"] = edges["n_events"].astype(np.int32)
    edges["split"] = "train" if split == "train" else temporal_split(edges)
    return write_dataset(
        path,
        users=users,
        items=items,
        edges=edges,
        events=events,
        manifest={"source": "tests loader", "event_weights": WEIGHTS},
    )
