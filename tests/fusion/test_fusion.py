"""Fusion: list-fusion kernels against slow references, the fitted model's contract, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.data.store import Dataset
from gemrec.errors import GemrecError, ParameterError
from gemrec.eval.commands import evaluate_on_dataset
from gemrec.fusion.fusion import (
    DEFAULT_CHANNEL_PARAMS,
    DEFAULT_CHANNELS,
    Fusion,
    fuse_lists,
)
from gemrec.models import MODELS
from gemrec.models.base import Recommender
from gemrec.models.commands import train_model
from gemrec.models.popularity import Popularity
from tests.analysis.loaders import build_dataset, read_movielens
from tests.conftest import shared_data
from tests.fusion.channels import ItemCosine, ValidationSpy


@pytest.fixture(autouse=True)
def _register_test_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "test_itemcos", "tests.fusion.channels:ItemCosine")
    monkeypatch.setitem(MODELS, "test_validspy", "tests.fusion.channels:ValidationSpy")


# ----------------------------------------------------------------------------- kernels


def test_rrf_and_weighted_hand_example() -> None:
    a = (np.array([[3, 1, 2]]), np.array([[9.0, 5.0, 1.0]]))
    b = (np.array([[1, 4, -1]]), np.array([[0.7, 0.1, -np.inf]]))
    ids, sc = fuse_lists([a, b], [1.0, 1.0], 3, method="rrf", rrf_k=1.0)
    # item 1: 1/(1+2) + 1/(1+1) = .8333; item 3: 1/2; item 4: 1/3; item 2: 1/4
    assert ids.tolist() == [[1, 3, 4]]
    np.testing.assert_allclose(sc[0], [1 / 3 + 1 / 2, 1 / 2, 1 / 3], rtol=1e-6)
    ids, sc = fuse_lists([a, b], [1.0, 2.0], 4, method="weighted")
    # min-max: a -> 3:1, 1:.5, 2:0 ; b -> 1:1, 4:0 ; weighted: 1: .5+2, 3: 1, 2: 0, 4: 0 (tie -> id)
    assert ids.tolist() == [[1, 3, 2, 4]]
    np.testing.assert_allclose(sc[0], [2.5, 1.0, 0.0, 0.0])


def _dense_reference(lists, weights, method, rrf_k, n_items):
    n = lists[0][0].shape[0]
    fused = np.zeros((n, n_items))
    present = np.zeros((n, n_items), bool)
    for (ids, sc), w in zip(lists, weights, strict=True):
        for r in range(n):
            valid = [j for j in range(ids.shape[1]) if ids[r, j] >= 0]
            vals = [sc[r, j] for j in valid]
            lo, hi = (min(vals), max(vals)) if vals else (0, 0)
            for j in valid:
                if method == "rrf":
                    c = w / (rrf_k + j + 1)
                else:
                    c = w * ((sc[r, j] - lo) / (hi - lo) if hi > lo else 1.0)
                if w:
                    fused[r, ids[r, j]] += c
                    present[r, ids[r, j]] = True
    return np.where(present, fused, -np.inf)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.sampled_from(["rrf", "weighted"]),
    st.integers(0, 10_000),
)
def test_fuse_lists_matches_dense_reference(
    n_channels: int, n_rows: int, method: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n_items, width, k = 9, 4, 5
    lists = []
    for _ in range(n_channels):
        ids = np.array([rng.choice(n_items, width, replace=False) for _ in range(n_rows)])
        ids[rng.random(ids.shape) < 0.2] = -1
        sc = np.sort(rng.normal(size=(n_rows, width)), axis=1)[:, ::-1].copy()
        lists.append((ids, sc))
    weights = rng.choice([0.0, 0.5, 1.0, 2.0], n_channels)
    if not weights.any():
        weights[0] = 1.0
    ids, sc = fuse_lists(lists, weights, k, method=method, rrf_k=2.0)
    ref = _dense_reference(lists, weights, method, 2.0, n_items)
    for r in range(n_rows):
        expected = np.sort(ref[r][np.isfinite(ref[r])])[::-1][:k]
        got = sc[r][ids[r] >= 0]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
        for j in np.flatnonzero(ids[r] >= 0):
            assert ref[r, ids[r, j]] == pytest.approx(sc[r, j])


# ----------------------------------------------------------------------------- the model


def _clusters(seed: int = 0) -> tuple[Interactions, Interactions, Interactions]:
    """Users in 4 item clusters; valid/test items come from the user's cluster."""
    rng = np.random.default_rng(seed)
    n_users, n_items, n_cl = 120, 60, 4
    cl_u = np.arange(n_users) % n_cl
    cl_i = np.arange(n_items) % n_cl
    parts: dict[str, list] = {"train": [], "valid": [], "test": []}
    for u in range(n_users):
        own = rng.permutation(np.flatnonzero(cl_i == cl_u[u]))[:10]
        noise = rng.choice(n_items, 2, replace=False)
        tr = np.unique(np.concatenate([own[:6], noise]))
        parts["train"] += [(u, i) for i in tr]
        parts["valid"] += [(u, i) for i in own[6:8] if i not in tr]
        parts["test"] += [(u, i) for i in own[8:] if i not in tr]

    def mk(pairs: list) -> Interactions:
        a = np.array(pairs)
        return Interactions.from_arrays(a[:, 0], a[:, 1], n_users=n_users, n_items=n_items)

    return mk(parts["train"]), mk(parts["valid"]), mk(parts["test"])


