"""ANN retrieval: the service's filtered index search and batch top-k, against exact ranking."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.data.interactions import Interactions
from gemrec.errors import GemrecError, ParameterError
from gemrec.models._ann_kernels import _lookup, _row_top, _without, sparse_candidates
from gemrec.models.ann import ANNRecommender, ItemIndex, ann_recall, select_top
from gemrec.models.graphfilter import GraphFilter
from gemrec.models.knn import ItemKNN
from gemrec.models.svd import PureSVD


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


def _prior_vectors(n=5000, seed=3):
    """item2vec-like vectors ``[H, log P]``: small vectors, a log prior from -15 to -5."""
    rng = np.random.default_rng(seed)
    h = 0.1 * rng.standard_normal((n, 16))
    log_p = -5.0 - 10.0 * rng.random(n)
    queries = np.hstack([0.05 * rng.standard_normal((30, 16)), np.full((30, 1), 0.5)])
    return np.hstack([h, log_p[:, None]]).astype(np.float32), queries.astype(np.float32)


def test_a_bias_coordinate_is_searched_by_its_own_order_too():
    vecs, queries = _prior_vectors()
    exact = ItemIndex(vecs, ann_threshold=10**6)
    overlap = {}
    for bias in (False, True):
        ann = ItemIndex(vecs, ann_threshold=1000, bias=bias)
        found = [set(ann.search(q, 20)[0]) & set(exact.search(q, 20)[0]) for q in queries]
        overlap[bias] = np.mean([len(f) / 20 for f in found])
    # as a plain coordinate, the large negative log prior of rare items misleads the graph
    assert overlap[False] < 0.5 and overlap[True] >= 0.95
    ann = ItemIndex(vecs, ann_threshold=1000, bias=True)
    # batch search: the index's candidates, then the best items by bias
    rows = ann.search_batch(queries[:3], 50)
    assert rows.shape == (3, 100)
    np.testing.assert_array_equal(rows[:, 50:], np.argsort(-vecs[:, -1])[None, :50].repeat(3, 0))
    # a moved item is found by its new bias; excluded items are never proposed
    moved = vecs[7].copy()
    moved[-1] = 0.0
    ann.set_vector(7, moved)
    assert ann.search(queries[0], 5)[0][0] == 7
    excluded = np.zeros(len(vecs), bool)
    excluded[7] = True
    got, _ = ann.search(queries[0], 20, excluded)
    assert 7 not in got and len(got) == 20


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


# ------------------------------------------------------------------------------ batch top-k
def _planted(n_users=500, n_items=3000, dim=12, per_user=25, seed=0):
    """Users and items drawn near random directions: a low-rank signal with a clear top-k."""
    rng = np.random.default_rng(seed)
    users = rng.standard_normal((n_users, dim))
    items = rng.standard_normal((n_items, dim))
    logits = users @ items.T
    rows, cols = [], []
    for u in range(n_users):
        p = np.exp(logits[u] - logits[u].max())
        chosen = rng.choice(n_items, size=per_user, replace=False, p=p / p.sum())
        rows += [u] * per_user
        cols += chosen.tolist()
    return Interactions.from_arrays(
        np.array(rows), np.array(cols), n_users=n_users, n_items=n_items
    )


@pytest.fixture(scope="module")
def planted():
    inter = _planted()
    return {
        "svd": PureSVD(factors=16).fit(inter),
        "graphfilter": GraphFilter(n_components=16, item_item="sparse").fit(inter),
        "graphfilter-factored": GraphFilter(n_components=16, item_item="factored").fit(inter),
    }


@pytest.mark.parametrize("name", ["svd", "graphfilter", "graphfilter-factored"])
def test_lists_equal_exact_when_candidates_cover_the_catalogue(planted, name):
    model = planted[name]
    users = np.arange(0, model.n_users, 3)
    rng = np.random.default_rng(1)
    extra = sp.random(len(users), model.n_items, density=0.01, random_state=rng, format="csr")
    ann = ANNRecommender(model=model, n_candidates=model.n_items).build()
    for exclude_seen, exclude in [(True, None), (True, extra), (False, extra)]:
        got, got_scores = ann.recommend(users, 20, exclude_seen=exclude_seen, exclude=exclude)
        want, want_scores = model.recommend(users, 20, exclude_seen=exclude_seen, exclude=exclude)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5, atol=1e-6)
    assert ann_recall(ann, users, 20) == 1.0


@pytest.mark.parametrize("name", ["svd", "graphfilter"])
@pytest.mark.parametrize("index", ["hnsw", "ivf"])
def test_recall_against_exact_is_high_with_generous_candidates(planted, name, index):
    model = planted[name]
    ann = ANNRecommender(model=model, n_candidates=200, index=index).build()
    assert ann.index_.ann and ann.index_.kind == index
    users = np.arange(model.n_users)
    assert ann_recall(ann, users, 20) >= 0.95
    got, scores = ann.recommend(users, 20)
    # every list is full, unseen, sorted, and scored with the model's exact score
    assert (got >= 0).all() and np.all(np.diff(scores, axis=1) <= 0)
    seen = model.interactions_
    assert not any(set(got[u]) & set(seen[u].indices) for u in users)
    exact = model.score(users[:50])
    np.testing.assert_allclose(
        scores[:50], np.take_along_axis(exact, got[:50].astype(np.int64), 1), rtol=1e-5, atol=1e-6
    )


def test_item2vec_lists_through_the_index_match_its_own():
    """item2vec's log prior is an item bias: the batch search proposes by it as well."""
    from gemrec.models.item2vec import Item2Vec

    model = Item2Vec(epochs=1, walks_per_item=2, seed=0, progress=False).fit(_planted())
    assert model.tags.item_bias
    ann = ANNRecommender(model=model, n_candidates=100).build()
    assert ann.index_.bias and ann.index_.ann
    users = np.arange(model.n_users)
    assert ann_recall(ann, users, 20) >= 0.95
    got, scores = ann.recommend(users[:50], 20)
    assert all(len(set(row)) == 20 for row in got)  # no item twice, though proposed twice
    np.testing.assert_allclose(
        scores, np.take_along_axis(model.score(users[:50]), got.astype(np.int64), 1), rtol=1e-5
    )


