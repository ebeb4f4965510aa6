"""The one fit path: validation handled as each model declares, side information handed on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.data.store import Dataset, write_dataset
from gemrec.models import get_model_class
from gemrec.models.base import ModelTags, Recommender
from gemrec.models.commands import train_model
from gemrec.models.fitting import fit_model, fit_on_dataset, make_configured
from gemrec.models.popularity import Popularity

N_USERS, N_ITEMS = 40, 24


def _splits(seed: int = 0) -> tuple[Interactions, Interactions]:
    """Each user touches 6 items of their quarter of the catalogue; the last one is validation."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        block = u % 4
        items = rng.choice(6, size=6, replace=False) + block * 6
        rows += [(u, int(i), j == 5) for j, i in enumerate(items)]
    users, items, is_valid = (np.array(c) for c in zip(*rows, strict=True))
    make = lambda m: Interactions.from_arrays(  # noqa: E731
        users[m], items[m], n_users=N_USERS, n_items=N_ITEMS
    )
    return make(~is_valid), make(is_valid)


MF = {"epochs": 12, "embedding_dim": 8, "eval_every": 2, "patience": 2, "progress": False}


def test_early_stopping_model_is_refit_on_train_and_valid_for_its_best_epochs():
    train, valid = _splits()
    stopped = make_configured("mf", MF).fit(train, valid=valid)
    result = fit_model(make_configured("mf", MF), train, valid=valid)
    model = result.model
    best = stopped.best_epoch_
    assert 1 <= best <= MF["epochs"]
    assert model.epochs == best and model.best_epoch_ == best
    union = (train.matrix + valid.matrix).tocsr()
    assert (model.interactions_ != union).nnz == 0
    assert result.record["trained_on"] == "train+valid"
    assert result.record["early_stopping"]["best_epoch"] == best
    assert result.record["early_stopping"]["refit"] is True
    # the refit equals a plain fit of the same model for `best` epochs on train + valid
    plain = make_configured("mf", {**MF, "epochs": best}).fit(train.with_matrix(union))
    np.testing.assert_allclose(model.item_embeddings_, plain.item_embeddings_, rtol=1e-5)


def test_refit_false_keeps_the_early_stopped_model():
    train, valid = _splits()
    result = fit_model(make_configured("mf", MF), train, valid=valid, refit=False)
    assert result.record["trained_on"] == "train"
    assert (result.model.interactions_ != train.matrix).nnz == 0
    assert result.model.epochs == MF["epochs"]


def test_models_without_validation_train_on_train_and_valid():
    train, valid = _splits()
    result = fit_model(Popularity(), train, valid=valid)
    union = (train.matrix + valid.matrix).tocsr()
    assert (result.model.interactions_ != union).nnz == 0
    assert result.record["trained_on"] == "train+valid"
    # and without a validation split, on train only
    alone = fit_model(Popularity(), train).model
    assert (alone.interactions_ != train.matrix).nnz == 0


def test_validation_is_withheld_from_models_that_do_not_declare_it():
    train, valid = _splits()
    got = []

    class Watcher(Popularity):
        def _fit(self, interactions, valid):
            got.append(valid)
            super()._fit(interactions, valid)

    Watcher().fit(train, valid=valid)
    assert got == [None]


def test_side_information_reaches_the_model_and_is_checked():
    train, _ = _splits()
    seen = []

    class Reader(Popularity):
        tags = ModelTags(side_information=frozenset({"item_categories"}))

        def _fit(self, interactions, valid):
            seen.append(self._side.item_categories)
            super()._fit(interactions, valid)

    cats = np.arange(N_ITEMS) // 6
    fit_model(Reader(), train, side=SideInformation(item_categories=cats))
    np.testing.assert_array_equal(seen[0], cats)
    with pytest.raises(Exception, match="item_categories"):
        Reader().fit(train, side=SideInformation(item_categories=cats[:5]))


def _dataset(tmp_path):
    train, valid = _splits()
    rows = []
    for split, inter in (("train", train), ("valid", valid)):
        coo = inter.matrix.tocoo()
        rows.append(pd.DataFrame({"user": coo.row, "item": coo.col, "split": split}))
    edges = pd.concat(rows, ignore_index=True)
    edges["weight"] = np.float32(1.0)
    edges["user"] = edges["user"].astype(np.int32)
    edges["item"] = edges["item"].astype(np.int32)
    users = pd.DataFrame({"user": np.arange(N_USERS, dtype=np.int32)})
    users["user_id"] = [f"u{u}" for u in range(N_USERS)]
    items = pd.DataFrame({"item": np.arange(N_ITEMS, dtype=np.int32)})
    items["item_id"] = [f"i{i}" for i in range(N_ITEMS)]
    items["category"] = [f"c{i // 6}" for i in range(N_ITEMS)]
    path = write_dataset(
        tmp_path / "ds", users=users, items=items, edges=edges, manifest={"name": "t"}
    )
    return Dataset.open(path)


def test_fit_on_dataset_gives_every_declared_model_its_side_information(tmp_path):
    ds = _dataset(tmp_path)
    for name in ("item2vec", "fusion"):
        klass = get_model_class(name)
        assert klass.tags.side_information  # the check below means something
    side = ds.side_information()
    np.testing.assert_array_equal(side.item_categories, np.arange(N_ITEMS) // 6)
    assert list(side.item_features["item_id"]) == [f"i{i}" for i in range(N_ITEMS)]


def test_train_records_what_was_asked_and_what_was_fit(tmp_path):
    ds = _dataset(tmp_path)
    model = train_model(ds, "mf", MF, tmp_path / "m")
    record = json.loads((tmp_path / "m" / "training.json").read_text())
    assert record["params"] == {k: v for k, v in MF.items() if k != "progress"}
    assert record["trained_on"] == "train+valid"
    assert record["early_stopping"]["best_epoch"] == model.epochs
    loaded = Recommender.load(tmp_path / "m")
    full = ds.interactions("train", "valid").matrix
    assert (loaded.interactions_ != full).nnz == 0


def test_extra_interactions_grow_the_id_space(tmp_path):
    ds = _dataset(tmp_path)
    user_ids = np.array([*ds.user_ids, "walkin"])
    item_ids = np.array([*ds.item_ids, "fresh"])
    extra = Interactions.from_arrays(
        np.array([N_USERS, N_USERS, 0]),
        np.array([0, N_ITEMS, N_ITEMS]),
        user_ids=user_ids,
        item_ids=item_ids,
    )
    model = fit_on_dataset(ds, Popularity(), extra=extra).model
    assert (model.n_users, model.n_items) == (N_USERS + 1, N_ITEMS + 1)
    m = model.interactions_
    assert m[N_USERS, 0] == 1.0 and m[N_USERS, N_ITEMS] == 1.0 and m[0, N_ITEMS] == 1.0
    assert m[:N_USERS, :N_ITEMS].nnz == ds.interactions("train", "valid").nnz