@pytest.mark.parametrize("method", ["weighted", "rrf", "ltr"])
def test_fusion_contract_and_save_load(method: str, tmp_path: Path) -> None:
    train, valid, _test = _clusters()
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
    train, valid, _ = _clusters()
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
    train, valid, test = _clusters()
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


def test_without_validation_an_internal_holdout_is_used() -> None:
    train, _, _ = _clusters()
    fused = Fusion(channels=["pop", "test_itemcos"], method="rrf").fit(train)
    assert fused.interactions_.nnz == train.nnz
    assert fused.validation_["n_users_tune"] > 10


def test_bad_parameters_raise_clear_errors() -> None:
    train, valid, _ = _clusters()
    for params, name in [
        ({"channels": ["nope"]}, "channels"),
        ({"channels": []}, "channels"),
        ({"method": "vote"}, "method"),
        ({"channels": ["pop"], "weights": [1.0, 2.0]}, "weights"),
        ({"normalization": "l2"}, "normalization"),
        ({"n_candidates": 0}, "n_candidates"),
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
    assert model.cat_affinity_ is not None and model.cat_last_ is not None
    res = evaluate_on_dataset(Recommender.load(tmp_path / "model"), ds, [20])
    again = evaluate_on_dataset(model, ds, [20])
    assert res["recall@20"] == pytest.approx(again["recall@20"])
    single = evaluate_on_dataset(train_model(ds, "pop", {}), ds, [20])
    assert res["recall@20"] > 0.5 * single["recall@20"]


@pytest.mark.parametrize("method", ["rrf", "weighted"])
def test_fold_in_matches_fitted_users(method: str) -> None:
    train, valid, _ = _clusters()
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
    train, valid, _ = _clusters()
    fused = Fusion(channels=["pop", "test_validspy"], method="rrf", n_candidates=30)
    fused.fit(train, valid=valid)
    spy = fused.channels_[fused.channel_names_.index("test_validspy")]
    assert isinstance(spy, ValidationSpy)
    assert spy.got_valid_ is False
    assert spy.fit_nnz_ == train.nnz + valid.nnz  # the refit saw train + valid


def test_default_channels_and_their_parameters() -> None:
    specs = Fusion(channel_params={"lightgcn": {"epochs": 2}})._channel_specs(has_timestamps=True)
    names = [s[0] for s in specs]
    assert names == [*DEFAULT_CHANNELS, "pop-trending"]
    params = dict((s[0], s[2]) for s in specs)
    # shipped defaults (no progress bar) merged under the caller's channel_params
    assert params["lightgcn"] == {**DEFAULT_CHANNEL_PARAMS["lightgcn"], "epochs": 2}
    assert params["lightgcn"]["progress"] is False
    assert params["pop-trending"] == {"half_life_days": 7.0}
    assert "pop-trending" not in [s[0] for s in Fusion()._channel_specs(has_timestamps=False)]


def test_ltr_popularity_and_activity_features_do_not_shift_when_data_grow() -> None:
    """The refit channels see more data than the tuned blend did: scaling every count leaves the
    popularity and activity features unchanged."""
    train, valid, _ = _clusters()
    fused = Fusion(channels=["pop", "test_itemcos"], method="ltr", n_candidates=30, seed=1)
    fused.fit(train, valid=valid)
    users = np.arange(0, train.n_users, 4)
    lists = [ch.recommend(users, 30) for ch in fused.channels_]
    _rows, items, x = fused._features(users, lists)
    n_ch = len(lists)
    pop_col, act_col = 2 * n_ch + 1, 2 * n_ch + 3
    expected_pop = np.log1p(fused.item_pop_[items] / fused.item_pop_.mean())
    np.testing.assert_allclose(x[:, pop_col], expected_pop, rtol=1e-5)
    fused.item_pop_ = fused.item_pop_ * 3.0
    fused.user_activity_ = fused.user_activity_ * 3.0
    _, _, x3 = fused._features(users, lists)
    np.testing.assert_allclose(x3[:, [pop_col, act_col]], x[:, [pop_col, act_col]], rtol=1e-5)


def test_ltr_boosting_rounds_come_from_ltr_params() -> None:
    train, valid, _ = _clusters()
    params = {"num_boost_round": 3, "early_stopping_rounds": 50}
    fused = Fusion(
        channels=["pop", "test_itemcos"], method="ltr", n_candidates=30, ltr_params=params
    )
    fused.fit(train, valid=valid)
    assert 1 <= fused.ltr_model_.num_trees() <= 3
    assert fused.ltr_model_.params["objective"] == "rank_xendcg"
