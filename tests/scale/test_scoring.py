"""Scoring on Dask writes the lists ``gemrec recommend`` writes, and resumes an interrupted run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gemrec.cli import main
from gemrec.errors import ParameterError
from gemrec.eval.commands_recommend import write_recommendations
from gemrec.models.fitting import fit_on_dataset
from gemrec.models.graphfilter import GraphFilter
from gemrec.scale import recommend_dask, scoring


@pytest.fixture(scope="module")
def model_dir(shop_dataset, tmp_path_factory):
    model = GraphFilter(n_components=16, item_item="factored")
    fitted = fit_on_dataset(shop_dataset, model).model
    return fitted.save(tmp_path_factory.mktemp("model") / "gf"), fitted


def _lists(directory):
    parts = pd.read_parquet(directory)
    parts = parts.sort_values(["user_id", "rank"])
    return {u: g["item_id"].tolist() for u, g in parts.groupby("user_id", sort=False)}


def test_same_lists_as_gemrec_recommend(shop_dataset, model_dir, client, tmp_path):
    path, fitted = model_dir
    users = np.arange(shop_dataset.n_users)
    write_recommendations(fitted, shop_dataset, users, 20, tmp_path / "recs.jsonl")
    expected = {}
    scores = {}
    for line in (tmp_path / "recs.jsonl").read_text().splitlines():
        row = json.loads(line)
        expected[row["user"]], scores[row["user"]] = row["items"], row["scores"]
    result = recommend_dask(
        path, shop_dataset.path, users, 20, tmp_path / "out", client=client, users_per_block=400
    )
    assert result.n_parts == 4 and result.n_users == shop_dataset.n_users
    assert _lists(tmp_path / "out") == expected
    parts = pd.read_parquet(tmp_path / "out")
    first = parts[parts["user_id"] == shop_dataset.user_ids[0]].sort_values("rank")
    np.testing.assert_allclose(first["score"], scores[shop_dataset.user_ids[0]], rtol=1e-6)
    assert (tmp_path / "out" / scoring.MARKER).is_file()


def test_an_unfinished_run_scores_only_its_missing_parts(shop_dataset, model_dir, client, tmp_path):
    path, _ = model_dir
    users = np.arange(shop_dataset.n_users)
    out = tmp_path / "out"
    recommend_dask(path, shop_dataset.path, users, 10, out, client=client, users_per_block=400)
    before = _lists(out)
    (out / scoring.MARKER).unlink()  # as if the run had been killed after three parts
    (out / "part-00002.parquet").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    result = recommend_dask(
        path, shop_dataset.path, users, 10, out, client=client, users_per_block=400
    )
    assert sorted(kept) == ["part-00000.parquet", "part-00001.parquet", "part-00003.parquet"]
    assert all((out / name).stat().st_mtime_ns == t for name, t in kept.items())
    assert (out / "part-00002.parquet").is_file() and (out / scoring.MARKER).is_file()
    assert result.n_resumed == 3
    assert _lists(out) == before


def test_refuses_a_foreign_directory(shop_dataset, model_dir, client, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="'-o'"):
        recommend_dask(
            model_dir[0], shop_dataset.path, np.arange(5), 5, tmp_path / "x", client=client
        )


def test_cli_engine_dask(shop_dataset, model_dir, client, tmp_path, capsys):
    argv = [
        "recommend", str(model_dir[0]), "--dataset", str(shop_dataset.path), "--users", "test",
        "-k", "5", "-o", str(tmp_path / "recs"), "--engine", "dask", "--scheduler",
        client.scheduler.address, "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    assert "wrote top-k for" in capsys.readouterr().out
    lists = _lists(tmp_path / "recs")
    assert all(len(v) == 5 for v in lists.values())


def test_cli_engine_dask_with_ann_covering_the_catalogue(
    shop_dataset, model_dir, client, tmp_path, capsys
):
    # with as many candidates as items the workers' ANN lists are the exact ones
    argv = [
        "recommend", str(model_dir[0]), "--dataset", str(shop_dataset.path), "--users", "all",
        "-k", "10", "--engine", "dask", "--scheduler", client.scheduler.address, "--quiet",
    ]  # fmt: skip
    assert main([*argv, "-o", str(tmp_path / "exact"), "--no-ann"]) == 0
    capsys.readouterr()
    n_items = str(shop_dataset.n_items)
    ann = ["--ann", "--ann-candidates", n_items, "--ann-recall-sample", "200"]
    assert main([*argv, "-o", str(tmp_path / "ann"), *ann]) == 0
    out = capsys.readouterr().out
    assert "ANN recall@10 against exact top-10 on 200 sampled users: 1.0000" in out
    assert _lists(tmp_path / "ann") == _lists(tmp_path / "exact")
    spec = json.loads((tmp_path / "ann" / scoring.MARKER).read_text())
    assert spec["ann"] == {"n_candidates": shop_dataset.n_items, "index": "hnsw"}
