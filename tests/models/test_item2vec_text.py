"""Item text as an item2vec side field: k-means clusters of the titles' sentence embeddings.

The data of ``tests/models/test_content.py``: three categories whose titles say the category,
users who stay in one category, four items per category without interactions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gemrec._optional import is_available
from gemrec.models.base import Recommender
from gemrec.models.item2vec import Item2Vec
from tests.models.test_content import _data

pytestmark = pytest.mark.skipif(
    not (is_available("sentence_transformers") and is_available("torch")),
    reason="needs the 'text' and 'torch' extras (pip install 'gemrec[text,torch]')",
)


def test_text_clusters_are_a_side_field_that_places_new_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMREC_CACHE_DIR", str(tmp_path / "cache"))
    inter, side, item_cat, _ = _data()
    model = Item2Vec(
        text_clusters=3,
        graph="cooccurrence",
        epochs=3,
        embedding_dim=16,
        walks_per_item=8,
        walk_length=8,
        pairs_per_batch=512,
        lr=0.02,
        progress=False,
    ).fit(inter, side=side)
    assert "text_cluster" in model.side_fields_
    assert model.text_centroids_.shape == (3, 384)
    # the three clusters are the three categories (titles end "for kitchen", ...)
    from gemrec.text import embed_item_texts, item_texts, nearest_centroid

    texts = item_texts(side.item_features)
    clusters = np.array(
        nearest_centroid(embed_item_texts(texts), model.text_centroids_, model.text_mean_)
    )
    for c in range(3):
        assert len(set(clusters[item_cat == c])) == 1
    assert len(set(clusters)) == 3
    # a new item known by its title alone gets its category's cluster, and a vector near it
    loaded = Recommender.load(model.save(tmp_path / "i2v"))
    assert isinstance(loaded, Item2Vec)
    vec = loaded.embed_new_items({"title": "deluxe trumpet mouthpiece for music"})
    np.testing.assert_allclose(
        vec, model.embed_new_items({"title": "deluxe trumpet mouthpiece for music"}), atol=1e-6
    )
    ids, _ = loaded.similar_to_vectors(vec, k=5)
    assert (item_cat[ids[0]] == 2).all()
