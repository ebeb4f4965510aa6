"""BPR matrix factorisation: planted structure, equivalence with 0-layer LightGCN, resume, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from gemrec.errors import ParameterError
from gemrec.eval import evaluate
from gemrec.models.base import Recommender
from gemrec.models.mf import BPRMF
from tests.models._torch_data import planted_blocks, record_adam_learning_rates

FAST = {"epochs": 5, "embedding_dim": 16, "seed": 0, "progress": False}


def test_learns_planted_communities() -> None:
    train, test = planted_blocks()
    model = BPRMF(**{**FAST, "epochs": 20, "lr": 0.02, "train_batch_size": 64}).fit(train)
    ids, _ = model.recommend(np.arange(train.n_users), k=5)
    assert ((ids % 2) == (np.arange(train.n_users)[:, None] % 2)).mean() > 0.9
    assert evaluate(model, test, ks=[5])["recall@5"] > 0.3


def test_loss_decreases_and_scores_are_inner_products() -> None:
    train, _ = planted_blocks()
    model = BPRMF(**{**FAST, "lr": 0.01}).fit(train)  # one step per epoch on this graph
    losses = [h["loss"] for h in model.history_]
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(
        model.score([2]), model.user_embeddings_[[2]] @ model.item_embeddings_.T, rtol=1e-6
    )


def test_seeds_and_resume(tmp_path) -> None:
    train, test = planted_blocks()
    a = BPRMF(**{**FAST, "epochs": 3}).fit(train, valid=test)
    b = BPRMF(**{**FAST, "epochs": 3}).fit(train, valid=test)
    assert np.array_equal(a.item_embeddings_, b.item_embeddings_)
    ckpt = str(tmp_path / "c")
    BPRMF(**{**FAST, "epochs": 1, "checkpoint_dir": ckpt}).fit(train, valid=test)
    r = BPRMF(**{**FAST, "epochs": 3, "checkpoint_dir": ckpt}).fit(train, valid=test)
    assert np.array_equal(r.item_embeddings_, a.item_embeddings_)


def test_save_load_and_bad_params(tmp_path) -> None:
    train, _ = planted_blocks()
    model = BPRMF(**FAST).fit(train)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.score([1, 2]), model.score([1, 2]))
    with pytest.raises(ParameterError, match="reg"):
        BPRMF(**{**FAST, "reg": -1.0}).fit(train)


def test_lr_decay_sets_each_epochs_learning_rate(monkeypatch) -> None:
    seen = record_adam_learning_rates(monkeypatch)
    train, _ = planted_blocks()
    params = {**FAST, "epochs": 3, "lr": 0.04, "lr_decay": 0.5, "train_batch_size": train.nnz}
    decayed = BPRMF(**params).fit(train)
    assert seen == pytest.approx([0.04, 0.02, 0.01])  # one step per epoch
    constant = BPRMF(**{**params, "lr_decay": 1.0}).fit(train)
    assert seen[3:] == pytest.approx([0.04, 0.04, 0.04])
    assert not np.allclose(decayed.user_embeddings_, constant.user_embeddings_)
    for bad in (0.0, 1.5, True):
        with pytest.raises(ParameterError, match="lr_decay"):
            BPRMF(**{**FAST, "lr_decay": bad}).fit(train)