def test_recall_is_the_mean_overlap_with_the_exact_lists(planted):
    model = planted["svd"]
    # one IVF cell scanned of many: a coarse search whose recall is below 1
    ann = ANNRecommender(model=model, n_candidates=20, index="ivf", nlist=64, nprobe=1).build()
    users = np.arange(100)
    exact, _ = model.recommend(users, 10)
    approx, _ = ann.recommend(users, 10)
    by_hand = np.mean([len(set(e) & set(a)) / 10 for e, a in zip(exact, approx, strict=True)])
    recall = ann_recall(ann, users, 10)
    assert recall == pytest.approx(by_hand) and 0.0 < recall < 1.0


def test_users_short_of_candidates_are_ranked_exactly():
    # user 0 has seen all but 12 items: the index's few candidates are nearly all seen
    rng = np.random.default_rng(3)
    rows = np.r_[np.zeros(1988, int), rng.integers(1, 300, 4000)]
    cols = np.r_[np.arange(1988), rng.integers(0, 2000, 4000)]
    model = PureSVD(factors=8).fit(Interactions.from_arrays(rows, cols, n_items=2000))
    ann = ANNRecommender(model=model, n_candidates=5).build()
    got, _ = ann.recommend(np.array([0]), 20)
    want, _ = model.recommend(np.array([0]), 20)
    np.testing.assert_array_equal(got, want)
    assert (got[0, :12] >= 1988).all() and (got[0, 12:] == -1).all()


def test_only_inner_product_models_are_wrapped():
    inter = _planted(n_users=30, n_items=60, per_user=5)
    with pytest.raises(ParameterError, match="parameter 'model' must be a model whose scores"):
        ANNRecommender(model=ItemKNN().fit(inter)).build()
    with pytest.raises(ParameterError, match="'n_candidates' must be a positive integer; got 0"):
        ANNRecommender(model=PureSVD(factors=4), n_candidates=0).fit(inter)
    ann = ANNRecommender(model=PureSVD(factors=4)).fit(inter)  # fit fits the wrapped model
    assert ann.model.is_fitted and ann.n_items == 60
    with pytest.raises(GemrecError, match="an ANNRecommender is not saved"):
        ann.save("unused")


def test_sparse_helpers_equal_dense_references():
    rng = np.random.default_rng(4)
    m = sp.random(30, 50, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    drop = sp.random(30, 50, density=0.1, random_state=rng, format="csr")
    dense, dropped = m.toarray(), drop.toarray() != 0
    cols = rng.integers(0, 50, (30, 7))
    values, stored = _lookup(m, cols)
    np.testing.assert_array_equal(values, np.take_along_axis(dense, cols, 1))
    np.testing.assert_array_equal(stored, np.take_along_axis(m.toarray() != 0, cols, 1))
    np.testing.assert_array_equal(_without(m, drop).toarray(), np.where(dropped, 0, dense))
    top = _row_top(m, 4)
    for r in range(30):
        nz = np.flatnonzero(dense[r])
        want = nz[np.argsort(-dense[r, nz], kind="stable")][:4]
        assert sorted(top[r][top[r] >= 0]) == sorted(want)


@pytest.mark.parametrize("prune", [None, 2])
@pytest.mark.parametrize("n_top", [0, 3, 60])
def test_sparse_candidates_kernel_equals_the_scipy_reference(n_top, prune):
    rng = np.random.default_rng(5)
    X = sp.random(40, 30, density=0.1, random_state=rng, format="csr", dtype=np.float32)
    P = sp.random(30, 50, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    P.data = np.ceil(P.data * 4) / 4  # ties (broken by the lower column), no zeros
    drop = sp.random(40, 50, density=0.1, random_state=rng, format="csr")
    cand = rng.integers(-1, 50, (40, 9))
    fast = sparse_candidates(X, P, drop, cand, n_top, prune=prune)
    slow = sparse_candidates(X, P, drop, cand, n_top, prune=prune, compiled=False)
    np.testing.assert_allclose(fast[2], slow[2], rtol=1e-6)
    for r in range(40):
        assert sorted(fast[0][r]) == sorted(slow[0][r])
        np.testing.assert_allclose(sorted(fast[1][r]), sorted(slow[1][r]), rtol=1e-6)
    S = (X @ P).toarray()
    top, top_values = fast[0], fast[1]
    # the values are exact even when the top came from a pruned product
    assert top_values[top >= 0] == pytest.approx(
        np.take_along_axis(S, np.maximum(top, 0), 1)[top >= 0]
    )
    assert fast[2][cand >= 0] == pytest.approx(
        np.take_along_axis(S, np.maximum(cand, 0), 1)[cand >= 0]
    )
