"""The learned blend: candidate features against a hand-computed example, ranker training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.errors import GemrecError
from gemrec.fusion.features import SideFeatures, side_features
from gemrec.fusion.learned import candidate_features, rank, ranker_params, train_ranker
from gemrec.models.popularity import Popularity
from tests.fusion.channels import ItemCosine
from tests.fusion.data import clusters

DAY = 86400.0
T0 = 1_000_000.0
NAN = np.nan


def _side() -> SideFeatures:
    return SideFeatures(
        item_pop=np.array([4, 2, 2, 0, 0], np.float32),  # mean 1.6
        user_activity=np.array([2, 6, 0], np.float32),  # mean over active users 4
        item_age_days=np.array([1, 2, 3, 4, 5], np.float32),
        item_categories=np.array([0, 0, 1, -1, 1], np.int64),
        cat_affinity=sp.csr_matrix(np.array([[0.75, 0.25], [0.0, 1.0], [0.0, 0.0]])),
        cat_last=sp.csr_matrix(np.array([[T0 + DAY, 0.0], [0.0, T0 + 3 * DAY], [0.0, 0.0]])),
        user_last=np.array([T0 + 2 * DAY, T0 + 3 * DAY, 0.0]),
    )


# channel A proposes items 2, 0, 1 to user 0 and item 4 to user 1; channel B 0, 3 and 4, 1
LISTS = [
    (np.array([[2, 0, 1], [4, -1, -1]]), np.array([[3.0, 2.0, 1.0], [1.0, -np.inf, -np.inf]])),
    (np.array([[0, 3, -1], [4, 1, -1]]), np.array([[5.0, 1.0, -np.inf], [2.0, 2.0, -np.inf]])),
]


def test_candidate_features_hand_example() -> None:
    rows, items, x = candidate_features(np.array([0, 1]), LISTS, _side())
    assert rows.tolist() == [0, 0, 0, 0, 1, 1]
    assert items.tolist() == [0, 1, 2, 3, 1, 4]
    pop = np.log1p(np.array([4, 2, 2, 0, 2, 0]) / 1.6)
    act = np.log1p(np.array([2, 2, 2, 2, 6, 6]) / 4.0)
    # columns: rank A, min-max score A, rank B, score B, channels proposing, popularity, age,
    # activity, category affinity, days since the user's last activity in the category
    expected = np.array(
        [
            [2, 0.5, 1, 1.0, 2, pop[0], 1, act[0], 0.75, 1.0],
            [3, 0.0, NAN, NAN, 1, pop[1], 2, act[1], 0.75, 1.0],
            [1, 1.0, NAN, NAN, 1, pop[2], 3, act[2], 0.25, NAN],  # no category-1 time for user 0
            [NAN, NAN, 2, 0.0, 1, pop[3], 4, act[3], NAN, NAN],  # item 3 has no category
            [NAN, NAN, 2, 1.0, 1, pop[4], 2, act[4], 0.0, NAN],  # equal scores: min-max 1
            [1, 1.0, 1, 1.0, 2, pop[5], 5, act[5], 1.0, 0.0],
        ]
    )
    assert x.dtype == np.float32 and x.shape == (6, 2 * 2 + 6)
    np.testing.assert_allclose(x, expected, rtol=1e-6)


def test_candidate_features_of_folded_in_users_come_from_their_items() -> None:
    # the same two rows given by their interactions: user 0 has items 0 and 2, user 1 item 4
    user_items = sp.csr_matrix(np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1]], np.float32))
    by_id = candidate_features(np.array([0, 1]), LISTS, _side())
    rows, items, x = candidate_features(np.array([0, 1]), LISTS, _side(), user_items)
    np.testing.assert_array_equal(rows, by_id[0])
    np.testing.assert_array_equal(items, by_id[1])
    np.testing.assert_array_equal(x[:, :7], by_id[2][:, :7])  # list and item features
    np.testing.assert_allclose(x[:, 7], np.log1p(np.array([2, 2, 2, 2, 1, 1]) / 4.0), rtol=1e-6)
    np.testing.assert_allclose(x[:, 8], [0.5, 0.5, 0.5, NAN, 0.0, 1.0])  # undecayed shares
    assert np.isnan(x[:, 9]).all()  # no timestamps for folded-in users


def test_popularity_and_activity_features_do_not_shift_when_data_grow() -> None:
    """The refit channels see more data than the tuned blend did: scaling every count leaves the
    popularity and activity features unchanged."""
    train, _, _ = clusters()
    side = side_features(train, np.full(train.n_items, -1, np.int64))
    users = np.arange(0, train.n_users, 4)
    lists = [ch.fit(train).recommend(users, 30) for ch in (Popularity(), ItemCosine())]
    _rows, items, x = candidate_features(users, lists, side)
    n_ch = len(lists)
    pop_col, act_col = 2 * n_ch + 1, 2 * n_ch + 3
    expected_pop = np.log1p(side.item_pop[items] / side.item_pop.mean())
    np.testing.assert_allclose(x[:, pop_col], expected_pop, rtol=1e-5)
    grown = dataclasses.replace(
        side, item_pop=side.item_pop * 3.0, user_activity=side.user_activity * 3.0
    )
    _, _, x3 = candidate_features(users, lists, grown)
    np.testing.assert_allclose(x3[:, [pop_col, act_col]], x[:, [pop_col, act_col]], rtol=1e-5)


def test_ranker_params_defaults_and_overrides() -> None:
    params = ranker_params(seed=3, eval_at=20, overrides={"num_leaves": 7, "seed": 9})
    assert params["objective"] == "rank_xendcg" and params["eval_at"] == [20]
    assert params["num_leaves"] == 7 and params["seed"] == 9
    assert params["num_boost_round"] == 600 and params["early_stopping_rounds"] == 100
    assert ranker_params(seed=3, eval_at=10, overrides=None)["seed"] == 3


def test_a_ranker_learns_which_channel_holds_the_held_out_items() -> None:
    # every user's held-out item is channel A's third candidate; channel B proposes noise
    rng = np.random.default_rng(0)
    n_users, n_items = 200, 50
    a_ids = np.array([rng.choice(25, 5, replace=False) for _ in range(n_users)])
    b_ids = np.array([25 + rng.choice(25, 5, replace=False) for _ in range(n_users)])
    scores = np.tile(np.arange(5, 0, -1, dtype=np.float64), (n_users, 1))
    lists = [(a_ids, scores), (b_ids, scores)]
    truth = sp.csr_matrix(
        (np.ones(n_users), (np.arange(n_users), a_ids[:, 2])), shape=(n_users, n_items)
    )
    ones = np.ones(n_items, np.float32)
    side = SideFeatures(ones, np.ones(n_users, np.float32), ones, np.full(n_items, -1, np.int64))
    params = ranker_params(seed=0, eval_at=5, overrides={"min_data_in_leaf": 5})
    users = np.arange(n_users)
    ranker = train_ranker(users, lists, truth, side, params=params, seed=0)
    ids, _ = rank(ranker, users, lists, 1, side)
    np.testing.assert_array_equal(ids[:, 0], a_ids[:, 2])


def test_train_ranker_needs_two_users_with_a_hit() -> None:
    side = SideFeatures(
        np.ones(5, np.float32), np.ones(2, np.float32), np.ones(5, np.float32), np.full(5, -1)
    )
    truth = sp.csr_matrix(np.array([[0, 0, 0, 0, 1], [0, 0, 0, 0, 0]], np.float32))
    lists = [(np.array([[0, 1], [0, 1]]), np.array([[2.0, 1.0], [2.0, 1.0]]))]
    params = ranker_params(seed=0, eval_at=20, overrides=None)
    with pytest.raises(GemrecError, match="too few validation users"):
        train_ranker(np.arange(2), lists, truth, side, params=params, seed=0)


@pytest.mark.filterwarnings("ignore:All-NaN slice")
def test_no_candidates_give_no_feature_rows_and_a_padded_ranking() -> None:
    lists = [(np.full((2, 3), -1), np.full((2, 3), -np.inf))]
    rows, items, x = candidate_features(np.array([0, 1]), lists, _side())
    assert len(rows) == len(items) == 0 and x.shape == (0, 2 + 6)
    ids, scores = rank(None, np.array([0, 1]), lists, 4, _side())
    assert ids.tolist() == [[-1] * 4] * 2 and np.isneginf(scores).all()
