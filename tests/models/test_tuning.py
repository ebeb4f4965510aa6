"""Hyperparameter search: never on test, defaults first, the best refit and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gemrec.cli import main
from gemrec.data.store import Dataset, write_dataset
from gemrec.errors import ParameterError
from gemrec.models import get_model_class
from gemrec.models.base import Recommender
from gemrec.models.commands import train_model
from gemrec.models.tuning import SEARCH_SPACES, STARTING_POINTS, parse_budget, tune
from tests.conftest import shared_data
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
    # train and valid stay exactly as they were: moved test edges that collide are dropped
    kept = edges[~test]
    pairs = set(zip(kept["user"], kept["item"], strict=True))
    moved = edges[test]
    clash = [p in pairs for p in zip(moved["user"], moved["item"], strict=True)]
    moved = moved[~np.asarray(clash, dtype=bool)].drop_duplicates(["user", "item"])
    edges = pd.concat([kept, moved], ignore_index=True)
    return write_dataset(
        dst,
        users=ds.users,
        items=ds.items,
        edges=edges,
        manifest={"name": "shop-other-test", "split": ds.manifest.get("split", {})},
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


@pytest.fixture(scope="module")
def movielens(tmp_path_factory) -> Path:
    """MovieLens-100K split by time, with a validation split (10 %) before the test split."""
    out = tmp_path_factory.mktemp("ml") / "ds"
    argv = ["import", str(shared_data("movielens-100k")), "--format", "movielens"]
    argv += ["--split", "temporal", "--valid-fraction", "0.1", "-o", str(out), "--quiet"]
    assert main(argv) == 0
    return out


def test_train_tunes_a_training_free_model_by_default(movielens, tmp_path, capsys):
    out = tmp_path / "gf"
    assert main(["train", str(movielens), "--model", "graphfilter", "--quiet", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("tuned graphfilter: beta=") and "--no-tune" in printed
    record = json.loads((out / "training.json").read_text())
    tuning = record["tuning"]
    assert tuning["split"] == "the dataset's validation split" and tuning["n_trials"] >= 8
    # on MovieLens-100K's validation split the shipped defaults lose to tuned knobs
    assert tuning["best_value"] > tuning["default_value"] > 0.1
    saved = json.loads((out / "manifest.json").read_text())["params"]
    defaults = get_model_class("graphfilter")().get_params()
    chosen = {k: saved[k] for k in SEARCH_SPACES["graphfilter"]}
    assert chosen == {k: record["params"][k] for k in chosen}
    assert chosen != {k: defaults[k] for k in chosen}
    assert Recommender.load(out).get_params() == saved


def test_no_tune_keeps_the_defaults_and_set_values_are_never_searched(movielens, tmp_path, capsys):
    out = tmp_path / "knn"
    argv = ["train", str(movielens), "--model", "itemknn", "--no-tune", "--quiet"]
    assert main([*argv, "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith("trained itemknn")
    assert "tuning" not in json.loads((out / "training.json").read_text())
    assert Recommender.load(out).get_params() == get_model_class("itemknn")().get_params()
    # every searched knob given: nothing left to tune, the values are kept as given
    fixed = {"alpha": 0.7, "beta": 0.2, "n_neighbors": 30}
    model = train_model(Dataset.open(movielens), "rp3beta", fixed)
    assert {k: model.get_params()[k] for k in fixed} == fixed


def test_graphfilter_search_shares_its_svd_and_never_reads_test(movielens, tmp_path):
    result = tune(Dataset.open(movielens), "graphfilter", n_trials=4, seed=1)
    values = [t["recall@20"] for t in result.trials]
    assert len(set(values)) == 4 and result.best_value == max(values)
    # the search ranks its trials on one shared SVD; the refit computes the chosen rank afresh
    model = result.fit.model
    assert model.n_components_ == model._rank(model.n_users, model.n_items)
    # another test split, the same search
    other = _with_other_test_split(movielens, tmp_path / "other")
    again = tune(Dataset.open(other), "graphfilter", n_trials=4, seed=1)
    assert [t["recall@20"] for t in again.trials] == values
    assert again.best_params == result.best_params


def test_a_budget_spent_before_the_first_trial_still_scores_and_returns_the_defaults(shop):
    # the work the trials share (graphfilter's gram and SVD) can use a whole budget by itself
    result = tune(Dataset.open(shop), "graphfilter", budget_s=1e-6, seed=0)
    defaults = get_model_class("graphfilter")().get_params()
    assert len(result.trials) == 1 and result.trials[0]["state"] == "COMPLETE"
    # the shop's validation edges are random ones: recency is not searched there
    searched = [k for k in SEARCH_SPACES["graphfilter"] if k != "recency"]
    assert result.best_params == {k: defaults[k] for k in searched}
    assert result.fit.model.get_params()["flatness"] == defaults["flatness"]


def test_a_budget_shorter_than_one_fit_grows_to_min_fits_fits(shop):
    # a cap the defaults' fit uses up by itself: with min_fits the search still goes on, for
    # that many times the defaults' fit (far more than three trials take here)
    result = tune(
        Dataset.open(shop), "graphfilter", budget_s=1e-6, n_trials=3, min_fits=1e6, seed=0
    )
    assert [t["state"] for t in result.trials] == ["COMPLETE"] * 3
    defaults = get_model_class("graphfilter")().get_params()
    first = {k: defaults[k] for k in SEARCH_SPACES["graphfilter"] if k != "recency"}
    point = {k: v for k, v in STARTING_POINTS["graphfilter"][0].items() if k in first}
    assert result.trials[1]["params"] == {**first, **point}


def test_graphfilter_search_tries_the_starting_points_and_grows_its_shared_svd(movielens):
    from gemrec.eval.evaluate import evaluate
    from gemrec.models.graphfilter import GraphFilter
    from gemrec.models.tuning import tuning_split

    ds = Dataset.open(movielens)
    result = tune(ds, "graphfilter", n_trials=12, seed=1)
    defaults = GraphFilter().get_params()
    start = {k: defaults[k] for k in SEARCH_SPACES["graphfilter"]}
    expected = [start] + [{**start, **p} for p in STARTING_POINTS["graphfilter"]]
    assert [t["params"] for t in result.trials[: len(expected)]] == expected
    # the shared SVD starts at the defaults' rank; trials above it are fitted on a larger one,
    # trials of another user_exponent on work of their own, and every trial scores what a fit
    # of its own would
    assert len({t["params"]["user_exponent"] for t in result.trials}) > 1
    fit, held, _ = tuning_split(ds)
    work = GraphFilter().reusable_work(fit)
    ranks = [GraphFilter(**t["params"])._rank(*work.shape) for t in result.trials]
    assert max(ranks) > work.right_vectors.shape[1]
    assert not GraphFilter(n_components=max(ranks)).reuses(work)
    assert GraphFilter(n_components=work.right_vectors.shape[1]).reuses(work)
    for trial in result.trials:
        own = GraphFilter(**trial["params"]).fit(fit)
        value = float(evaluate(own, held, ks=[20])["recall@20"])
        assert value == pytest.approx(trial["recall@20"], abs=1e-6)


def test_iterative_models_report_each_validation_to_the_pruner(shop):
    fixed = {"epochs": 6, "embedding_dim": 8, "eval_every": 2, "patience": 3, "progress": False}
    result = tune(Dataset.open(shop), "mf", n_trials=4, fixed=fixed, seed=0)
    done = [t for t in result.trials if t["state"] == "COMPLETE"]
    assert len(done) >= 2  # the pruner compares from the third trial on
    for t in done:  # epochs 2, 4, 6 validated on the held-out part, reported in order
        assert sorted(t["reported"]) == [2, 4, 6]
        assert t["recall@20"] == pytest.approx(max(t["reported"].values()))
    pruned = [t for t in result.trials if t["state"] == "PRUNED"]
    assert pruned  # on the shop, later trials fall below the median of the first two
    for t in pruned:  # stopped before its last epoch, valued at where it stopped
        last = max(t["reported"])
        assert last < 6 and t["recall@20"] == t["reported"][last]


def test_an_observer_that_raises_ends_the_fit_at_that_epoch(shop):
    from gemrec.models.training import watching_validation

    seen: list[int] = []

    def observer(epoch: int, metrics: dict[str, float]) -> None:
        seen.append(epoch)
        assert {"recall@20", "ndcg@20"} <= set(metrics)
        if epoch == 4:
            raise KeyboardInterrupt("stop")

    ds = Dataset.open(shop)
    model = get_model_class("mf")(epochs=10, embedding_dim=8, eval_every=2, progress=False)
    with watching_validation(observer), pytest.raises(KeyboardInterrupt):
        model.fit(ds.interactions("train"), valid=ds.interactions("valid"))
    assert seen == [2, 4]
    # outside the context nothing observes
    model.fit(ds.interactions("train"), valid=ds.interactions("valid"))
    assert seen == [2, 4]


def test_a_fixed_setting_rules_out_the_knobs_it_cannot_take(shop):
    # the factored item-item part has no entries to shrink: shrink is not searched with it
    result = tune(Dataset.open(shop), "graphfilter", n_trials=3, fixed={"item_item": "factored"})
    assert [t["state"] for t in result.trials] == ["COMPLETE"] * 3
    assert all("shrink" not in t["params"] for t in result.trials)
    assert result.fit.model.get_params()["shrink"] == 0.0


def test_recency_is_searched_only_where_validation_follows_train_in_time(movielens, shop, tmp_path):
    # MovieLens split by time: the validation split holds each user's latest edges
    timed = tune(Dataset.open(movielens), "graphfilter", n_trials=8, seed=2)
    values = [t["params"]["recency"] for t in timed.trials]
    assert values[0] == 0.0 and len(set(values)) > 2  # the defaults, then sampled weights
    # the shop has timestamps, but its manifest does not say its validation split was carved
    # by time (it was written directly, not imported): recency is not searched
    shop_ds = Dataset.open(shop)
    assert shop_ds.interactions("train").timestamps is not None
    random_valid = tune(shop_ds, "graphfilter", n_trials=3, seed=2)
    assert all("recency" not in t["params"] for t in random_valid.trials)
    ds = Dataset.open(movielens)
    edges = ds.edges.assign(first_timestamp=np.nan, last_timestamp=np.nan)
    untimed = write_dataset(
        tmp_path / "untimed", users=ds.users, items=ds.items, edges=edges, manifest={}
    )
    result = tune(Dataset.open(untimed), "graphfilter", n_trials=3, seed=2)
    assert [t["state"] for t in result.trials] == ["COMPLETE"] * 3
    assert all("recency" not in t["params"] for t in result.trials)


def test_recency_is_searched_on_lines_in_order_validated_on_their_last_items(tmp_path):
    from gemrec.data.importer import import_dataset

    rng = np.random.default_rng(3)
    lines = {u: [str(i) for i in rng.permutation(60)[:25]] for u in range(80)}
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.txt").write_text("".join(f"{u} {' '.join(v)}\n" for u, v in lines.items()))
    (src / "test.txt").write_text("".join(f"{u} {rng.integers(60, 70)}\n" for u in lines))
    searched = {}
    for latest in (False, True):
        out = tmp_path / f"ds-{latest}"
        import_dataset([src], out, format="lightgcn", valid_latest=latest)
        result = tune(Dataset.open(out), "graphfilter", n_trials=3, seed=0)
        searched[latest] = all("recency" in t["params"] for t in result.trials)
        if latest:  # the first starting point weighs recent interactions more
            assert result.trials[1]["params"]["recency"] == 1.5
    assert searched == {False: False, True: True}
