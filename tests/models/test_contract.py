"""The contract every recommender in ``gemrec.models.MODELS`` must honour.

Each check runs for every registered model that imports. The data is block structured, so the right
answer is known by construction: users of block b have seen every item of block b (plus one random
item elsewhere), except the first user of each block who misses one block item; a personalised model
must put that item first.

Iterative models get small hyperparameters from ``FAST_PARAMS`` so the suite stays fast; keys a
model does not accept are dropped when it is built, and ``test_fast_params_are_known`` then fails so
the table gets fixed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.data.side import SIDE_FIELDS
from gemrec.errors import GemrecError, NotFittedError, ParameterError
from gemrec.models import MODELS, get_model_class
from gemrec.models.base import EmbeddingRecommender, Recommender

#: small hyperparameters for iterative models (the owners of those models adjust them)
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "lightgcn": {"epochs": 30, "embedding_dim": 16, "n_layers": 2, "seed": 0, "progress": False},
    "mf": {"epochs": 30, "embedding_dim": 16, "lr": 0.01, "seed": 0, "progress": False},
    "ncf": {"epochs": 30, "embedding_dim": 16, "lr": 0.01, "seed": 0, "progress": False},
    # co-occurrence walks: the sequence graph of this data links every user's last in-block
    # item to their one off-block item, which makes the held-out item's rank depend on the draw
    "item2vec": {
        "graph": "cooccurrence",
        "epochs": 3,
        "embedding_dim": 16,
        "walks_per_item": 8,
        "walk_length": 8,
        "pairs_per_batch": 512,
        "lr": 0.02,
        "seed": 0,
        "progress": False,
    },
    "graphfilter": {},
    "svd": {"factors": 4},
    "content": {"base_params": {"factors": 4}},
    "itemknn": {"n_neighbors": 50, "shrink": 1.0},
    "userknn": {"n_neighbors": 50, "shrink": 1.0},
    "rp3beta": {"n_neighbors": 50},
    # the default channels include lightgcn, fit twice (tuning split, then refit)
    "fusion": {"channel_params": {"lightgcn": {"epochs": 3, "embedding_dim": 16, "n_layers": 2}}},
}

#: (parameter, invalid value) per model; the error must name the parameter
BAD_PARAMS: dict[str, list[tuple[str, Any]]] = {
    "pop": [("half_life_days", -1.0), ("weighted", "yes")],
    "itemknn": [("n_neighbors", 0), ("shrink", -1.0), ("weighting", "bm99"), ("asymmetry", 2.0)],
    "userknn": [("n_neighbors", -3), ("shrink", "a lot"), ("weighting", None)],
    "rp3beta": [("alpha", -0.5), ("beta", "high"), ("n_neighbors", 0)],
    "graphfilter": [("beta", -1.0), ("n_components", 0), ("item_item", "huge")],
    "svd": [("factors", 0), ("seed", "zero")],
    "content": [("base", "pop"), ("alpha", -1.0), ("text_weight", "high")],
    "lightgcn": [("epochs", -1), ("embedding_dim", 0), ("partition", "columns")],
    "mf": [("epochs", -1), ("embedding_dim", 0)],
    "ncf": [("epochs", -1), ("embedding_dim", 0)],
    "item2vec": [("epochs", -1), ("embedding_dim", 0)],
    "fusion": [("method", "vote"), ("n_candidates", 0), ("rrf_k", -1.0)],
    "social": [("hops", 0), ("decay", 1.5), ("hops", "two")],
    "similar-users": [("columns", "age"), ("columns", [1, 2]), ("shrinkage", -1.0)],
}

#: models that score every user the same way (the known-answer check differs for them)
#: (social, similar-users: the contract data has no social graph or user metadata, so they rank
#: by popularity; tests/models/test_social.py and test_popularity.py check their known answers)
NON_PERSONALISED = {"pop", "category-pop", "social", "similar-users"}
#: models whose fold-in of a fitted user's row reproduces ``score`` exactly
EXACT_FOLD_IN = {"pop", "itemknn", "rp3beta"}

N_BLOCKS, USERS_PER_BLOCK, ITEMS_PER_BLOCK = 4, 12, 8


def _block_data(seed: int = 0) -> tuple[Interactions, np.ndarray, np.ndarray]:
    """Block-structured interactions, the users with a held-out item, and those items."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    probe_users, probe_items = [], []
    n_items = N_BLOCKS * ITEMS_PER_BLOCK
    for b in range(N_BLOCKS):
        block_items = np.arange(b * ITEMS_PER_BLOCK, (b + 1) * ITEMS_PER_BLOCK)
        for j in range(USERS_PER_BLOCK):
            u = b * USERS_PER_BLOCK + j
            seen = block_items
            if j == 0:
                held = block_items[(3 * b + 1) % ITEMS_PER_BLOCK]
                seen = block_items[block_items != held]
                probe_users.append(u)
                probe_items.append(held)
            other = rng.choice(np.setdiff1d(np.arange(n_items), block_items))
            users += [u] * (len(seen) + 1)
            items += [*seen.tolist(), int(other)]
    inter = Interactions.from_arrays(
        np.array(users),
        np.array(items),
        n_users=N_BLOCKS * USERS_PER_BLOCK,
        n_items=n_items,
        # each user's events form one session (a minute apart), users a day apart
        timestamps=np.array(users, dtype=np.float64) * 86400.0 + np.arange(len(users)) * 60.0,
    )
    return inter, np.array(probe_users), np.array(probe_items)


