"""The content model: cold items placed by their text, on data where the text says the category.

Three categories (kitchen, garden, music) of 12 items each; users of a category interact with 6
of its first 8 items; items 8..11 of every category have no interactions (cold) and are known by
their title alone ("deluxe frying pan for kitchen"). The right answer is known by construction:
a user's cold items are those of their category.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gemrec._optional import is_available
from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.errors import GemrecError
from gemrec.models.base import Recommender
from gemrec.models.content import ContentModel
from gemrec.models.svd import PureSVD
from tests.text._titles import titled_items

pytestmark = pytest.mark.skipif(
    not is_available("sentence_transformers"),
    reason="the 'text' extra is not installed (pip install 'gemrec[text]')",
)

PER_CATEGORY, WARM_PER_CATEGORY, USERS_PER_CATEGORY = 12, 8, 15


def _data() -> tuple[Interactions, SideInformation, np.ndarray, np.ndarray]:
    titles, cats = titled_items(PER_CATEGORY)
    item_cat = np.asarray(cats)
    rng = np.random.default_rng(0)
    users, items = [], []
    for c in range(3):
        for j in range(USERS_PER_CATEGORY):
            chosen = rng.choice(WARM_PER_CATEGORY, size=6, replace=False) + c * PER_CATEGORY
            users += [c * USERS_PER_CATEGORY + j] * len(chosen)
            items += chosen.tolist()
    inter = Interactions.from_arrays(
        np.array(users), np.array(items), n_users=3 * USERS_PER_CATEGORY, n_items=len(titles)
    )
    table = pd.DataFrame({"item": np.arange(len(titles)), "title": titles})
    cold = np.flatnonzero(np.arange(len(titles)) % PER_CATEGORY >= WARM_PER_CATEGORY)
    return inter, SideInformation(item_features=table), item_cat, cold


@pytest.fixture(scope="module")
def data() -> tuple[Interactions, SideInformation, np.ndarray, np.ndarray]:
    return _data()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("text-cache")


@pytest.mark.parametrize("text_weight", [0.0, 2.0])
def test_cold_items_of_the_users_category_come_first(data, cache, text_weight):
    """Each user's top 4 cold items are the 4 of their category (a random ranking gets 1/3), with
    the ridge map alone (text_weight 0) and with the text profiles added."""
    inter, side, item_cat, cold = data
    model = ContentModel(
        base_params={"factors": 6}, text_weight=text_weight, cache_dir=str(cache)
    ).fit(inter, side=side)
    users = np.arange(inter.n_users)
    ids, _ = model.recommend(users, k=4, candidates=cold)
    user_cat = users // USERS_PER_CATEGORY
    hits = item_cat[ids] == user_cat[:, None]
    assert hits.all(), hits.mean()
    assert model.text_map_.shape == (384, 6)


def test_cold_items_neighbours_share_their_category(data, cache):
    inter, side, item_cat, cold = data
    model = ContentModel(base_params={"factors": 6}, cache_dir=str(cache)).fit(inter, side=side)
    ids, _ = model.similar_items(cold, k=3)
    same = item_cat[ids] == item_cat[cold][:, None]
    assert same.all(), same


def test_without_text_the_model_is_its_base(data):
    inter, _, _, _ = data
    model = ContentModel(base_params={"factors": 6}).fit(inter)
    svd = PureSVD(factors=6).fit(inter)
    np.testing.assert_array_equal(model.item_embeddings_, svd.item_embeddings_)
    np.testing.assert_array_equal(model.user_embeddings_, svd.user_embeddings_)
    with pytest.raises(GemrecError, match="without item text"):
        model.embed_new_items({"title": "garden hose"})


def test_new_titled_item_lands_among_its_kind_and_survives_save_load(data, cache, tmp_path):
    inter, side, item_cat, _ = data
    model = ContentModel(base_params={"factors": 6}, cache_dir=str(cache)).fit(inter, side=side)
    loaded = Recommender.load(model.save(tmp_path / "content"))
    assert isinstance(loaded, ContentModel)
    new = loaded.embed_new_items([{"title": "trumpet mouthpiece"}, {"title": "nonstick wok"}])
    np.testing.assert_allclose(
        new, model.embed_new_items({"title": ["trumpet mouthpiece", "nonstick wok"]}), atol=1e-5
    )
    v = loaded.item_embeddings_
    cos = (new @ v.T) / np.linalg.norm(new, axis=1)[:, None] / np.linalg.norm(v, axis=1)[None]
    top = np.argsort(-cos, axis=1)[:, :5]
    assert (item_cat[top[0]] == 2).all() and (item_cat[top[1]] == 0).all()
    # users of the music category score the trumpet part above users of the kitchen one
    scores = loaded.user_embeddings_ @ new[0]
    assert scores[2 * USERS_PER_CATEGORY :].min() > scores[:USERS_PER_CATEGORY].max()
