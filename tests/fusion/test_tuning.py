"""Tuning: the weight search on lists whose best weights are known, the method choice, the
untuned fallback."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.fusion.features import side_features
from gemrec.fusion.lists import fuse_lists
from gemrec.fusion.tuning import combine, search_weights, tune
from gemrec.models.popularity import Popularity
from tests.fusion.channels import ItemCosine
from tests.fusion.data import clusters

N_USERS, N_ITEMS = 4, 30
# every user's held-out items are 0 and 1: channel "a" proposes item 0 first, "b" item 1 first,
# "c" only items nobody holds out
LISTS = [
    (np.tile([0, 10, 11], (N_USERS, 1)), np.tile([3.0, 2.0, 1.0], (N_USERS, 1))),
    (np.tile([1, 12, 13], (N_USERS, 1)), np.tile([3.0, 2.0, 1.0], (N_USERS, 1))),
    (np.tile([20, 21, 22], (N_USERS, 1)), np.tile([3.0, 2.0, 1.0], (N_USERS, 1))),
]
TRUTH = sp.csr_matrix(
    (np.ones(2 * N_USERS), (np.repeat(np.arange(N_USERS), 2), np.tile([0, 1], N_USERS))),
    shape=(N_USERS, N_ITEMS),
)


def test_weight_search_joins_the_channels_that_add_hits() -> None:
    w, trace = search_weights(LISTS, TRUTH, "rrf", normalization="minmax", rrf_k=60.0, min_gain=0)
    # a and b alone find one of the two items each; together, with b at weight 1, items 0 and 1
    # lead every list (a tie goes to the lower id): Recall@20 = NDCG@20 = 1. Lower weights of b
    # rank item 1 after item 10; c never helps.
    assert w.tolist() == [1.0, 1.0, 0.0]
    assert trace[0]["weights"] == [1.0, 0.0, 0.0]
    assert trace[-1] == {"weights": [1.0, 1.0, 0.0], "objective": pytest.approx(2.0)}
    objectives = [t["objective"] for t in trace]
    assert objectives == sorted(objectives) and len(set(objectives)) == len(objectives)


def test_weight_search_min_gain_keeps_out_a_channel_that_gains_too_little() -> None:
    w, trace = search_weights(
        LISTS, TRUTH, "weighted", normalization="minmax", rrf_k=60.0, min_gain=10.0
    )
    assert w.tolist() == [1.0, 0.0, 0.0] and len(trace) == 1


def test_combine_is_fuse_lists_for_the_list_methods() -> None:
    users = np.arange(N_USERS)
    side = side_features(
        Interactions.from_arrays(users, users, n_items=N_ITEMS), np.full(N_ITEMS, -1, np.int64)
    )
    w = np.array([1.0, 0.5, 2.0])
    for method in ("rrf", "weighted"):
        got = combine(
            users, LISTS, 5, method=method, weights=w, normalization="zscore", rrf_k=3.0, side=side
        )
        want = fuse_lists(LISTS, w, 5, method=method, normalization="zscore", rrf_k=3.0)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def _settings(**overrides: Any) -> dict[str, Any]:
    return {
        "method": "auto",
        "weights": None,
        "normalization": "minmax",
        "rrf_k": 60.0,
        "n_candidates": 30,
        "min_gain": 0.0,
        "tune_users": 20000,
        "ltr_params": None,
        "seed": 0,
        **overrides,
    }


def _fitted() -> tuple[list[Any], Interactions, Interactions]:
    train, valid, _ = clusters()
    return [Popularity().fit(train), ItemCosine().fit(train)], train, valid


def test_tune_auto_compares_the_three_blends_and_keeps_a_ranker_only_for_ltr() -> None:
    channels, train, valid = _fitted()
    side = side_features(train, np.full(train.n_items, -1, np.int64))
    # a ranker that may not split ranks candidates by item id and loses
    weak = {"min_data_in_leaf": 10**6, "num_boost_round": 2}
    tuned = tune(channels, ["pop", "cos"], train, valid, side, **_settings(ltr_params=weak))
    report = tuned.report
    assert set(report["methods"]) == {"weighted", "rrf", "ltr"}
    assert report["selection"] == "2-fold cross-fit" and report["n_users_tune"] == train.n_users
    assert set(report["single_channels"]) == {"pop", "cos"}
    objective = {m: v["recall@20"] + v["ndcg@20"] for m, v in report["methods"].items()}
    assert tuned.method == report["chosen"] == max(objective, key=objective.__getitem__) != "ltr"
    assert tuned.ranker is None
    assert report["methods"][tuned.method]["weights"] == tuned.weights.tolist()
    assert report["methods"][tuned.method]["search"][-1]["weights"] == tuned.weights.tolist()
    tuned = tune(channels, ["pop", "cos"], train, valid, side, **_settings(method="ltr"))
    assert tuned.method == "ltr" and tuned.ranker is not None
    assert tuned.weights.tolist() == [1.0, 1.0]


def test_tune_with_given_weights_keeps_them() -> None:
    channels, train, valid = _fitted()
    side = side_features(train, np.full(train.n_items, -1, np.int64))
    given = np.array([0.5, 2.0])
    tuned = tune(
        channels, ["pop", "cos"], train, valid, side, **_settings(method="rrf", weights=given)
    )
    assert tuned.method == "rrf" and tuned.weights.tolist() == [0.5, 2.0]
    assert "search" not in tuned.report["methods"]["rrf"]


@pytest.mark.parametrize(
    ("method", "weights", "expected"),
    [
        ("auto", None, [0.0, 1.0]),  # popularity only serves users without history
        ("ltr", None, [0.0, 1.0]),
        ("weighted", np.array([2.0, 1.0]), [2.0, 1.0]),
    ],
)
def test_with_fewer_than_two_tuning_users_nothing_is_tuned(
    method: str, weights: np.ndarray | None, expected: list[float]
) -> None:
    channels, train, _ = _fitted()
    one_user = Interactions.from_arrays([3], [5], n_users=train.n_users, n_items=train.n_items)
    side = side_features(train, np.full(train.n_items, -1, np.int64))
    tuned = tune(
        channels,
        ["pop", "cos"],
        train,
        one_user,
        side,
        **_settings(method=method, weights=weights),
    )
    assert tuned.weights.tolist() == expected and tuned.ranker is None
    assert tuned.method == ("weighted" if method == "weighted" else "rrf")
    assert tuned.report["n_users_tune"] == 1 and tuned.report["chosen"] == tuned.method
    note = tuned.report["untuned"]
    assert note.startswith("only 1 validation user(s) with training history")
    assert ("equal-weight" in note) == (weights is None)
    assert note.endswith(" instead of 'ltr'") == (method == "ltr")
