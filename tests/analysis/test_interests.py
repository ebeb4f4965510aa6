"""Interest vectors: incremental updates agree with the batch forms and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.analysis.interests import (
    InterestModel,
    InterestState,
    blend_interest,
    category_affinities,
    interest_vectors,
)
from gemrec.data.event_types import EVENT_WEIGHTS
from gemrec.errors import ParameterError

TYPES = ["view", "fav", "cart", "purchase", "other"]


def test_hand_computed_decay_and_weights() -> None:
    emb = np.eye(3, dtype=np.float32)
    im = InterestModel(emb, half_life_hours=1.0, event_weights={"view": 1.0, "purchase": 4.0})
    s = im.update(im.empty(), 0, "view", t=0.0)
    s = im.update(s, 1, "purchase", t=3600.0)
    assert s.mass == pytest.approx(4.5)
    np.testing.assert_allclose(im.vector(s), [0.5 / 4.5, 4 / 4.5, 0.0], rtol=1e-6)
    # two more half-lives: no new events, the mean is unchanged, the fused shrinkage weakens
    u = np.array([0.0, 0.0, 2.0], np.float32)
    v_now = im.vector(s, u)
    v_later = im.vector(s, u, t=3 * 3600.0)
    beta_now = 0.5 * 4.5 / 5.5
    r = np.array([0.5, 4.0, 0.0]) / 4.5
    expected = (1 - beta_now) * u + beta_now * 2.0 / np.linalg.norm(r) * r
    np.testing.assert_allclose(v_now, expected, rtol=1e-5)
    assert v_later[2] > v_now[2]  # stale activity moves the vector less


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(TYPES), st.floats(0, 5e5)),
        min_size=1,
        max_size=25,
    )
)
def test_incremental_equals_history_equals_batch(events: list[tuple[int, str, float]]) -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 4)).astype(np.float32)
    cats = np.array([0, 0, 1, 2, -1, 1])
    im = InterestModel(emb, item_categories=cats, half_life_hours=12.0)
    s = im.empty()
    for item, et, t in events:  # arbitrary order, late events included
        s = im.update(s, item, et, t)
    items = np.array([e[0] for e in events])
    types = np.array([e[1] for e in events])
    ts = np.array([e[2] for e in events])
    h = im.from_history(items, types, ts)
    assert s.t == h.t
    assert s.mass == pytest.approx(h.mass, rel=1e-6)
    np.testing.assert_allclose(s.recent, h.recent, rtol=1e-4, atol=1e-4)
    assert im.category_affinities(s) == pytest.approx(im.category_affinities(h))
    w = np.array([im.weight(t) for t in types])
    u = rng.normal(size=(1, 4)).astype(np.float32)
    batch = interest_vectors(
        emb,
        np.zeros(len(items), int),
        items,
        w,
        ts,
        n_users=1,
        user_embeddings=u,
        half_life_hours=12.0,
    )
    np.testing.assert_allclose(batch[0], im.vector(h, u[0]), rtol=1e-4, atol=1e-4)
    aff = category_affinities(
        np.zeros(len(items), int), items, w, cats, ts, n_users=1, half_life_hours=12.0
    )
    ref = im.category_affinities(h)
    for c, v in ref.items():
        assert aff[0, c] == pytest.approx(v, rel=1e-5)


def test_new_user_and_empty_state() -> None:
    emb = np.arange(12, dtype=np.float32).reshape(4, 3)
    im = InterestModel(emb, half_life_hours=None)
    np.testing.assert_array_equal(im.vector(im.empty()), np.zeros(3))
    u = np.ones(3, np.float32)
    np.testing.assert_array_equal(im.vector(im.empty(), u), u)
    s = im.update(im.update(im.empty(), 1, "view", 0.0), 3, "view", 1e9)  # no decay: plain mean
    np.testing.assert_allclose(im.vector(s), (emb[1] + emb[3]) / 2)
    assert np.argmax(im.scores(s)) == 3
    back = InterestState.from_dict(s.to_dict())
    np.testing.assert_array_equal(back.recent, s.recent)
    assert back.mass == s.mass and back.t == s.t


def test_interest_vectors_users_without_events_keep_embedding() -> None:
    emb = np.eye(2, dtype=np.float32)
    u = np.array([[3.0, 0.0], [0.0, 1.0]], np.float32)
    out = interest_vectors(
        emb,
        np.array([0]),
        np.array([1]),
        np.array([1.0]),
        n_users=2,
        user_embeddings=u,
        recent_weight=1.0,
        prior_mass=1.0,
    )
    np.testing.assert_allclose(out[1], u[1])
    np.testing.assert_allclose(out[0], [1.5, 1.5])  # beta = 1/2, r rescaled to |u| = 3


def test_bad_parameters_name_the_parameter() -> None:
    emb = np.eye(2, dtype=np.float32)
    with pytest.raises(ParameterError, match="half_life_hours"):
        InterestModel(emb, half_life_hours=0)
    with pytest.raises(ParameterError, match="recent_weight"):
        InterestModel(emb, recent_weight=2)
    with pytest.raises(ParameterError, match="item_embeddings"):
        InterestModel(np.ones(3))
    with pytest.raises(ParameterError, match="'item'"):
        InterestModel(emb).update(InterestModel(emb).empty(), 5, "view", 0.0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(TYPES), st.floats(0, 5e5)),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from([None, 12.0]),
)
def test_recency_decay_incremental_equals_history(
    events: list[tuple[int, str, float]], half_life_hours: float | None
) -> None:
    emb = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    im = InterestModel(emb, half_life_hours=half_life_hours, half_life_events=3.0)
    s = im.empty()
    for item, et, t in events:
        s = im.update(s, item, et, t)
    items, types, ts = (np.array([e[i] for e in events]) for i in range(3))
    h = im.from_history(items, types, ts)
    assert s.mass == pytest.approx(h.mass, rel=1e-6)
    np.testing.assert_allclose(s.recent, h.recent, rtol=1e-4, atol=1e-5)


def test_weights_by_type_time_and_position() -> None:
    im = InterestModel(None, half_life_hours=1.0, half_life_events=2.0)
    w = im.weights(["view", "pv", "purchase"], np.array([0.0, 3600.0, 7200.0]))
    # type (pv is a view), time (2 h, 1 h, 0 h old), position (2, 1, 0 events after it)
    np.testing.assert_allclose(w, [1.0 * 0.25 * 0.5, 1.0 * 0.5 * 2**-0.5, 5.0], rtol=1e-12)
    assert im.weight("purchase") == EVENT_WEIGHTS["purchase"] and im.weight("checkin") == 1.0
    # a dataset's own weights win, and its aliases follow them
    shop = InterestModel(None, event_weights={"view": 2.0, "rating": 3.0})
    assert (shop.weight("view"), shop.weight("PV"), shop.weight("rating")) == (2.0, 2.0, 3.0)
    with pytest.raises(ParameterError, match="item_embeddings"):
        im.empty()


def test_blend_by_hand_and_batch_equals_single() -> None:
    u = np.array([[3.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    r = np.array([[0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    mass = np.array([1.0, 5.0, 2.0])
    v = blend_interest(r, mass, u, recent_weight=1.0, prior_mass=1.0)
    # user 0: beta = 1/2, |u| = 3, r/|r| = (0, 1) -> (1.5, 1.5); no u -> r; no r -> u
    np.testing.assert_allclose(v, [[1.5, 1.5], [1.0, 1.0], [1.0, 1.0]], rtol=1e-6)
    for i in range(3):
        single = blend_interest(r[i], mass[i], u[i], recent_weight=1.0, prior_mass=1.0)
        np.testing.assert_allclose(single, v[i], rtol=1e-6)
    np.testing.assert_allclose(blend_interest(r, mass), r.astype(np.float32))
