"""Hyperparameter search: never on test, defaults first, the best refit and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gemrec.cli import main
from gemrec.data.store import Dataset, write_dataset
from gemrec.errors import ParameterError
from gemrec.models import get_model_class
from gemrec.models.tuning import SEARCH_SPACES, parse_budget, tune
from tests.serve.conftest import build_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    return build_shop(tmp_path_factory.mktemp("tune") / "shop", valid=True)


def _with_other_test_split(src: Path, dst: Path) -> Path:
    """The same dataset with every test edge moved to another item of the catalogue."""
    ds = Dataset.open(src)
    edges = ds.edges.copy()
    test = edges["split"] == "test"
    edges.loc[test, "item"] = (edges.loc[test, "item"] + 7) % ds.n_items
    edges = edges.drop_duplicates(["user", "item"])
    return write_dataset(
        dst, users=ds.users, items=ds.items, edges=edges, manifest={"name": "shop-other-test"}
    )


def test_parse_budget():
    assert parse_budget("90s") == 90 and parse_budget("10m") == 600 and parse_budget("1.5h") == 5400
    assert parse_budget("45") == 45
    for bad in ("", "ten minutes", "-1m", "0s"):
        with pytest.raises(ParameterError, match="budget"):
            parse_budget(bad)


def test_search_spaces_name_real_parameters():
    for name, space in SEARCH_SPACES.items():
        assert set(space) <= set(get_model_class(name)._param_names()), name


def test_tuning_starts_from_the_defaults_and_never_reads_test(shop, tmp_path):
    result = tune(Dataset.open(shop), "rp3beta", n_trials=4, seed=3)
    defaults = get_model_class("rp3beta")().get_params()
    first = result.trials[0]["params"]
    assert first == {k: defaults[k] for k in SEARCH_SPACES["rp3beta"]}
    values = [t["recall@20"] for t in result.trials]
    assert result.best_value == max(values) >= values[0]
    assert result.tuning_split == "the dataset's validation split"
    # the refit model is the best setting fit on train + valid
    model = result.fit.model
    assert {k: model.get_params()[k] for k in result.best_params} == result.best_params
    full = Dataset.open(shop).interactions("train", "valid").matrix
    assert (model.interactions_ != full).nnz == 0
    # another test split, the same search: test never steers tuning
    other = _with_other_test_split(shop, tmp_path / "other")
    again = tune(Dataset.open(other), "rp3beta", n_trials=4, seed=3)
    assert [t["recall@20"] for t in again.trials] == values
    assert again.best_params == result.best_params


def test_without_a_validation_split_a_holdout_of_train_is_used(tmp_path):
    path = build_shop(tmp_path / "plain")
    result = tune(Dataset.open(path), "itemknn", n_trials=2)
    assert result.tuning_split == "a 10% per-user holdout of train"


def test_cli_tune_and_train_tune_save_the_trials(shop, tmp_path, capsys):
    out = tmp_path / "m"
    argv = ["tune", str(shop), "--model", "itemknn", "--trials", "3", "--set", "shrink=5"]
    assert main([*argv, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("tuned itemknn on ") and "3 trials" in captured.out
    assert captured.err.count("tune itemknn: trial") == 3
    record = json.loads((out / "training.json").read_text())
    assert record["params"]["shrink"] == 5 and len(record["tuning"]["trials"]) == 3
    assert all(
        t["params"].keys() == {"n_neighbors", "asymmetry"} for t in record["tuning"]["trials"]
    )
    out2 = tmp_path / "m2"
    argv = ["train", str(shop), "--model", "rp3beta", "--tune", "1s", "--quiet", "-o", str(out2)]
    assert main(argv) == 0
    assert json.loads((out2 / "training.json").read_text())["tuning"]["n_trials"] >= 1
    assert capsys.readouterr().err == ""


def test_models_without_a_search_space_and_bad_options_are_one_line_errors(shop, tmp_path, capsys):
    out = str(tmp_path / "x")
    assert main(["tune", str(shop), "--model", "category-pop", "-o", out]) == 2
    assert "has no search space" in capsys.readouterr().err
    assert main(["tune", str(shop), "--model", "rp3beta", "--budget", "soon", "-o", out]) == 2
    assert "parameter 'budget'" in capsys.readouterr().err
    assert not Path(out).exists()
