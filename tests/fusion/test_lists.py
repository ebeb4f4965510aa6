"""List kernels: normalisation, pair keys and fuse_lists against hand-computed examples and a
slow dense reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.fusion.lists import fuse_lists, normalise_scores, pair_keys, support_gate


def test_normalise_scores_hand_example() -> None:
    scores = np.array([[4.0, 2.0, 0.0, -np.inf], [3.0, 3.0, 1.0, 7.0]])
    valid = np.array([[True, True, True, False], [True, True, False, False]])
    minmax = normalise_scores(scores, valid, "minmax")
    # row 0 over (4, 2, 0); row 1 over (3, 3): no spread, every valid entry 1
    np.testing.assert_allclose(minmax, [[1.0, 0.5, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    z = normalise_scores(scores, valid, "zscore")
    # row 0: mean 2, std sqrt(8 / 3); row 1: no spread, every entry 0
    s = np.sqrt(8.0 / 3.0)
    np.testing.assert_allclose(z, [[2.0 / s, 0.0, -2.0 / s, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert minmax.dtype == z.dtype == np.float64


def test_pair_keys_skip_padding_and_decode_to_row_and_id() -> None:
    ids = np.array([[4, 0, -1], [-1, -1, -1], [2, 3, 1]])
    keys = pair_keys(ids, 5)
    assert keys.dtype == np.int64
    assert keys.tolist() == [4, 0, 12, 13, 11]
    assert (keys // 5).tolist() == [0, 0, 2, 2, 2]
    assert (keys % 5).tolist() == [4, 0, 2, 3, 1]


def test_rrf_and_weighted_hand_example() -> None:
    a = (np.array([[3, 1, 2]]), np.array([[9.0, 5.0, 1.0]]))
    b = (np.array([[1, 4, -1]]), np.array([[0.7, 0.1, -np.inf]]))
    ids, sc = fuse_lists([a, b], [1.0, 1.0], 3, method="rrf", rrf_k=1.0)
    # item 1: 1/(1+2) + 1/(1+1) = .8333; item 3: 1/2; item 4: 1/3; item 2: 1/4
    assert ids.tolist() == [[1, 3, 4]]
    np.testing.assert_allclose(sc[0], [1 / 3 + 1 / 2, 1 / 2, 1 / 3], rtol=1e-6)
    ids, sc = fuse_lists([a, b], [1.0, 2.0], 4, method="weighted")
    # min-max: a -> 3:1, 1:.5, 2:0 ; b -> 1:1, 4:0 ; weighted: 1: .5+2, 3: 1, 2: 0, 4: 0 (tie -> id)
    assert ids.tolist() == [[1, 3, 2, 4]]
    np.testing.assert_allclose(sc[0], [2.5, 1.0, 0.0, 0.0])
    ids, sc = fuse_lists([a, b], [1.0, 1.0], 4, method="weighted", normalization="zscore")
    # z-scores: a (mean 5, std sqrt(32/3)) -> 3: 1.2247, 1: 0, 2: -1.2247; b (mean .4, std .3)
    # -> 1: 1, 4: -1; summed: 3: 1.2247, 1: 1, 4: -1, 2: -1.2247
    z = 4.0 / np.sqrt(32.0 / 3.0)
    assert ids.tolist() == [[3, 1, 4, 2]]
    np.testing.assert_allclose(sc[0], [z, 1.0, -1.0, -z], rtol=1e-6)


def test_zero_weight_channels_are_left_out_and_short_rows_padded() -> None:
    a = (np.array([[0, 1], [2, -1]]), np.array([[2.0, 1.0], [5.0, -np.inf]]))
    b = (np.array([[5, 6], [6, 5]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    ids, sc = fuse_lists([a, b], [1.0, 0.0], 3, method="rrf", rrf_k=0.0)
    # b has weight 0: none of its items appear; row 1 has one candidate, then padding
    assert ids.tolist() == [[0, 1, -1], [2, -1, -1]]
    np.testing.assert_allclose(sc, [[1.0, 0.5, -np.inf], [1.0, -np.inf, -np.inf]])
    ids, sc = fuse_lists([a, b], [0.0, 0.0], 2)
    assert ids.tolist() == [[-1, -1], [-1, -1]]
    assert ids.dtype == np.int32 and sc.dtype == np.float32 and np.isneginf(sc).all()


def _dense_reference(lists, weights, method, rrf_k, n_items):
    n = lists[0][0].shape[0]
    fused = np.zeros((n, n_items))
    present = np.zeros((n, n_items), bool)
    for (ids, sc), w in zip(lists, weights, strict=True):
        for r in range(n):
            valid = [j for j in range(ids.shape[1]) if ids[r, j] >= 0]
            vals = [sc[r, j] for j in valid]
            lo, hi = (min(vals), max(vals)) if vals else (0, 0)
            for j in valid:
                if method == "rrf":
                    c = w / (rrf_k + j + 1)
                else:
                    c = w * ((sc[r, j] - lo) / (hi - lo) if hi > lo else 1.0)
                if w:
                    fused[r, ids[r, j]] += c
                    present[r, ids[r, j]] = True
    return np.where(present, fused, -np.inf)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.sampled_from(["rrf", "weighted"]),
    st.integers(0, 10_000),
)
def test_fuse_lists_matches_dense_reference(
    n_channels: int, n_rows: int, method: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n_items, width, k = 9, 4, 5
    lists = []
    for _ in range(n_channels):
        ids = np.array([rng.choice(n_items, width, replace=False) for _ in range(n_rows)])
        ids[rng.random(ids.shape) < 0.2] = -1
        sc = np.sort(rng.normal(size=(n_rows, width)), axis=1)[:, ::-1].copy()
        lists.append((ids, sc))
    weights = rng.choice([0.0, 0.5, 1.0, 2.0], n_channels)
    if not weights.any():
        weights[0] = 1.0
    ids, sc = fuse_lists(lists, weights, k, method=method, rrf_k=2.0)
    ref = _dense_reference(lists, weights, method, 2.0, n_items)
    for r in range(n_rows):
        expected = np.sort(ref[r][np.isfinite(ref[r])])[::-1][:k]
        got = sc[r][ids[r] >= 0]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
        for j in np.flatnonzero(ids[r] >= 0):
            assert ref[r, ids[r, j]] == pytest.approx(sc[r, j])


def test_support_gate_weighs_a_channel_by_item_support() -> None:
    gate = support_gate(np.array([0.0, 2.0, 6.0, 18.0]), 2.0)
    np.testing.assert_allclose(gate, [1.0, 0.5, 0.25, 0.1])
    # two channels over items 0..3; the second is gated: its weight on item i is w * gate[i]
    a = (np.array([[3, 1, 0]]), np.array([[3.0, 2.0, 1.0]]))  # min-max: 1, .5, 0
    b = (np.array([[0, 2, 3]]), np.array([[5.0, 3.0, 1.0]]))  # min-max: 1, .5, 0
    ids, scores = fuse_lists([a, b], [1.0, 2.0], 4, method="weighted", gates=[None, gate])
    # item 0: 0 + 2 * 1 * 1 = 2; item 3: 1 + 0 = 1; item 1: .5; item 2: 2 * .5 * .25 = .25
    assert ids.tolist() == [[0, 3, 1, 2]]
    np.testing.assert_allclose(scores[0], [2.0, 1.0, 0.5, 0.25], rtol=1e-6)
    ungated, _ = fuse_lists([a, b], [1.0, 2.0], 4, method="weighted")
    assert ungated.tolist() == [[0, 2, 3, 1]]  # item 2: 2 * .5 = 1, ties item 3, lower id first
