"""Side features of a fusion against a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest

from gemrec.data.interactions import Interactions
from gemrec.fusion.features import SideFeatures, side_features

DAY = 86400.0
T0 = 1_000_000.0


def _shop(timestamps: bool = True) -> Interactions:
    # user 0: item 0 on day 0, item 1 on day 2; user 1: item 1 on day 4, item 2 on day 10;
    # user 2: nothing; item 3: nobody
    return Interactions.from_arrays(
        np.array([0, 0, 1, 1]),
        np.array([0, 1, 1, 2]),
        n_users=3,
        n_items=4,
        timestamps=T0 + DAY * np.array([0.0, 2.0, 4.0, 10.0]) if timestamps else None,
    )


CATEGORIES = np.array([0, 0, 1, -1], np.int64)


def test_side_features_hand_example() -> None:
    f = side_features(_shop(), CATEGORIES)
    np.testing.assert_array_equal(f.item_pop, [1, 2, 1, 0])
    np.testing.assert_array_equal(f.user_activity, [2, 2, 0])
    # days from each item's last interaction to the latest one (day 10); item 3 has none
    np.testing.assert_array_equal(f.item_age_days, [10, 6, 0, np.nan])
    assert f.item_pop.dtype == f.user_activity.dtype == f.item_age_days.dtype == np.float32
    assert f.n_items == 4
    # user 1: category 0 on day 4 decays by 2^(-6 / 30) against category 1 on day 10
    d = 2.0 ** (-6.0 / 30.0)
    assert f.cat_affinity is not None
    np.testing.assert_allclose(
        f.cat_affinity.toarray(), [[1, 0], [d / (1 + d), 1 / (1 + d)], [0, 0]], rtol=1e-6
    )
    assert f.cat_last is not None and f.user_last is not None
    np.testing.assert_array_equal(
        f.cat_last.toarray(), [[T0 + 2 * DAY, 0], [T0 + 4 * DAY, T0 + 10 * DAY], [0, 0]]
    )
    np.testing.assert_array_equal(f.user_last, [T0 + 2 * DAY, T0 + 10 * DAY, 0])


def test_without_timestamps_or_categories_those_features_are_missing() -> None:
    f = side_features(_shop(timestamps=False), CATEGORIES)
    assert np.isnan(f.item_age_days).all()
    assert f.cat_last is None and f.user_last is None
    assert f.cat_affinity is not None  # undecayed shares
    np.testing.assert_allclose(f.cat_affinity.toarray(), [[1, 0], [0.5, 0.5], [0, 0]])
    f = side_features(_shop(), np.full(4, -1, np.int64))
    assert f.cat_affinity is None and f.cat_last is None and f.user_last is None
    np.testing.assert_array_equal(f.item_pop, [1, 2, 1, 0])


@pytest.mark.parametrize("timestamps", [True, False])
def test_state_round_trip_under_the_saved_names(timestamps: bool) -> None:
    f = side_features(_shop(timestamps), CATEGORIES)
    state = f.state()
    expected = {"item_pop_", "user_activity_", "item_age_days_", "item_categories_"}
    expected |= {"cat_affinity_"} | ({"cat_last_", "user_last_"} if timestamps else set())
    assert set(state) == expected
    back = SideFeatures.from_state(state)
    for name in ("item_pop", "user_activity", "item_age_days", "item_categories", "user_last"):
        np.testing.assert_array_equal(getattr(back, name), getattr(f, name))
    for name in ("cat_affinity", "cat_last"):
        a, b = getattr(back, name), getattr(f, name)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a.toarray(), b.toarray())
