"""A new item posted with only a title gets a vector from its text under the content model.

The shop of :func:`tests.serve.conftest.build_shop` (block c's users touch category c's items
only) with titles that name kitchen, garden and music goods; a new item's title shares no word
with any catalogue title, so only its meaning can place it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gemrec._optional import is_available
from gemrec.data.store import Dataset, write_dataset
from gemrec.models.content import ContentModel
from tests.serve.conftest import ITEMS_PER_CATEGORY, build_shop
from tests.text._titles import CATEGORIES, titled_items

pytestmark = pytest.mark.skipif(
    not is_available("sentence_transformers"),
    reason="the 'text' extra is not installed (pip install 'gemrec[text]')",
)


@pytest.fixture(scope="module")
def titled_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_shop(tmp_path_factory.mktemp("data") / "titled-shop")
    ds = Dataset.open(path)
    items = ds.items.copy()
    items["title"] = titled_items(ITEMS_PER_CATEGORY)[0]
    write_dataset(
        path,
        users=ds.users,
        items=items,
        edges=ds.edges,
        manifest={"name": "titled shop"},
        social=pd.read_parquet(path / "social.parquet"),
    )
    return path


@pytest.fixture(scope="module")
def content_dir(titled_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = Dataset.open(titled_shop)
    model = ContentModel(
        base_params={"factors": 6},
        text_columns=["title"],
        cache_dir=str(tmp_path_factory.mktemp("text-cache")),
    )
    model.fit(ds.interactions("train", "valid"), side=ds.side_information())
    return model.save(tmp_path_factory.mktemp("models") / "content")


@pytest.mark.parametrize(
    ("title", "category", "fan", "other"),
    [("trumpet mouthpiece", "music", "u60", "u0"), ("nonstick wok", "kitchen", "u0", "u60")],
)
def test_titled_new_item_gets_similar_items_of_its_kind(
    make_client, content_dir, titled_shop, title, category, fan, other
):
    c = make_client(content_dir, dataset_dir=titled_shop)
    r = c.post("/v1/items", json={"items": [{"item_id": "fresh", "title": title}]})
    assert r.json() == {"created": 1, "updated": 0}
    code = CATEGORIES.index(category)
    sim = c.get("/v1/items/fresh/similar", params={"k": 5}).json()["items"]
    assert {int(s["item_id"][1:]) // ITEMS_PER_CATEGORY for s in sim} == {code}

    # it reaches the list of a user who buys that kind of goods (14 candidates of their kind:
    # their 13 unseen items and this one), and stays out of another user's top 10
    def listed(user: str, k: int) -> list[str]:
        r = c.get(f"/v1/users/{user}/recommendations", params={"k": k})
        return [x["item_id"] for x in r.json()["items"]]

    assert "fresh" in listed(fan, 14)
    assert "fresh" not in listed(other, 10)
