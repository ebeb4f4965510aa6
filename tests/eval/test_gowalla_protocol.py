"""Pins the evaluation protocol to the published value for global popularity on Gowalla."""

import pytest

from gemrec.eval import evaluate
from gemrec.models.popularity import Popularity
from tests.conftest import shared_lightgcn_split


def test_popularity_on_gowalla_matches_published_protocol():
    train, test = shared_lightgcn_split("gowalla")
    assert (train.n_users, train.n_items) == (29858, 40981)
    result = evaluate(Popularity().fit(train), test, ks=[20])
    assert result.n_users == 29858
    assert result["recall@20"] == pytest.approx(0.0416, abs=5e-5)
    assert result["ndcg@20"] == pytest.approx(0.0317, abs=5e-5)
