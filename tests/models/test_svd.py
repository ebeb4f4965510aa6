"""PureSVD against a dense LAPACK reference; its fold-in vector against its batch fold-in."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.models.svd import PureSVD


def _interactions(seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 40, 400)
    items = (users % 4) * 6 + rng.integers(0, 6, 400)
    weights = rng.integers(1, 6, 400).astype(np.float32)  # PureSVD binarises
    return Interactions.from_arrays(users, items, weights, n_users=40, n_items=24)


def test_scores_equal_the_dense_rank_d_reconstruction() -> None:
    inter = _interactions()
    model = PureSVD(factors=5).fit(inter)
    x = inter.binary().toarray().astype(np.float64)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    ref = (u[:, :5] * s[:5]) @ vt[:5]
    np.testing.assert_allclose(model.singular_values_, s[:5], rtol=1e-5)
    np.testing.assert_allclose(model.score(np.arange(40)), ref, atol=1e-4)


def test_fold_in_vector_and_score_new_agree_with_fitted_scores() -> None:
    inter = _interactions(1)
    model = PureSVD(factors=6).fit(inter)
    users = np.arange(10)
    np.testing.assert_allclose(
        model.score_new(inter.matrix[users]), model.score(users), rtol=1e-4, atol=1e-4
    )
    items = np.array([0, 3, 7])
    q = model.fold_in(model.item_embeddings_[items], np.ones(3, np.float32))
    row = sp.csr_matrix((np.ones(3), (np.zeros(3, int), items)), shape=(1, model.n_items))
    np.testing.assert_allclose(
        q @ model.item_embeddings_.T * 3, model.score_new(row)[0], rtol=1e-4, atol=1e-5
    )


def test_too_small_data_is_refused() -> None:
    with pytest.raises(ParameterError, match="at least 2 users and 2 items"):
        PureSVD().fit(Interactions.from_arrays([0, 0], [0, 1]))
