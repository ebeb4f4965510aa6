"""Small shop datasets with a known structure, models fit on them, and app/client factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from gemrec.data.store import Dataset, write_dataset
from gemrec.models.popularity import Popularity
from gemrec.models.svd import PureSVD
from gemrec.serve import ServeSettings, create_app
from tests.serve._process import free_port, wait_until

N_CATEGORIES = 3
ITEMS_PER_CATEGORY = 20
USERS_PER_CATEGORY = 30


def build_shop(path: Path, *, seed: int = 0, social: bool = True, valid: bool = False) -> Path:
    """Users of block c interact with items of category c only (a known answer).

    Items ``i{n}``: category ``cat{n // 20}``, brand ``b{n % 4}``, title "cat{c} thing {n}";
    user ``u{m}`` belongs to block ``m // 30`` and touches 8 of its block's items; popularity
    inside a block falls with the item index (item 0 of each block is the most popular). Users
    ``lurker0..2`` have metadata (lurker0 also a social link) but no interactions. Each user's
    last item is the test split; with ``valid`` the one before it is the validation split.
    """
    rng = np.random.default_rng(seed)
    n_items = N_CATEGORIES * ITEMS_PER_CATEGORY
    n_active = N_CATEGORIES * USERS_PER_CATEGORY
    items = pd.DataFrame(
        {
            "item": np.arange(n_items, dtype=np.int32),
            "item_id": [f"i{n}" for n in range(n_items)],
            "category": [f"cat{n // ITEMS_PER_CATEGORY}" for n in range(n_items)],
            "brand": [f"b{n % 4}" for n in range(n_items)],
            "title": [f"cat{n // ITEMS_PER_CATEGORY} thing {n}" for n in range(n_items)],
            "price": np.linspace(1, 100, n_items).astype(np.float32),
        }
    )
    user_ids = [f"u{m}" for m in range(n_active)] + ["lurker0", "lurker1", "lurker2"]
    users = pd.DataFrame(
        {
            "user": np.arange(len(user_ids), dtype=np.int32),
            "user_id": user_ids,
            "segment": [f"s{(m // USERS_PER_CATEGORY)}" for m in range(n_active)]
            + ["s1", "s2", "s0"],
        }
    )
    rows = []
    p = 1.0 / np.arange(1, ITEMS_PER_CATEGORY + 1)
    p /= p.sum()
    for m in range(n_active):
        block = m // USERS_PER_CATEGORY
        chosen = rng.choice(ITEMS_PER_CATEGORY, size=8, replace=False, p=p)
        for j, c in enumerate(chosen):
            rows.append(
                (
                    m,
                    block * ITEMS_PER_CATEGORY + int(c),
                    1.0,
                    "train" if j < 6 or (j == 6 and not valid) else "valid" if j == 6 else "test",
                    1.6e9 + 3600.0 * (m + j),
                )
            )
    e = np.array(rows, dtype=object)
    edges = pd.DataFrame(
        {
            "user": e[:, 0].astype(np.int32),
            "item": e[:, 1].astype(np.int32),
            "weight": e[:, 2].astype(np.float32),
            "split": e[:, 3].astype(str),
            "last_timestamp": e[:, 4].astype(np.float64),
            "n_events": np.ones(len(e), np.int32),
        }
    )
    soc = None
    if social:
        # lurker0 follows three users of block 2
        lurker = user_ids.index("lurker0")
        soc = pd.DataFrame({"user": np.int32([lurker] * 3), "friend": np.int32([60, 61, 62])})
    write_dataset(
        path, users=users, items=items, edges=edges, manifest={"name": "shop"}, social=soc
    )
    return path


#: the funnel of :func:`build_typed_shop` with the default weights of the one event table
FUNNEL = {"view": 1.0, "cart": 4.0, "purchase": 5.0}


def build_typed_shop(path: Path, *, with_events: bool = True, seed: int = 0) -> Path:
    """The shop of :func:`build_shop` with each pair made of typed events (non-unit weights).

    Every (user, item) pair was viewed 1-3 times, then carted with probability 1/2 and, once
    carted, bought with probability 1/2 (each step an hour after the last). An edge's weight is
    its events' summed :data:`FUNNEL` weights, ``n_view``/``n_cart``/``n_purchase`` count them
    and ``last_timestamp`` is the last one's time; with ``with_events`` the events are written to
    ``events.parquet``.
    """
    build_shop(path, seed=seed)
    ds = Dataset.open(path)
    rng = np.random.default_rng(seed + 1)
    edges = ds.edges.copy()
    rows = []
    for n, (user, item, start) in enumerate(
        zip(edges.user, edges.item, edges.last_timestamp, strict=True)
    ):
        types = ["view"] * int(rng.integers(1, 4))
        if rng.random() < 0.5:
            types.append("cart")
            if rng.random() < 0.5:
                types.append("purchase")
        for j, t in enumerate(types):
            rows.append((int(user), int(item), t, float(start) + 3600.0 * j, f"e{n}-{j}"))
    events = pd.DataFrame(rows, columns=["user", "item", "event_type", "timestamp", "event_id"])
    events["value"] = np.where(events.event_type == "purchase", 2.0, np.nan)
    pair = events.groupby(["user", "item"], sort=False)
    agg = pair.agg(last_timestamp=("timestamp", "max"), n_events=("event_type", "size"))
    for t in FUNNEL:
        agg[f"n_{t}"] = pair.event_type.apply(lambda s, t=t: int((s == t).sum()))
    agg["weight"] = sum(agg[f"n_{t}"] * w for t, w in FUNNEL.items())
    agg = agg.reset_index()
    edges = edges[["user", "item", "split"]].merge(agg, on=["user", "item"])
    edges = edges.astype({"weight": np.float32, "n_events": np.int32})
    events["user"] = events.user.astype(np.int32)
    events["item"] = events.item.astype(np.int32)
    events = events[["user", "item", "event_type", "timestamp", "value", "event_id"]]
    write_dataset(
        path,
        users=ds.users,
        items=ds.items,
        edges=edges,
        manifest={"name": "typed shop", "event_weights": dict(FUNNEL)},
        events=events if with_events else None,
        social=pd.read_parquet(path / "social.parquet"),
    )
    return path


@pytest.fixture(scope="session")
def typed_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_typed_shop(tmp_path_factory.mktemp("data") / "typed-shop")


@pytest.fixture(scope="session")
def typed_shop_edges_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_typed_shop(tmp_path_factory.mktemp("data") / "typed-edges", with_events=False)


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shop(tmp_path_factory.mktemp("data") / "shop")


@pytest.fixture(scope="session")
def shop_with_valid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shop(tmp_path_factory.mktemp("data") / "shop-valid", valid=True)


@pytest.fixture(scope="session")
def svd_dir(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = PureSVD(factors=6).fit(Dataset.open(shop).interactions("train", "valid"))
    return model.save(tmp_path_factory.mktemp("models") / "svd")


@pytest.fixture(scope="session")
def pop_dir(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = Popularity().fit(Dataset.open(shop).interactions("train", "valid"))
    return model.save(tmp_path_factory.mktemp("models") / "pop")


@pytest.fixture
def make_client(shop: Path, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """``make_client(model_dir, **settings)`` -> a started TestClient with a fresh SQLite store."""
    clients: list[TestClient] = []

    def make(model_dir: Path, **overrides: Any) -> TestClient:
        overrides.setdefault("store", f"sqlite:///{tmp_path / f'events{len(clients)}.sqlite3'}")
        overrides.setdefault("dataset_dir", shop)
        settings = ServeSettings(model_dir=model_dir, **overrides)
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port (AOF fsync always), stopped after the session."""
    import shutil
    import subprocess

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "redis-server binary not found "
            "(install it: apt-get install -y redis-server; .ci/run does)"
        )
    import redis

    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)

    def answers() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"redis-server exited with {proc.returncode}")
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until(answers, "redis-server answering PING", poll=0.05)
    except TimeoutError as exc:
        proc.kill()
        pytest.fail(str(exc))
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def fresh_redis(redis_url: str) -> str:
    """The session's Redis with database 0 flushed."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return f"{redis_url}/0"


@pytest.fixture(scope="session")
def typed_svd_dir(typed_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = PureSVD(factors=6).fit(Dataset.open(typed_shop).interactions("train", "valid"))
    return model.save(tmp_path_factory.mktemp("models") / "typed-svd")


@pytest.fixture(scope="session")
def typed_pop_dir(typed_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = Popularity().fit(Dataset.open(typed_shop).interactions("train", "valid"))
    return model.save(tmp_path_factory.mktemp("models") / "typed-pop")