def _make(name: str, **extra: Any) -> Recommender:
    klass = get_model_class(name)  # a model that does not import fails the suite
    allowed = set(klass._param_names())
    params = {k: v for k, v in FAST_PARAMS.get(name, {}).items() if k in allowed}
    params.update(extra)
    return klass(**params)


@pytest.fixture(scope="module")
def data() -> tuple[Interactions, np.ndarray, np.ndarray]:
    return _block_data()


_FITTED: dict[str, Recommender] = {}


def _fitted(name: str, inter: Interactions) -> Recommender:
    """One fitted instance per model for the read-only checks (fitting once keeps it fast)."""
    if name not in _FITTED:
        _FITTED[name] = _make(name).fit(inter)
    return _FITTED[name]


MODEL_NAMES = sorted(MODELS)


def _assert_same_ranking(model: Recommender, users: np.ndarray, a: tuple, b: tuple) -> None:
    """Same scores; ids may differ only where their scores tie."""
    ids_a, s_a = a
    ids_b, s_b = b
    np.testing.assert_allclose(s_a, s_b, rtol=1e-4, atol=1e-5)
    if np.array_equal(ids_a, ids_b):
        return
    full = model.score(users)
    for r, c in zip(*np.nonzero(ids_a != ids_b), strict=True):
        assert ids_a[r, c] >= 0 and ids_b[r, c] >= 0
        assert full[r, ids_a[r, c]] == pytest.approx(full[r, ids_b[r, c]], rel=1e-4, abs=1e-5)


