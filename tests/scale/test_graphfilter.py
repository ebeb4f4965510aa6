"""The Dask-fitted spectral filter matches the in-core one, on workers smaller than the matrix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gemrec.cli import main
from gemrec.errors import ParameterError
from gemrec.models.base import Recommender
from gemrec.models.fitting import fit_on_dataset
from gemrec.models.graphfilter import GraphFilter
from gemrec.scale import fit_graphfilter_dask
from tests.scale.conftest import WORKER_MEMORY

# heat and a flat response: the Dask fit builds the low-rank part as the model does
PARAMS = {"n_components": 24, "svd_n_iter": 4, "seed": 3, "heat": 2.0, "flatness": 3.0}


@pytest.fixture(scope="module")
def fitted(shop_dataset, client):
    in_core = fit_on_dataset(
        shop_dataset, GraphFilter(item_item="factored", svd_method="randomized", **PARAMS)
    ).model
    dask = fit_graphfilter_dask(
        shop_dataset.path, client=client, users_per_block=200, item_item="factored", **PARAMS
    )
    return in_core, dask


def test_the_matrix_does_not_fit_a_worker(shop_dataset):
    R = shop_dataset.interactions("train", "valid").matrix
    assert R.data.nbytes + R.indices.nbytes + R.indptr.nbytes > WORKER_MEMORY


def test_singular_values_match_to_1e_3(fitted):
    in_core, dask = fitted
    assert dask.record["engine"] == "dask" and dask.record["trained_on"] == "train+valid"
    s_ref, s = in_core.singular_values_, dask.model.singular_values_
    assert s.shape == s_ref.shape == (24,)
    np.testing.assert_allclose(s, s_ref, rtol=1e-3)
    assert s[0] == pytest.approx(1.0, abs=1e-4)  # the normalised graph's top singular value


def test_top20_lists_match(fitted, shop_dataset):
    in_core, dask = fitted
    users = np.arange(shop_dataset.n_users)
    seen = shop_dataset.interactions("train", "valid").matrix
    ref, _ = in_core.recommend(users, 20, exclude=seen)
    got, _ = dask.model.recommend(users, 20, exclude=seen)
    same_lists = (ref == got).all(axis=1).mean()
    assert same_lists >= 0.99
    np.testing.assert_array_equal(
        dask.model.interactions_.toarray(), in_core.interactions_.toarray()
    )


@pytest.mark.parametrize(
    "knobs",
    [
        {},
        {"user_exponent": 0.3, "shrink": 2.0},
        # no SVD: the graph's largest singular value is computed on its own
        {"user_exponent": 0.7, "beta": 0.0, "flatness": 1.0},
    ],
)
def test_truncated_item_item_matches_the_in_core_one(knobs, fitted, shop_dataset, client):
    """The default on Dask: each item's 50 largest item-item entries, built on the client (also
    with another user exponent, the graph rescaled, and the entries shrunk)."""
    params = {**PARAMS, "item_item": "truncated", "item_neighbours": 50, **knobs}
    in_core = fit_on_dataset(shop_dataset, GraphFilter(svd_method="randomized", **params)).model
    dask = fit_graphfilter_dask(shop_dataset.path, client=client, users_per_block=200, **params)
    assert dask.model.item_item_ == in_core.item_item_ == "truncated"
    assert np.diff(dask.model.linear_.indptr).max() == 50
    np.testing.assert_array_equal(dask.model.linear_.indices, in_core.linear_.indices)
    np.testing.assert_allclose(dask.model.linear_.data, in_core.linear_.data, rtol=1e-4)
    users = np.arange(shop_dataset.n_users)
    seen = shop_dataset.interactions("train", "valid").matrix
    ref, _ = in_core.recommend(users, 20, exclude=seen)
    got, _ = dask.model.recommend(users, 20, exclude=seen)
    assert (ref == got).all(axis=1).mean() >= 0.99
    if knobs:  # the exact (factored) fit below has the default knobs
        return
    # the truncation against the exact (factored) part: most of the top 20 survive it
    exact, _ = fitted[0].recommend(users, 20, exclude=seen)
    overlap = np.mean([len(np.intersect1d(a, b)) / 20 for a, b in zip(got, exact, strict=True)])
    assert overlap >= 0.9


def test_saves_and_loads_as_any_model(fitted, tmp_path):
    _, dask = fitted
    loaded = Recommender.load(dask.model.save(tmp_path / "gf"))
    assert isinstance(loaded, GraphFilter) and loaded.item_item_ == "factored"
    a, _ = loaded.recommend(np.arange(50), 10)
    b, _ = dask.model.recommend(np.arange(50), 10)
    np.testing.assert_array_equal(a, b)


def test_dense_item_item_and_recency_are_refused(shop_dataset, client):
    with pytest.raises(ParameterError, match="item_item"):
        fit_graphfilter_dask(shop_dataset.path, client=client, item_item="dense")
    with pytest.raises(ParameterError, match="recency"):
        fit_graphfilter_dask(shop_dataset.path, client=client, recency=1.0)


def test_cli_train_engine_dask_saves_the_dask_fit(fitted, shop_dataset, client, tmp_path, capsys):
    _, dask = fitted
    sets = [a for k, v in PARAMS.items() for a in ("--set", f"{k}={v}")]
    argv = ["train", str(shop_dataset.path), "--model", "graphfilter", *sets, "-o"]
    argv += [str(tmp_path / "gf"), "--engine", "dask", "--scheduler", client.scheduler.address]
    assert main([*argv, "--quiet", "--no-track"]) == 0
    out, err = capsys.readouterr()
    assert "on Dask" in out and "untuned" in err
    loaded = Recommender.load(tmp_path / "gf")
    assert isinstance(loaded, GraphFilter) and loaded.item_item_ == "truncated"
    np.testing.assert_allclose(loaded.singular_values_, dask.model.singular_values_, rtol=1e-5)
    record = json.loads((tmp_path / "gf" / "training.json").read_text())
    assert record["engine"] == "dask" and record["params"]["n_components"] == 24


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "lightgcn", "--engine", "dask"], "fits in one process; on Dask: graphfilter"),
        (["--model", "graphfilter", "--scheduler", "tcp://h:1"], "only with --engine dask"),
        (["--model", "graphfilter", "--engine", "dask", "--tune", "1m"], "--tune and --engine"),
    ],
)
def test_cli_train_engine_dask_refuses(extra, message, shop_dataset, tmp_path, capsys):
    argv = ["train", str(shop_dataset.path), *extra, "-o", str(tmp_path / "m"), "--no-track"]
    assert main(argv) != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
