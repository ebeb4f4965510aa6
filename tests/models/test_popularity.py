"""Popularity: global counts and the time-decayed variant, checked by hand."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.models.base import Recommender
from gemrec.models.popularity import Popularity, UserGroupPopularity

DAY = 86400.0


def _data():
    # item 0: three users, 10 days before the last event; item 1: two users, today; item 2 weight 5
    users = np.array([0, 1, 2, 3, 4, 5])
    items = np.array([0, 0, 0, 1, 1, 2])
    weights = np.array([1, 1, 1, 1, 1, 5], dtype=np.float32)
    ts = np.array([0, 0, 0, 10, 10, 5], dtype=np.float64) * DAY
    return Interactions.from_arrays(users, items, weights, n_users=7, n_items=3, timestamps=ts)


def test_global_popularity_counts_users():
    model = Popularity().fit(_data())
    np.testing.assert_array_equal(model.item_scores_, [3, 2, 1])
    assert model.recommend([6], k=3)[0].tolist() == [[0, 1, 2]]


def test_weighted_popularity_sums_weights():
    np.testing.assert_array_equal(Popularity(weighted=True).fit(_data()).item_scores_, [3, 2, 5])


def test_time_decay_halves_every_half_life():
    model = Popularity(half_life_days=5.0).fit(_data())
    # ages: item 0 10 days (x 1/4), item 1 0 days, item 2 5 days (x 1/2)
    np.testing.assert_allclose(model.item_scores_, [3 / 4, 2.0, 0.5], rtol=1e-6)
    assert model.recommend([6], k=3)[0].tolist() == [[1, 0, 2]]


def test_bad_half_life_is_named():
    from gemrec.errors import ParameterError

    with pytest.raises(ParameterError, match="half_life_days"):
        Popularity(half_life_days=0).fit(_data())


def test_user_group_popularity_serves_a_cold_user_their_group(tmp_path: Path) -> None:
    """Users 0-1 (gender F) like item 0, users 2-3 (M) items 1 and 2; user 4 (F, no history)
    gets item 0 first, user 5 (no metadata row) global popularity, scaled to break ties only."""
    x = Interactions.from_arrays([0, 1, 2, 2, 3, 3, 3], [0, 0, 1, 2, 1, 2, 3], n_users=6, n_items=4)
    users = pd.DataFrame(
        {
            "user": np.arange(5, dtype=np.int32),
            "user_id": [f"u{i}" for i in range(5)],
            "gender": ["F", "F", "M", "M", "F"],
            "zip": ["a", "b", "c", "d", "e"],
        }
    )
    side = SideInformation(user_features=users)
    m = UserGroupPopularity(columns=["gender"]).fit(x, side=side)
    scores = m.score(np.arange(6))
    np.testing.assert_allclose(scores[4], [2, 0, 0, 0], atol=1e-5)
    np.testing.assert_allclose(scores[2], [0, 2, 2, 1], atol=1e-5)
    np.testing.assert_allclose(scores[5], 1e-6 * np.array([1, 1, 1, 0.5]), rtol=1e-4)
    # the zip code named: each group is one user, the cold one has no signal
    alone = UserGroupPopularity(columns=["gender", "zip"]).fit(x, side=side)
    assert alone.score(np.array([4]))[0].max() < 1e-5
    # by default a column with a value per user is left out
    by_default = UserGroupPopularity().fit(x, side=side)
    np.testing.assert_array_equal(by_default.score(np.arange(6)), scores)
    loaded = Recommender.load(m.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.score(np.arange(6)), scores)
