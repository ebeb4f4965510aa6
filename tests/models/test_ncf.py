"""NeuMF: NumPy scoring equals the torch network, planted structure, save/load, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gemrec.errors import ParameterError
from gemrec.eval import evaluate
from gemrec.models._ncf_torch import NeuMFNet
from gemrec.models.base import Recommender
from gemrec.models.ncf import NeuMF, neumf_scores
from tests.models._torch_data import planted_blocks

FAST = {"epochs": 5, "embedding_dim": 16, "seed": 0, "progress": False}


def _torch_network(model: NeuMF) -> NeuMFNet:
    net = NeuMFNet(model.n_users, model.n_items, model.embedding_dim, list(model.layers))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in model.weights_.items()})
    return net


def test_numpy_scores_equal_the_torch_network_on_every_pair() -> None:
    train, _ = planted_blocks(n_users=10, n_items=12, per_user=3)
    model = NeuMF(**{**FAST, "epochs": 1, "layers": [16, 8, 4]}).fit(train)
    users = np.array([0, 3, 7])
    got = model.score(users)
    uu, ii = np.meshgrid(users, np.arange(12), indexing="ij")
    with torch.no_grad():
        ref = _torch_network(model)(torch.from_numpy(uu.ravel()), torch.from_numpy(ii.ravel()))
    np.testing.assert_allclose(got, ref.numpy().reshape(3, 12), rtol=1e-5, atol=1e-6)
    # a tiny block budget exercises the chunked path and must agree
    small = neumf_scores(model.weights_, users, max_cells=20)
    np.testing.assert_allclose(small, got, rtol=1e-6, atol=1e-6)


def test_gmf_embeddings_give_the_gmf_term() -> None:
    train, _ = planted_blocks(n_users=10, n_items=12, per_user=3)
    model = NeuMF(**{**FAST, "epochs": 1}).fit(train)
    w = model.weights_
    gmf = float((w["user_gmf"][2] * w["item_gmf"][5] * w["out.weight"][0, :16]).sum())
    assert model.user_embeddings_[2] @ model.item_embeddings_[5] == pytest.approx(gmf, rel=1e-5)


@pytest.mark.slow  # ~300 small steps: seconds on an idle machine, minutes on a loaded one
def test_learns_planted_communities() -> None:
    train, test = planted_blocks()
    model = NeuMF(**{**FAST, "epochs": 30, "lr": 0.01, "train_batch_size": 256}).fit(train)
    ids, _ = model.recommend(np.arange(train.n_users), k=5)
    assert ((ids % 2) == (np.arange(train.n_users)[:, None] % 2)).mean() > 0.9
    assert evaluate(model, test, ks=[5])["recall@5"] > 0.3


def test_save_load_resume_and_bad_params(tmp_path) -> None:
    train, test = planted_blocks(n_users=20, n_items=16, per_user=4)
    a = NeuMF(**{**FAST, "epochs": 3}).fit(train, valid=test)
    loaded = Recommender.load(a.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.score([1, 4]), a.score([1, 4]), rtol=1e-6)
    ckpt = str(tmp_path / "c")
    NeuMF(**{**FAST, "epochs": 2, "checkpoint_dir": ckpt}).fit(train, valid=test)
    r = NeuMF(**{**FAST, "epochs": 3, "checkpoint_dir": ckpt}).fit(train, valid=test)
    np.testing.assert_array_equal(r.score([0, 9]), a.score([0, 9]))
    with pytest.raises(ParameterError, match="layers"):
        NeuMF(**{**FAST, "layers": []}).fit(train)
