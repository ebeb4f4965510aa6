"""``evaluate`` against a slow pure-Python reference, and the beyond-accuracy measures by hand."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.eval.evaluate import (
    VALIDATION_MIN_USERS,
    VALIDATION_PAIRS,
    evaluate,
    paired_difference,
    validation,
    validation_users,
)
from gemrec.models.base import EmbeddingRecommender, Recommender
from gemrec.models.popularity import Popularity


class RandomEmbeddings(EmbeddingRecommender):
    """Seeded Gaussian embeddings: continuous scores, so rankings have no ties."""

    name = "random-embeddings"

    def __init__(self, *, dim: int = 8, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed

    def _fit(self, interactions, valid):
        rng = np.random.default_rng(self.seed)
        n_users, n_items = interactions.matrix.shape
        self.user_embeddings_ = rng.standard_normal((n_users, self.dim)).astype(np.float32)
        self.item_embeddings_ = rng.standard_normal((n_items, self.dim)).astype(np.float32)


def _random_split(rng, n_users, n_items, density):
    """Disjoint random train and test matrices (some users without test items)."""
    mask = rng.random((n_users, n_items))
    train = sp.csr_matrix((mask < density).astype(np.float32))
    test = (mask >= density) & (mask < 2 * density)
    test[::5] = False  # every fifth user has nothing to evaluate
    return train, sp.csr_matrix(test.astype(np.float32))


def reference(model, test, exclude, ks, categories=None, candidates=None):
    """Plain loops over users and positions, straight from the metric definitions."""
    u_emb = model.user_embeddings_.astype(np.float64)
    i_emb = model.item_embeddings_.astype(np.float64)
    train = model.interactions_
    n_users, n_items = train.shape
    popularity = [0] * n_items
    for u in range(n_users):
        for i in train[u].indices:
            popularity[i] += 1
    names = ["recall", "precision", "ndcg", "hitrate", "mrr", "map"]
    sums = {k: dict.fromkeys(names, 0.0) for k in ks}
    lists = {k: [] for k in ks}
    users = [u for u in range(n_users) if test[u].nnz > 0]
    for u in users:
        relevant = set(test[u].indices.tolist())
        seen = set(train[u].indices.tolist()) | set(exclude[u].indices.tolist())
        allowed = range(n_items) if candidates is None else sorted(set(candidates.tolist()))
        scores = {i: float(u_emb[u] @ i_emb[i]) for i in allowed if i not in seen}
        ranked = sorted(scores, key=lambda i: (-scores[i], i))
        for k in ks:
            top = ranked[:k]
            lists[k].append(top)
            hits = [i in relevant for i in top]
            n_hits = sum(hits)
            dcg = sum(1 / math.log2(j + 2) for j, h in enumerate(hits) if h)
            idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(relevant))))
            first = next((j + 1 for j, h in enumerate(hits) if h), None)
            ap = sum(sum(hits[: j + 1]) / (j + 1) for j, h in enumerate(hits) if h)
            s = sums[k]
            s["recall"] += n_hits / len(relevant)
            s["precision"] += n_hits / k
            s["ndcg"] += dcg / idcg
            s["hitrate"] += float(n_hits > 0)
            s["mrr"] += 1 / first if first else 0.0
            s["map"] += ap / min(k, len(relevant))
    out = {"n_users": len(users)}
    for k in ks:
        for name, total in sums[k].items():
            out[f"{name}@{k}"] = total / len(users)
        recommended = [i for top in lists[k] for i in top]
        catalogue = n_items if candidates is None else len(set(candidates.tolist()))
        out[f"coverage@{k}"] = len(set(recommended)) / catalogue
        info = [-math.log2((popularity[i] + 1) / (n_users + 1)) for i in recommended]
        out[f"novelty@{k}"] = sum(info) / len(info)
        if categories is None:
            continue
        shares = []
        for top in lists[k]:
            pairs = [(a, b) for x, a in enumerate(top) for b in top[x + 1 :]]
            same = sum(1 for a, b in pairs if categories[a] == categories[b] and categories[a] >= 0)
            shares.append((len(pairs) - same) / len(pairs) if pairs else 0.0)
        out[f"diversity@{k}"] = sum(shares) / len(users)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evaluate_equals_the_slow_reference(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 37, 30
    train, test = _random_split(rng, n_users, n_items, density=0.2)
    # extra exclusions (a validation split): some overlap the test items on purpose, which then
    # can never be hit but still count in |T|, as in the published protocol
    exclude = sp.csr_matrix((rng.random((n_users, n_items)) < 0.1).astype(np.float32))
    exclude = sp.csr_matrix(exclude - exclude.multiply(train))
    exclude.eliminate_zeros()
    categories = rng.integers(-1, 4, size=n_items).astype(np.int32)  # -1: unknown
    fit_on = Interactions.from_arrays(*train.nonzero(), n_users=n_users, n_items=n_items)
    model = RandomEmbeddings(seed=seed).fit(fit_on)
    ks = [1, 3, 10, 28]  # 28: lists shorter than k for users with > 2 items excluded
    got = evaluate(
        model, test, ks=ks, exclude=exclude, item_categories=categories, batch_size=7
    ).as_dict()
    want = reference(model, test, exclude, ks, categories)
    assert set(got) == set(want)
    assert got["n_users"] == want["n_users"] == sum(test[u].nnz > 0 for u in range(n_users))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert 0 < got["recall@28"] <= 1 and got["recall@1"] <= got["recall@10"]
    # the extra exclusions matter on this data, so the comparison above checks their handling
    assert evaluate(model, test, ks=[10]).as_dict()["recall@10"] != got["recall@10"]


def test_evaluate_with_interactions_objects_and_a_user_subset():
    rng = np.random.default_rng(7)
    n_users, n_items = 25, 20
    train, test = _random_split(rng, n_users, n_items, density=0.25)
    fit_on = Interactions.from_arrays(*train.nonzero(), n_users=n_users, n_items=n_items)
    model = RandomEmbeddings(seed=3).fit(fit_on)
    empty = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    test_inter = Interactions.from_arrays(*test.nonzero(), n_users=n_users, n_items=n_items)
    got = evaluate(model, test_inter, ks=[5, 7]).as_dict()
    want = reference(model, test, empty, [5, 7])
    assert set(got) == set(want)
    assert got == pytest.approx(want, rel=1e-9)
    users = np.array([1, 2, 3, 5])  # 5 has no test items: skipped
    sub = evaluate(model, test_inter, ks=[5], users=users)
    only = np.zeros(n_users, dtype=bool)
    only[[1, 2, 3]] = True
    want = reference(model, sp.csr_matrix(sp.diags(only.astype(np.float32)) @ test), empty, [5])
    assert sub.n_users == 3
    assert sub.as_dict() == pytest.approx(want, rel=1e-9)


def test_coverage_novelty_diversity_by_hand():
    """3 users, 4 items; popularity ranks 0 > 1 > 2 > 3 (item 3 never seen in training).

    train: u0 {0}, u1 {0, 1}, u2 {0, 1, 2}; test: u0 {1}, u1 {3}, u2 {3}; K = 2.
    Lists (training items excluded): u0 [1, 2], u1 [2, 3], u2 [3] (only one item left).
    """
    train = Interactions.from_arrays([0, 1, 1, 2, 2, 2], [0, 0, 1, 0, 1, 2], n_users=3, n_items=4)
    test = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 2], [1, 3, 3])), shape=(3, 4))
    model = Popularity().fit(train)
    ids, _ = model.recommend([0, 1, 2], 2)
    assert ids.tolist() == [[1, 2], [2, 3], [3, -1]]
    categories = np.array([0, 1, 1, -1], dtype=np.int32)  # A, B, B, unknown
    res = evaluate(model, test, ks=[2], item_categories=categories)
    # coverage: items {1, 2, 3} of 4
    assert res["coverage@2"] == pytest.approx(0.75)
    # novelty: self-information -log2((users of i + 1) / (n_users + 1)) over the 5 recommendations
    # item 1: 2 users -> -log2(3/4); item 2: 1 user -> 1 bit; item 3: none -> 2 bits
    assert res["novelty@2"] == pytest.approx((-math.log2(3 / 4) + 2 * 1 + 2 * 2) / 5)
    # diversity: u0 [B, B] -> 0; u1 [B, unknown] -> 1 (unknown counts as distinct); u2 one item -> 0
    assert res["diversity@2"] == pytest.approx(1 / 3)
    # accuracy on the same lists: every user hits, u1 at rank 2
    assert res["recall@2"] == pytest.approx(1.0)
    assert res["precision@2"] == pytest.approx(0.5)
    assert res["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3) + 1) / 3)
    assert res["mrr@2"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert res["map@2"] == pytest.approx((1 + 0.5 + 1) / 3)
    no_cats = evaluate(model, test, ks=[2])
    assert "diversity@2" not in no_cats.as_dict()


def test_evaluate_over_candidates_equals_the_slow_reference():
    rng = np.random.default_rng(5)
    n_users, n_items = 30, 25
    train, test = _random_split(rng, n_users, n_items, density=0.2)
    fit_on = Interactions.from_arrays(*train.nonzero(), n_users=n_users, n_items=n_items)
    model = RandomEmbeddings(seed=1).fit(fit_on)
    candidates = np.array([3, 17, 4, 9, 22, 11, 3])  # unsorted, a repeat
    empty = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    got = evaluate(model, test, ks=[2, 5], candidates=candidates, batch_size=8)
    want = reference(model, test, empty, [2, 5], candidates=candidates)
    assert got.n_candidates == 6
    assert {k: v for k, v in got.as_dict().items() if k != "n_candidates"} == pytest.approx(want)


class FixedScores(Recommender):
    """Scores given as a matrix: the ranking is known by construction."""

    name = "fixed-scores"

    def __init__(self, *, scores=None):
        self.scores = scores

    def _fit(self, interactions, valid):
        self.scores_ = np.asarray(self.scores, dtype=np.float32)

    def _score_block(self, users):
        return self.scores_[users]


def test_candidates_by_hand():
    """3 users, 6 items; items 4 and 5 are cold (the candidates), u_j trained on item j.

    scores  u0 [.9 .8 .1 .2 .5 .3]   test u0 {5}   lists over {4, 5}: u0 [4, 5]
            u1 [.1 .2 .3 .4 .6 .7]        u1 {5}                      u1 [5, 4]
            u2 [.5 .5 .5 .5 .2 .2]        u2 {5}                      u2 [4, 5] (tie: lower id)
    """
    scores = [
        [0.9, 0.8, 0.1, 0.2, 0.5, 0.3],
        [0.1, 0.2, 0.3, 0.4, 0.6, 0.7],
        [0.5, 0.5, 0.5, 0.5, 0.2, 0.2],
    ]
    train = Interactions.from_arrays([0, 1, 2], [0, 1, 2], n_users=3, n_items=6)
    test = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 2], [5, 5, 5])), shape=(3, 6))
    model = FixedScores(scores=scores).fit(train)
    res = evaluate(model, test, ks=[1, 2], candidates=np.array([4, 5]))
    assert res.n_candidates == 2
    assert res["recall@1"] == pytest.approx(1 / 3)  # only u1 ranks item 5 first
    assert res["recall@2"] == pytest.approx(1.0)
    assert res["precision@2"] == pytest.approx(0.5)
    assert res["ndcg@2"] == pytest.approx((1 / math.log2(3) + 1 + 1 / math.log2(3)) / 3)
    assert res["mrr@2"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert res["coverage@1"] == pytest.approx(1.0)  # items 4 and 5: both candidates listed
    # over the whole catalogue u0 and u2 rank warm items first: only u1 still hits
    full = evaluate(model, test, ks=[2])
    assert full["recall@2"] == pytest.approx(1 / 3) and full.n_candidates is None
    assert "n_candidates" not in full.as_dict()


def _one_item_each(n_users: int, n_items: int, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    items = rng.integers(0, n_items, size=n_users)
    return Interactions.from_arrays(np.arange(n_users), items, n_users=n_users + 5, n_items=n_items)


def test_validation_scores_every_user_of_a_catalogue_of_ordinary_size() -> None:
    # Gowalla: 29,858 users x 40,981 items, well under the default budget
    assert 29_858 * 40_981 < VALIDATION_PAIRS
    assert validation_users(_one_item_each(3_000, 41_000)) is None


def test_validation_samples_users_of_a_huge_catalogue_and_keeps_the_sample() -> None:
    valid = _one_item_each(3_000, 500)
    # 3,000 x 500 pairs over a budget of 500,000: max(200, 1,000) users
    users = validation_users(valid, max_pairs=500_000, min_users=200)
    assert users is not None and len(users) == 1_000
    assert np.all(np.diff(users) > 0)  # sorted, distinct
    assert users.max() < 3_000  # only users holding validation items (the 5 extra hold none)
    np.testing.assert_array_equal(users, validation_users(valid, max_pairs=500_000, min_users=200))
    # the floor: never fewer than min_users
    few = validation_users(valid, max_pairs=1_000, min_users=VALIDATION_MIN_USERS)
    assert few is not None and len(few) == VALIDATION_MIN_USERS


def test_validation_callback_scores_the_sampled_users_only() -> None:
    valid = _one_item_each(3_000, 500)
    model = Popularity().fit(_one_item_each(3_000, 500, seed=1))
    validate = validation(valid, k=5, max_pairs=500_000)
    assert validate is not None
    sample = validation_users(valid, max_pairs=500_000)
    assert sample is not None and len(sample) == VALIDATION_MIN_USERS
    expected = evaluate(model, valid, ks=[5], users=sample)
    assert validate(model) == {"recall@5": expected["recall@5"], "ndcg@5": expected["ndcg@5"]}
    assert evaluate(model, valid, ks=[5]).n_users == 3_000 != expected.n_users


def test_per_user_values_and_the_paired_difference_by_hand():
    rng = np.random.default_rng(3)
    n_users, n_items = 41, 25
    train, test = _random_split(rng, n_users, n_items, density=0.2)
    fit_on = Interactions.from_arrays(*train.nonzero(), n_users=n_users, n_items=n_items)
    a = RandomEmbeddings(seed=1).fit(fit_on)
    b = RandomEmbeddings(seed=2).fit(fit_on)
    ra = evaluate(a, test, ks=[5], per_user=True, batch_size=6)
    rb = evaluate(b, test, ks=[5], per_user=True)
    users = [u for u in range(n_users) if test[u].nnz > 0]
    np.testing.assert_array_equal(ra.users, users)

    def recall_by_hand(model, u):
        scores = model.user_embeddings_[u].astype(np.float64) @ model.item_embeddings_.T
        ranked = [i for i in np.argsort(-scores, kind="stable") if i not in train[u].indices]
        return len(set(ranked[:5]) & set(test[u].indices)) / test[u].nnz

    want_a = np.array([recall_by_hand(a, u) for u in users])
    want_b = np.array([recall_by_hand(b, u) for u in users])
    np.testing.assert_allclose(ra.per_user[5]["recall"], want_a)
    assert ra.per_user[5]["ndcg"].mean() == pytest.approx(ra["ndcg@5"])
    diff = want_a - want_b
    assert diff.std() > 0  # the two models differ on these users
    mean, se, n = paired_difference(ra, rb, "recall", 5)
    assert n == len(users)
    assert mean == pytest.approx(diff.mean())
    assert se == pytest.approx(diff.std(ddof=1) / math.sqrt(len(users)))
    with pytest.raises(ParameterError, match="per_user=True"):
        paired_difference(ra, evaluate(b, test, ks=[5]))
    fewer = evaluate(b, test, ks=[5], users=np.array(users[:-1]), per_user=True)
    with pytest.raises(ParameterError, match="different users"):
        paired_difference(ra, fewer, "recall", 5)