# --------------------------------------------------------------------------- the contract
def test_fast_params_are_known() -> None:
    for name, params in FAST_PARAMS.items():
        try:
            klass = get_model_class(name)
        except ParameterError:
            continue
        unknown = set(params) - set(klass._param_names())
        assert not unknown, f"FAST_PARAMS['{name}'] has keys {unknown} the model does not accept"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_tags_declare_what_the_model_does(name, data):
    """The CLI, fit path, fusion and service read ``tags``; each must match the class."""
    klass = get_model_class(name)
    tags = klass.tags
    params = klass._param_names()
    assert tags.embeddings == issubclass(klass, EmbeddingRecommender)
    assert tags.fold_in == (klass.score_new is not Recommender.score_new)
    assert tags.low_rank_plus_sparse == callable(getattr(klass, "sparse_scores", None))
    # an inner-product model ranks by its embeddings' product alone (ANN retrieval relies on it)
    assert tags.inner_product == (
        tags.embeddings and klass._score_block is EmbeddingRecommender._score_block
    )
    assert tags.new_item_embedding == callable(getattr(klass, "embed_new_items", None))
    if tags.item_bias:  # the last user coordinate is one weight shared by every user
        assert tags.inner_product
        users = _make(name).fit(data[0]).user_embeddings_
        assert np.all(users[:, -1] == users[0, -1])
    assert tags.progress == ("progress" in params)
    # data-parallel models train through the shared loop and take a device
    assert tags.distributed == ("device" in params)
    assert set(tags.side_information) <= set(SIDE_FIELDS)
    if tags.validation == "early_stopping":
        # the fit path refits for the best number of epochs
        assert "epochs" in params
        inter, _, _ = data
        model = _make(name).fit(inter, valid=inter)
        assert 1 <= model.best_epoch_ <= model.epochs


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fit_returns_self(name, data):
    inter, _, _ = data
    model = _make(name)
    assert model.fit(inter) is model
    assert model.is_fitted
    assert (model.n_users, model.n_items) == inter.matrix.shape


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_not_fitted_raises(name, data):
    model = _make(name)
    with pytest.raises(NotFittedError):
        model.recommend([0], k=3)
    with pytest.raises(NotFittedError):
        model.score([0])
    with pytest.raises(NotFittedError):
        model.save("/nonexistent/never-written")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_known_answer_held_out_item_first(name, data):
    inter, probe_users, probe_items = data
    model = _fitted(name, inter)
    ids, _ = model.recommend(probe_users, k=3)
    if name in NON_PERSONALISED:
        counts = np.asarray(inter.binary().sum(axis=0)).ravel()
        for row, u in zip(ids, probe_users, strict=True):
            scores = counts.astype(float)
            scores[inter.matrix[u].indices] = -np.inf
            assert scores[row[0]] == scores.max()
        return
    np.testing.assert_array_equal(ids[:, 0], probe_items)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_recommendations_are_unseen_sorted_unique(name, data):
    inter, _, _ = data
    model = _fitted(name, inter)
    users = np.arange(inter.n_users)
    ids, scores = model.recommend(users, k=10)
    assert ids.shape == scores.shape == (inter.n_users, 10)
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    for u in users:
        row = ids[u][ids[u] >= 0]
        assert not set(row.tolist()) & set(inter.matrix[u].indices.tolist())
        assert len(set(row.tolist())) == len(row)
        assert np.all(np.diff(scores[u]) <= 0)
        np.testing.assert_allclose(
            scores[u][: len(row)], model.score([u], row)[0], rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_padding_when_k_exceeds_candidates(name, data):
    inter, _, _ = data
    model = _fitted(name, inter)
    n_items = inter.n_items
    ids, scores = model.recommend([1, 2], k=n_items + 5)
    for r, u in enumerate([1, 2]):
        n_unseen = n_items - inter.matrix[u].nnz
        assert np.all(ids[r, :n_unseen] >= 0)
        assert np.all(ids[r, n_unseen:] == -1)
        assert np.all(np.isneginf(scores[r, n_unseen:]))
        assert np.all(np.isfinite(scores[r, :n_unseen]))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_candidates_and_exclude_respected(name, data):
    inter, _, _ = data
    model = _fitted(name, inter)
    users = np.array([0, 13, 30])
    seen = inter.matrix[users]
    candidates = np.array([0, 1, 2, 9, 17, 25, 31])
    ids, _ = model.recommend(users, k=10, candidates=candidates)
    for r in range(len(users)):
        allowed = set(candidates.tolist()) - set(seen[r].indices.tolist())
        got = ids[r][ids[r] >= 0]
        assert set(got.tolist()) == allowed
        assert np.all(ids[r, len(allowed) :] == -1)
    unfiltered, unfiltered_scores = model.recommend(users, k=5)
    exclude = sp.csr_matrix(
        (np.ones(len(users)), (np.arange(len(users)), unfiltered[:, 0])),
        shape=(len(users), inter.n_items),
    )
    ids2, scores2 = model.recommend(users, k=5, exclude=exclude)
    for r in range(len(users)):
        assert unfiltered[r, 0] not in ids2[r]
        # the rest of the list moves up by one (ids may swap only among tied scores)
        np.testing.assert_allclose(scores2[r, :4], unfiltered_scores[r, 1:5], rtol=1e-6)
        full = model.score(users[r : r + 1])[0]
        unique = [c for c in range(4) if np.sum(full == unfiltered_scores[r, 1 + c]) == 1]
        np.testing.assert_array_equal(ids2[r, unique], unfiltered[r, [1 + c for c in unique]])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_batch_equals_single(name, data):
    inter, _, _ = data
    model = _fitted(name, inter)
    users = np.array([3, 17, 40, 0])
    batch = model.recommend(users, k=6)
    singles = [model.recommend([u], k=6) for u in users]
    single = (np.vstack([s[0] for s in singles]), np.vstack([s[1] for s in singles]))
    _assert_same_ranking(model, users, batch, single)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_deterministic_with_seed(name, data):
    inter, _, _ = data
    users = np.arange(inter.n_users)
    a = _make(name).fit(inter).recommend(users, k=5)
    b = _make(name).fit(inter).recommend(users, k=5)
    np.testing.assert_array_equal(a[0], b[0])
    # multithreaded float reductions may differ in the last bit; the ranking may not
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_save_load_round_trip(name, data, tmp_path):
    inter, _, _ = data
    model = _fitted(name, inter)
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    users = np.arange(inter.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], model.recommend(users, k=5)[0])
    np.testing.assert_array_equal(
        loaded.similar_items([0, 5], k=3)[0], model.similar_items([0, 5], k=3)[0]
    )


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bad_parameters_name_the_parameter(name, data):
    inter, _, _ = data
    klass = get_model_class(name)
    cases = [(p, v) for p, v in BAD_PARAMS.get(name, []) if p in klass._param_names()]
    # a model with hyperparameters lists an invalid value of each in BAD_PARAMS
    assert cases or not klass._param_names(), f"add invalid values for '{name}' to BAD_PARAMS"
    with pytest.raises(TypeError):
        klass(no_such_parameter=1)  # type: ignore[call-arg]
    for pname, value in cases:
        model = _make(name, **{pname: value})
        with pytest.raises(ParameterError, match=f"'{pname}'"):
            model.fit(inter)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_similar_items_exclude_the_query(name, data):
    inter, _, _ = data
    model = _fitted(name, inter)
    items = np.arange(inter.n_items)
    ids, scores = model.similar_items(items, k=4)
    assert ids.shape == (inter.n_items, 4)
    assert not np.any(ids == items[:, None])
    assert np.all(np.diff(scores, axis=1) <= 0)
    if name not in NON_PERSONALISED:
        # the nearest neighbour of an item lies in its own block
        blocks_hit = ids[:, 0] // ITEMS_PER_BLOCK == items // ITEMS_PER_BLOCK
        assert blocks_hit.mean() >= 0.9


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fold_in_new_users(name, data):
    inter, probe_users, probe_items = data
    model = _fitted(name, inter)
    rows = inter.matrix[probe_users]
    if not model.tags.fold_in:
        with pytest.raises(GemrecError, match="unseen"):
            model.score_new(rows)
        return
    scores = model.score_new(rows)
    assert scores.shape == (len(probe_users), inter.n_items)
    ids, _ = model.recommend(np.arange(len(probe_users)), k=3, user_items=rows)
    for r in range(len(probe_users)):
        assert not set(ids[r].tolist()) & set(rows[r].indices.tolist())
    if name in EXACT_FOLD_IN:
        np.testing.assert_allclose(scores, model.score(probe_users), rtol=1e-6, atol=1e-7)
    if name not in NON_PERSONALISED:
        np.testing.assert_array_equal(ids[:, 0], probe_items)
