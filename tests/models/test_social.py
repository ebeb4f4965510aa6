"""``SocialRecommender``: friends' items, trust propagated, against a dense reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.errors import ParameterError
from gemrec.models.base import Recommender
from gemrec.models.social import SocialRecommender, trust_propagation


def _reference(ties: np.ndarray, hops: int, decay: float) -> np.ndarray:
    t = (ties > 0).astype(np.float64)
    np.fill_diagonal(t, 0.0)
    t /= np.maximum(t.sum(axis=1, keepdims=True), 1.0)
    out, step = np.zeros_like(t), np.eye(len(t))
    for h in range(hops):
        step = step @ t
        out += decay**h * step
    return out


@pytest.mark.parametrize(("hops", "decay"), [(1, 1.0), (2, 0.5), (3, 0.3)])
def test_trust_propagation_matches_the_dense_reference(hops: int, decay: float) -> None:
    rng = np.random.default_rng(0)
    ties = (rng.random((30, 30)) < 0.1).astype(np.float32)
    got = trust_propagation(sp.csr_matrix(ties), 30, hops, decay).toarray()
    np.testing.assert_allclose(got, _reference(ties, hops, decay), rtol=1e-5, atol=1e-7)


def _data() -> tuple[Interactions, sp.csr_matrix]:
    """Users 0-2 like items 0-2, users 3-5 items 3-5; user 6 has no items and follows 3 and 4,
    user 7 follows user 0, who follows user 1 (two hops: 1's items reach 7 too)."""
    users = [0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 7]
    items = [0, 1, 1, 2, 0, 3, 4, 4, 5, 3, 5]
    x = Interactions.from_arrays(users, items, n_users=8, n_items=6)
    ties = sp.csr_matrix(
        (np.ones(4, np.float32), ([6, 6, 7, 0], [3, 4, 0, 1])), shape=(8, 8), dtype=np.float32
    )
    return x, ties


def test_cold_user_gets_friends_items_and_hops_reach_further(tmp_path: Path) -> None:
    x, ties = _data()
    one = SocialRecommender(hops=1).fit(x, side=SideInformation(social=ties))
    ids, _ = one.recommend(np.array([6]), k=3)
    assert set(ids[0].tolist()) == {3, 4, 5}
    assert ids[0][0] == 4  # both friends have item 4
    # user 7 (item 5 seen) follows 0 (items 0, 1); 0 follows 1 (items 1, 2)
    two = SocialRecommender(hops=2, decay=0.5).fit(x, side=SideInformation(social=ties))
    s = two.score(np.array([7]))[0]
    assert s[0] == pytest.approx(1.0, abs=1e-4) and s[1] == pytest.approx(1.5, abs=1e-4)
    assert s[2] == pytest.approx(0.5, abs=1e-4) and s[3] < 1e-4
    assert one.score(np.array([7]))[0][2] < 1e-4  # one hop does not reach item 2
    loaded = Recommender.load(two.save(tmp_path / "social"))
    np.testing.assert_array_equal(loaded.score(np.arange(8)), two.score(np.arange(8)))


def test_without_ties_it_is_popularity_and_graphs_of_fewer_users_are_padded() -> None:
    x, ties = _data()
    plain = SocialRecommender().fit(x)
    pop = np.asarray(x.binary().sum(axis=0)).ravel()
    s = plain.score(np.array([6]))[0]
    assert (
        np.argsort(-s, kind="stable")[:2].tolist() == np.argsort(-pop, kind="stable")[:2].tolist()
    )
    # a graph over the first 7 users only (a retrained model has more users than its dataset)
    small = sp.csr_matrix(ties.toarray()[:7, :7])
    m = SocialRecommender(hops=1).fit(x, side=SideInformation(social=small))
    assert m.trust_.shape == (8, 8) and m.score(np.array([6]))[0][4] > 0.9
    np.testing.assert_array_equal(m.score_new(x.matrix[:2])[0], m.item_scores_)


def test_bad_parameters_and_graphs_are_named() -> None:
    x, _ = _data()
    with pytest.raises(ParameterError, match="'hops'"):
        SocialRecommender(hops=0).fit(x)
    with pytest.raises(ParameterError, match="'decay'"):
        SocialRecommender(decay=0.0).fit(x)
    with pytest.raises(ParameterError, match="'social'"):
        SocialRecommender().fit(x, side=SideInformation(social=sp.csr_matrix((3, 4))))
