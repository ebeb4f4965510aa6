"""Popularity: global counts and the time-decayed variant, checked by hand."""

import numpy as np
import pytest

from gemrec.data.interactions import Interactions
from gemrec.models.popularity import Popularity

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
