"""The ranking kernel: both paths against a full stable sort, the tie rule, padding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gemrec import ranking
from gemrec.errors import ParameterError
from gemrec.ranking import topk, topk_pairs

PATHS = [pytest.param(True, id="compiled"), pytest.param(False, id="numpy")]
#: few distinct values: most rows tie at the cut
VALUES = [0.0, 1.0, 2.5, -1.0, -np.inf, np.nan, np.inf]


def _reference_topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Slow reference: per row, a full sort by (descending score, ascending column)."""
    ids = np.full((len(scores), k), -1, np.int32)
    vals = np.full((len(scores), k), -np.inf, np.float32)
    for r, row in enumerate(np.asarray(scores, dtype=np.float64)):
        kept = [j for j in range(len(row)) if row[j] > -np.inf]  # drops -inf and NaN
        order = sorted(kept, key=lambda j: (-row[j], j))[:k]
        ids[r, : len(order)] = order
        vals[r, : len(order)] = row[order]
    return ids, vals


def test_compiled_kernel_is_available() -> None:
    assert ranking._load_kernel() is not None  # numba is a declared dependency


@settings(max_examples=150, deadline=None)
@given(
    arrays(
        st.sampled_from([np.float32, np.float64]),
        st.tuples(st.integers(0, 5), st.integers(0, 40)),
        elements=st.sampled_from(VALUES),
    ),
    st.integers(1, 50),
    st.booleans(),
)
def test_topk_equals_full_sort_under_ties(scores, k, sort_rows) -> None:
    if sort_rows:  # ascending rows: every new column beats the current k-th
        scores = np.sort(scores, axis=1)
    ref_ids, ref_vals = _reference_topk(scores, k)
    for compiled in (True, False):
        ids, vals = topk(scores, k, compiled=compiled)
        assert ids.dtype == np.int32 and vals.dtype == np.float32
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(vals, ref_vals)


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.integers(300, 1500)),
        elements=st.integers(-3, 3).map(float),
    ),
    st.integers(1, 12),
)
def test_topk_equals_full_sort_on_wide_rows(scores, k) -> None:
    """Wide rows take the compiled kernel's sampled lower bound and the NumPy cut fix-up."""
    ref_ids, ref_vals = _reference_topk(scores, k)
    for compiled in (True, False):
        ids, vals = topk(scores, k, compiled=compiled)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(vals, ref_vals)


@pytest.mark.parametrize("compiled", PATHS)
def test_ties_go_to_the_lower_column_at_the_cut(compiled) -> None:
    scores = np.array([[1.0, 3.0, 1.0, 3.0, 1.0, 0.0, 3.0, 1.0]], np.float32)
    ids, vals = topk(scores, 5, compiled=compiled)
    assert ids.tolist() == [[1, 3, 6, 0, 2]]
    assert vals.tolist() == [[3.0, 3.0, 3.0, 1.0, 1.0]]
    # a tie at the cut resolves the same way however the row is laid out around it
    wide = np.zeros((2, 5000), np.float32)
    wide[0, [4999, 17, 2500]] = 1.0
    wide[1, ::-1] = np.arange(5000) % 7  # many equal maxima, listed from the end
    ids, _ = topk(wide, 4, compiled=compiled)
    assert ids[0].tolist() == [17, 2500, 4999, 0]
    assert ids[1].tolist() == sorted(np.flatnonzero(wide[1] == 6))[:4]


@pytest.mark.parametrize("compiled", PATHS)
def test_excluded_entries_and_k_beyond_the_row_are_padding(compiled) -> None:
    scores = np.array(
        [[-np.inf, 0.5, np.nan, -2.0], [-np.inf] * 4, [np.inf, 1.0, -np.inf, 1.0]], np.float32
    )
    ids, vals = topk(scores, 6, compiled=compiled)
    assert ids.tolist() == [[1, 3, -1, -1, -1, -1], [-1] * 6, [0, 1, 3, -1, -1, -1]]
    np.testing.assert_array_equal(
        vals,
        [
            [0.5, -2.0, *[-np.inf] * 4],
            [-np.inf] * 6,
            [np.inf, 1.0, 1.0, *[-np.inf] * 3],
        ],
    )
    ids, vals = topk(np.zeros((3, 0), np.float32), 2, compiled=compiled)
    assert ids.shape == (3, 2) and (ids == -1).all() and np.isneginf(vals).all()
    ids, _ = topk(np.zeros((0, 7), np.float32), 2, compiled=compiled)
    assert ids.shape == (0, 2)


def test_float64_is_ranked_in_its_own_precision() -> None:
    # equal in float32, distinct in float64: the float64 order decides
    scores = np.array([[1.0, 1.0 + 1e-12, 1.0 + 2e-12]])
    assert topk(scores, 3)[0].tolist() == [[2, 1, 0]]
    assert topk(scores.astype(np.float32), 3)[0].tolist() == [[0, 1, 2]]
    ids, vals = topk(np.array([[3, 7, 7]]), 2)  # integers are ranked as float64
    assert ids.tolist() == [[1, 2]] and vals.dtype == np.float32


def test_random_blocks_match_the_reference_and_each_other() -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((30, 2000)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.1] = -np.inf
    ref = _reference_topk(scores, 25)
    for compiled in (True, False):
        got = topk(scores, 25, compiled=compiled)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
    # the values are the scores of the returned ids
    ids, vals = ref
    np.testing.assert_array_equal(np.take_along_axis(scores, ids, axis=1), vals)


def test_bad_arguments_raise_parameter_errors() -> None:
    with pytest.raises(ParameterError, match="parameter 'k' must be a positive integer"):
        topk(np.zeros((1, 3)), 0)
    with pytest.raises(ParameterError, match="'k'"):
        topk(np.zeros((1, 3)), True)
    with pytest.raises(ParameterError, match="parameter 'scores' must be a 2-d array"):
        topk(np.zeros(3), 2)


def _reference_pairs(rows, cols, values, n_rows, k):
    dense = np.full((n_rows, 1 + max(cols, default=0)), -np.inf)
    dense[rows, cols] = values
    return _reference_topk(dense, k)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 12),
    st.data(),
    st.integers(1, 15),
)
def test_topk_pairs_equals_the_dense_ranking(n_rows, n_cols, data, k) -> None:
    cells = data.draw(
        st.lists(
            st.tuples(st.integers(0, n_rows - 1), st.integers(0, n_cols - 1)),
            unique=True,
            max_size=n_rows * n_cols,
        )
    )
    values = data.draw(st.lists(st.sampled_from(VALUES), min_size=len(cells), max_size=len(cells)))
    rows = np.array([r for r, _ in cells], np.int64)
    cols = np.array([c for _, c in cells], np.int64)
    vals = np.array(values, np.float64)
    ref_ids, ref_vals = _reference_pairs(rows, cols, vals, n_rows, k)
    for compiled in (True, False):
        ids, got = topk_pairs(rows, cols, vals, n_rows, k, compiled=compiled)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(got, ref_vals)


def test_topk_pairs_never_returns_absent_pairs() -> None:
    # row 0 has two entries, row 1 none; absent pairs are not zeros
    ids, vals = topk_pairs([0, 0], [5, 2], [-1.0, -1.0], 2, 3)
    assert ids.tolist() == [[2, 5, -1], [-1, -1, -1]]
    assert vals[0, :2].tolist() == [-1.0, -1.0]
    ids, _ = topk_pairs([], [], [], 2, 1)
    assert ids.tolist() == [[-1], [-1]]
    with pytest.raises(ParameterError, match="one length"):
        topk_pairs([0], [1, 2], [1.0], 1, 1)
