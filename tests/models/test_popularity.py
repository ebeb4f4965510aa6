"""Popularity: global counts and the time-decayed variant, checked by hand."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.data.user_groups import estimate_shrinkage
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
    gets item 0 first, user 5 (no metadata row) global popularity: each item's share of the 4
    users with a history."""
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
    share = np.array([0.5, 0.5, 0.5, 0.25])
    m = UserGroupPopularity(columns=["gender"], shrinkage=0).fit(x, side=side)
    scores = m.score(np.arange(6))
    # the group alone: the share of the group's 2 users with a history (user 4 has none)
    np.testing.assert_allclose(scores[4], [1, 0, 0, 0] + 1e-6 * share, rtol=1e-5)
    np.testing.assert_allclose(scores[2], [0, 1, 1, 0.5] + 1e-6 * share, rtol=1e-5)
    np.testing.assert_allclose(scores[5], share, rtol=1e-5)
    # 2 pseudo-users of global popularity: (counts + 2 share) / (2 + 2)
    shrunk = UserGroupPopularity(columns=["gender"], shrinkage=2).fit(x, side=side)
    np.testing.assert_allclose(
        shrunk.score(np.array([4]))[0], [0.75, 0.25, 0.25, 0.125] + 1e-6 * share, rtol=1e-5
    )
    # the zip code named: each group is one user, the cold one has no signal of its own
    alone = UserGroupPopularity(columns=["gender", "zip"], shrinkage=0).fit(x, side=side)
    assert alone.score(np.array([4]))[0].max() < 1e-5
    # ... and with any shrinkage it is ranked by global popularity
    alone = UserGroupPopularity(columns=["gender", "zip"], shrinkage=5).fit(x, side=side)
    np.testing.assert_allclose(alone.score(np.array([4]))[0], share * (1 + 1e-6), rtol=1e-5)
    # by default a column with a value per user is left out
    by_default = UserGroupPopularity(shrinkage=0).fit(x, side=side)
    np.testing.assert_array_equal(by_default.score(np.arange(6)), scores)
    loaded = Recommender.load(m.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.score(np.arange(6)), scores)


def test_shrinkage_estimate_recovers_the_prior_the_groups_were_drawn_with() -> None:
    """Each group's share of item i drawn from Beta(s p_i, s (1 - p_i)) around the population's
    share p_i, each of its users having the item with that share: the estimate finds s; groups
    drawn with one share imply global popularity."""
    rng = np.random.default_rng(0)
    n_groups, size, n_items = 60, 300, 400
    p = rng.uniform(0.01, 0.5, n_items)

    def draw(strength: float | None) -> tuple[sp.csr_matrix, np.ndarray]:
        shape = (n_groups, n_items)
        theta = (
            np.broadcast_to(p, shape)
            if strength is None
            else rng.beta(strength * p, strength * (1 - p), size=shape)
        )
        return sp.csr_matrix(rng.binomial(size, theta)), np.full(n_groups, size, np.float32)

    for strength in (3.0, 30.0, 100.0):
        assert estimate_shrinkage(*draw(strength)) == pytest.approx(strength, rel=0.25)
    assert estimate_shrinkage(*draw(None)) > 1000
    # too few groups to compare: the groups are the population
    assert estimate_shrinkage(sp.csr_matrix(np.ones((1, 3))), np.array([5.0])) == 0.0
