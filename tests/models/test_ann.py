from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.models.ann import ItemIndex, select_top


def reference(scores, k, excluded, categories, cap):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    out, counts = [], {}
    for i in order:
        if excluded[i] or not np.isfinite(scores[i]):
            continue
        c = categories[i]
        if cap is not None and c >= 0:
            if counts.get(c, 0) >= cap:
                continue
            counts[c] = counts.get(c, 0) + 1
        out.append(i)
        if len(out) == k:
            break
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 60).flatmap(
        lambda n: st.tuples(
            st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0]), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
            st.lists(st.integers(-1, 3), min_size=n, max_size=n),
        )
    ),
    st.integers(1, 20),
    st.one_of(st.none(), st.integers(1, 3)),
)
def test_select_top_equals_filtered_full_sort(data, k, cap):
    scores, excluded, cats = (np.asarray(x) for x in data)
    ids, vals = select_top(scores.astype(np.float32), k, excluded, cats.astype(np.int32), cap)
    assert ids.tolist() == reference(scores, k, excluded, cats, cap)
    np.testing.assert_array_equal(vals, scores[ids].astype(np.float32))


def test_ann_index_returns_k_eligible_and_matches_exact_mostly():
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((3000, 16)).astype(np.float32)
    ann = ItemIndex(vecs, ann_threshold=1000)
    exact = ItemIndex(vecs, ann_threshold=10_000)
    assert ann.ann and not exact.ann
    overlap = []
    for q in rng.standard_normal((20, 16)).astype(np.float32):
        excluded = np.zeros(3000, bool)
        top_exact, _ = exact.search(q, 50)
        excluded[top_exact[:40]] = True  # the 40 best items are filtered out: forces a retry
        got, vals = ann.search(q, 20, excluded)
        want, _ = exact.search(q, 20, excluded)
        assert len(got) == 20 and not excluded[got].any()
        assert np.all(np.diff(vals) <= 1e-6)  # sorted by exact score
        overlap.append(len(set(got) & set(want)) / 20)
    assert np.mean(overlap) >= 0.9


def test_ann_narrow_filter_falls_back_to_exact_and_never_returns_fewer_than_k():
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((2000, 8)).astype(np.float32)
    ann = ItemIndex(vecs, ann_threshold=100)
    excluded = np.ones(2000, bool)
    eligible = rng.choice(2000, size=15, replace=False)
    excluded[eligible] = False
    got, _ = ann.search(rng.standard_normal(8).astype(np.float32), 10, excluded)
    assert len(got) == 10 and set(got) <= set(eligible)
    got, _ = ann.search(rng.standard_normal(8).astype(np.float32), 30, excluded)
    assert sorted(got) == sorted(eligible)  # only 15 eligible: all of them


def test_index_add_new_items():
    idx = ItemIndex(np.eye(4, dtype=np.float32), ann_threshold=2)
    new = idx.add(np.array([[0, 0, 0, 5.0]], np.float32))
    assert new.tolist() == [4] and idx.n_items == 5
    got, _ = idx.search(np.array([0, 0, 0, 1.0], np.float32), 1)
    assert got.tolist() == [4]


def test_updated_vector_is_found_by_its_new_neighbours_in_the_ann_graph():
    """Two far-apart clusters; item 7 moves from the first to the second. Queries around the second
    find it through the HNSW graph, with its new exact score, and queries around the first no
    longer return it."""
    rng = np.random.default_rng(2)
    a, b = np.zeros(16, np.float32), np.zeros(16, np.float32)
    a[0], b[1] = 10.0, 10.0
    vecs = np.vstack(
        [a + rng.standard_normal((1500, 16)), b + rng.standard_normal((1500, 16))]
    ).astype(np.float32)
    vecs[7] = a
    ann = ItemIndex(vecs, ann_threshold=100)
    moved = b * 2.0
    ann.set_vector(7, moved)
    exact = ItemIndex(ann.vectors.copy(), ann_threshold=10**6)
    np.testing.assert_array_equal(ann.vectors[7], moved)
    for q in b + 0.1 * rng.standard_normal((10, 16)).astype(np.float32):
        got, vals = ann.search(q, 5)
        want, want_vals = exact.search(q, 5)
        assert got[0] == want[0] == 7
        np.testing.assert_allclose(vals[0], want_vals[0], rtol=1e-5)
    near_old = ann.search(a, 50)[0]
    assert 7 not in near_old and len(near_old) == 50 and len(set(near_old)) == 50
    assert ann.n_items == 3000
    # an item added afterwards gets its own id, and moving it again works the same way
    (new,) = ann.add(a * 2.0)
    assert new == 3000 and ann.search(a, 1)[0].tolist() == [3000]
    ann.set_vector(3000, b * 2.5)
    assert ann.search(b, 1)[0].tolist() == [3000] and 3000 not in ann.search(a, 20)[0]


def test_ann_search_with_extra_scores_matches_the_exact_sum():
    # low-rank + sparse models: ANN candidates plus the top of the extra scores, re-scored exactly
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((3000, 16)).astype(np.float32)
    ann = ItemIndex(vecs, ann_threshold=1000)
    assert ann.ann
    overlap = []
    for q in rng.standard_normal((20, 16)).astype(np.float32):
        extra = np.zeros(3000, np.float32)
        boosted = rng.choice(3000, 30, replace=False)
        extra[boosted] = rng.uniform(5.0, 15.0, 30).astype(np.float32)  # far from the ANN's top
        excluded = np.zeros(3000, bool)
        excluded[boosted[:5]] = True
        got, vals = ann.search(q, 20, excluded, extra=extra)
        want, _ = select_top(vecs @ q + extra, 20, excluded)
        assert len(got) == 20 and not excluded[got].any()
        np.testing.assert_allclose(vals, (vecs[got] @ q + extra[got]), rtol=1e-5, atol=1e-5)
        assert set(boosted[5:]) & set(want) <= set(got)  # the sparse part's top is never lost
        overlap.append(len(set(got) & set(want)) / 20)
    assert np.mean(overlap) >= 0.95
    # without an index (exact) the sum is ranked exactly
    exact = ItemIndex(vecs, ann_threshold=10_000)
    q, extra = vecs[0], np.arange(3000, dtype=np.float32) / 3000
    got, _ = exact.search(q, 10, extra=extra)
    np.testing.assert_array_equal(got, select_top(vecs @ q + extra, 10)[0])
