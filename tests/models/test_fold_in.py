"""The online fold-in vector of embedding models ranks exactly like their batch ``score_new``."""

import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.models import get_model_class
from gemrec.models.base import EmbeddingRecommender
from tests.models.test_contract import FAST_PARAMS, _block_data


@pytest.mark.parametrize("name", ["item2vec", "mf"])
def test_fold_in_matches_score_new(name):
    inter, _, _ = _block_data()
    model = get_model_class(name)(**FAST_PARAMS[name]).fit(inter)
    assert isinstance(model, EmbeddingRecommender)
    items = np.array([3, 4, 17])
    weights = np.array([1.0, 2.0, 5.0], dtype=np.float32)
    row = sp.csr_matrix((weights, (np.zeros(3, int), items)), shape=(1, model.n_items))
    q = model.fold_in(model.item_embeddings_[items], weights)
    assert q.shape == (model.item_embeddings_.shape[1],)
    np.testing.assert_allclose(
        q @ model.item_embeddings_.T, model.score_new(row)[0], rtol=1e-4, atol=1e-5
    )
