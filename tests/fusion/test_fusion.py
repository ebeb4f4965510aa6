"""The fusion model: its contract, tuning and refit, fold-in, the cold-user fallback, save/load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.data.store import Dataset
from gemrec.errors import GemrecError, ParameterError
from gemrec.eval.commands import evaluate_on_dataset
from gemrec.fusion import Fusion
from gemrec.fusion.lists import fuse_lists, support_gate
from gemrec.fusion.tuning import SUPPORT_SCALES
from gemrec.models.base import Recommender
from gemrec.models.commands import train_model
from gemrec.models.popularity import Popularity
from tests.analysis.loaders import build_dataset, read_movielens
from tests.conftest import shared_data
from tests.fusion.channels import ItemCosine, ValidationSpy
from tests.fusion.data import clusters


@pytest.mark.parametrize("method", ["weighted", "rrf", "ltr"])
def test_fusion_contract_and_save_load(method: str, tmp_path: Path) -> None:
    train, valid, _test = clusters()
    model = Fusion(channels=["pop", "test_itemcos"], method=method, n_candidates=30, seed=1)
    assert model.fit(train, valid=valid) is model
    assert model.method_ == method
    users = np.arange(train.n_users)
    ids, scores = model.recommend(users, 10)
    assert ids.shape == scores.shape == (train.n_users, 10)
    seen = model.interactions_
    assert seen.nnz == train.nnz + valid.nnz  # refit on train + valid
    for u in range(0, train.n_users, 7):
        assert not set(ids[u].tolist()) & set(seen[u].indices.tolist())
        assert len(set(ids[u].tolist())) == 10
        assert np.all(np.diff(scores[u]) <= 0)
    # batch == single
    one_ids, _ = model.recommend([5], 10)
    np.testing.assert_array_equal(one_ids[0], ids[5])
    # exclusions reach every channel
    excl = sp.csr_matrix((np.ones(2), ([0, 0], ids[0, :2])), shape=(1, train.n_items))
    ex_ids, _ = model.recommend([0], 10, exclude=excl)
    assert not set(ids[0, :2].tolist()) & set(ex_ids[0].tolist())
    path = model.save(tmp_path / "fused")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["model"] == "fusion"
    meta = json.loads((path / "fusion.json").read_text())
    for d in meta["channel_dirs"]:
        assert json.loads((path / "channels" / d / "manifest.json").read_text())["model"] in (
            "pop",
            "test_itemcos",
        )
    assert (path / "ltr_model.txt").is_file() == (method == "ltr")
    assert not list(path.rglob("*.pkl"))
    loaded = Recommender.load(path)
    assert isinstance(loaded, Fusion) and loaded.method_ == method
    l_ids, l_scores = loaded.recommend(users, 10)
    np.testing.assert_array_equal(l_ids, ids)
    np.testing.assert_allclose(l_scores, scores, rtol=1e-5)
    # dense scores rank like recommend when nothing is excluded
    dense = loaded.score([3])
    top, _ = loaded.recommend([3], 5, exclude_seen=False)
    assert set(np.argsort(-dense[0], kind="stable")[:5].tolist()) == set(top[0].tolist())


def test_fusion_with_one_effective_channel_reproduces_it() -> None:
    train, valid, _ = clusters()
    fused = Fusion(
        channels=["test_itemcos", "pop"], method="weighted", weights=[1.0, 0.0], refit=False
    )
    fused.fit(train, valid=valid)
    # pop has weight 0: kept only as the fallback for users without history
    assert fused.channel_names_ == ["test_itemcos", "pop"] and fused.weights_.tolist() == [1.0, 0.0]
    alone = ItemCosine().fit(train)
    users = np.arange(0, train.n_users, 3)
    f_ids, _ = fused.recommend(users, 10)
    # the fused model has seen train + valid (refit=False keeps channels fit on train only)
    a_ids, _ = alone.recommend(users, 10, exclude=valid.matrix[users])
    # the same lists: min-max scaling keeps the order, and equal scores go to the lower id in both
    np.testing.assert_array_equal(f_ids, a_ids)


def test_tuning_beats_or_matches_channels_on_clustered_data() -> None:
    train, valid, test = clusters()
    from gemrec.eval import evaluate

    fused = Fusion(channels=["pop", "test_itemcos"], method="auto", n_candidates=30).fit(
        train, valid=valid
    )
    res = {
        m: evaluate(m_, test, ks=[20])["recall@20"]
        for m, m_ in {
            "fusion": fused,
            "pop": Popularity().fit(
                Interactions(train.matrix + valid.matrix, train.user_ids, train.item_ids)
            ),
            "cos": ItemCosine().fit(
                Interactions(train.matrix + valid.matrix, train.user_ids, train.item_ids)
            ),
        }.items()
    }
    assert res["fusion"] >= max(res["pop"], res["cos"]) * 0.98
    chosen = fused.validation_["chosen"]
    objective = {m: v["recall@20"] + v["ndcg@20"] for m, v in fused.validation_["methods"].items()}
    assert objective[chosen] == max(objective.values())


def test_a_ranker_is_kept_only_when_it_is_the_chosen_blend(tmp_path: Path) -> None:
    """'auto' trains rankers on the cross-fit folds; when another method wins none is kept."""
    train, valid, _ = clusters()
    # a ranker that may not split ranks candidates by item id and loses the method choice
    weak = {"min_data_in_leaf": 10**6, "num_boost_round": 2}
    fused = Fusion(
        channels=["pop", "test_itemcos"], method="auto", n_candidates=30, ltr_params=weak
    )
    fused.fit(train, valid=valid)
    assert "ltr" in fused.validation_["methods"] and fused.method_ != "ltr"
    assert fused.ltr_model_ is None
    assert not (fused.save(tmp_path / "fused") / "ltr_model.txt").exists()


def test_without_validation_an_internal_holdout_is_used() -> None:
    train, _, _ = clusters()
    fused = Fusion(channels=["pop", "test_itemcos"], method="rrf").fit(train)
    assert fused.interactions_.nnz == train.nnz
    assert fused.validation_["n_users_tune"] > 10


def test_bad_parameters_raise_clear_errors() -> None:
    train, valid, _ = clusters()
    for params, name in [
        ({"channels": ["nope"]}, "channels"),
        ({"channels": []}, "channels"),
        ({"method": "vote"}, "method"),
        ({"channels": ["pop"], "weights": [1.0, 2.0]}, "weights"),
        ({"normalization": "l2"}, "normalization"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"refit": "twice"}, "refit"),
    ]:
        with pytest.raises(ParameterError, match=name):
            Fusion(**params).fit(train, valid=valid)
    with pytest.raises(ParameterError, match="item_categories"):
        side = SideInformation(item_categories=np.zeros(3, np.int64))
        Fusion(channels=["pop"]).fit(train, valid=valid, side=side)
    with pytest.raises(GemrecError, match="not fitted"):
        Fusion().recommend([0], 5)


def test_train_fusion_from_dataset_dir_with_categories(tmp_path: Path) -> None:
    """`gemrec train --model fusion`: channels from names, validation split, category features."""
    root = shared_data("movielens-100k")
    ds = Dataset.open(build_dataset(read_movielens(root), tmp_path / "ml", split="temporal"))
    params = {"channels": ["pop", "test_itemcos"], "method": "ltr", "n_candidates": 50}
    model = train_model(ds, "fusion", params, tmp_path / "model")
    assert model.side_features_.cat_affinity is not None
    assert model.side_features_.cat_last is not None
    res = evaluate_on_dataset(Recommender.load(tmp_path / "model"), ds, [20])
    again = evaluate_on_dataset(model, ds, [20])
    assert res["recall@20"] == pytest.approx(again["recall@20"])
    single = evaluate_on_dataset(train_model(ds, "pop", {}), ds, [20])
    assert res["recall@20"] > 0.5 * single["recall@20"]


@pytest.mark.parametrize("method", ["rrf", "weighted"])
def test_fold_in_matches_fitted_users(method: str) -> None:
    train, valid, _ = clusters()
    fused = Fusion(channels=["pop", "test_itemcos"], method=method, n_candidates=30)
    fused.fit(train, valid=valid)
    users = np.arange(0, train.n_users, 5)
    ids, scores = fused.recommend(users, 10)
    f_ids, f_scores = fused.recommend(users, 10, user_items=fused.interactions_[users])
    np.testing.assert_array_equal(f_ids, ids)
    np.testing.assert_allclose(f_scores, scores, rtol=1e-6)
    # a brand-new user with no items gets the popularity fallback
    empty = sp.csr_matrix((1, train.n_items), dtype=np.float32)
    n_ids, _ = fused.recommend([0], 5, user_items=empty)
    pop = np.asarray(fused.interactions_.astype(bool).sum(axis=0)).ravel()
    assert set(n_ids[0].tolist()) <= set(np.argsort(-pop, kind="stable")[:10].tolist())


def test_tiny_data_falls_back_to_untuned_rrf_and_scores_match_recommend() -> None:
    # 6 users, 2 items each: no holdout user keeps training history, nothing to tune on
    users = np.repeat(np.arange(6), 2)
    items = np.array([0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0])
    tiny = Interactions.from_arrays(users, items, n_users=6, n_items=8)
    fused = Fusion(channels=["pop", "test_itemcos"], method="auto").fit(tiny)
    assert fused.method_ == "rrf"
    assert "untuned" in fused.validation_
    # untuned: the popularity channel only serves users without history
    assert fused.weights_.tolist() == [0.0, 1.0]
    excl = sp.csr_matrix((np.ones(6), (np.arange(6), np.arange(6) + 2)), shape=(6, 8))
    for ex in (None, excl):
        ids, scores = fused.recommend(np.arange(6), 8, exclude=ex)
        for u in range(6):
            row = ids[u][ids[u] >= 0]
            expected_n = (
                8 - 2 - (0 if ex is None or ex[u].indices[0] in items[2 * u : 2 * u + 2] else 1)
            )
            assert len(row) == expected_n  # every unseen, unexcluded item, then -1 padding
            np.testing.assert_allclose(scores[u, : len(row)], fused.score([u], row)[0], rtol=1e-6)


def test_channels_are_tuned_and_refit_without_validation_data() -> None:
    """Tuning must see channels trained like the refit ones: no early stopping on held-out items."""
    train, valid, _ = clusters()
    fused = Fusion(channels=["pop", "test_validspy"], method="rrf", n_candidates=30)
    fused.fit(train, valid=valid)
    spy = fused.channels_[fused.channel_names_.index("test_validspy")]
    assert isinstance(spy, ValidationSpy)
    assert spy.got_valid_ is False
    assert spy.fit_nnz_ == train.nnz + valid.nnz  # the refit saw train + valid


@pytest.mark.parametrize("refit", ["extend", "full", "none"])
def test_refit_extends_lightgcn_or_trains_it_again_as_asked(refit: str) -> None:
    from gemrec.data.holdout import union
    from gemrec.models.lightgcn import LightGCN

    train, valid, _ = clusters()
    params = {"epochs": 3, "embedding_dim": 8, "progress": False}
    channel = {"model": "lightgcn", "params": params, "name": "lgcn"}
    fused = Fusion(channels=["pop", channel], method="rrf", n_candidates=30, refit=refit)
    fused.fit(train, valid=valid)
    got = fused.channels_[fused.channel_names_.index("lgcn")]
    tuned = LightGCN(**params).fit(train)
    expected = {
        "extend": tuned.extended(union(train, valid)),  # one training: the tuning split's
        "full": LightGCN(**params).fit(union(train, valid)),
        "none": tuned,
    }[refit]
    np.testing.assert_array_equal(got.user_embeddings_, expected.user_embeddings_)
    np.testing.assert_array_equal(got.item_embeddings_, expected.item_embeddings_)
    nnz = train.nnz if refit == "none" else train.nnz + valid.nnz
    assert got.interactions_.nnz == nnz


def test_ltr_boosting_rounds_come_from_ltr_params() -> None:
    train, valid, _ = clusters()
    params = {"num_boost_round": 3, "early_stopping_rounds": 50}
    fused = Fusion(
        channels=["pop", "test_itemcos"], method="ltr", n_candidates=30, ltr_params=params
    )
    fused.fit(train, valid=valid)
    assert 1 <= fused.ltr_model_.num_trees() <= 3
    assert fused.ltr_model_.params["objective"] == "rank_xendcg"


def test_public_names_and_lightgbm_imported_only_when_used() -> None:
    import gemrec.fusion

    assert gemrec.fusion.__all__ == ["DEFAULT_CHANNELS", "METHODS", "Fusion", "fuse_lists"]
    assert gemrec.fusion.METHODS == ("auto", "weighted", "rrf", "ltr")
    code = (
        "import sys, gemrec.fusion.fusion, gemrec.fusion.learned, gemrec.fusion.tuning; "
        "print('lightgbm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_support_gated_channel_is_tuned_applied_and_saved(tmp_path: Path) -> None:
    train, valid, _ = clusters()
    model = Fusion(
        channels=["pop", "test_itemcos"],
        method="weighted",
        support_gated=["test_itemcos"],
        n_candidates=30,
    ).fit(train, valid=valid)
    assert model.support_gated_ == [False, True]
    assert model.support_scale_ in (None, *SUPPORT_SCALES)
    assert model.validation_["methods"]["weighted"]["support_scale"] == model.support_scale_
    # the fused list is fuse_lists with the gate of the item supports the model has seen
    model.support_scale_ = 3.0
    model._prepare()
    users = np.arange(0, train.n_users, 9)
    lists = model.channel_lists(users)
    gate = support_gate(model.side_features_.item_pop, 3.0)
    want, _ = fuse_lists(lists, model.weights_, 10, method="weighted", gates=[None, gate])
    got, _ = model.recommend(users, 10)
    np.testing.assert_array_equal(got, want)
    loaded = Recommender.load(model.save(tmp_path / "gated"))
    assert isinstance(loaded, Fusion)
    assert loaded.support_scale_ == 3.0 and loaded.support_gated_ == [False, True]
    np.testing.assert_array_equal(loaded.recommend(users, 10)[0], got)
    with pytest.raises(ParameterError, match="support_gated"):
        Fusion(channels=["pop"], support_gated=["content"]).fit(train, valid=valid)
