"""The protocol a dataset's split asks for, and ``gemrec evaluate`` reporting it."""

import json

import numpy as np
import pytest

from gemrec.cli import main
from gemrec.data.importer import import_dataset
from gemrec.data.store import Dataset
from gemrec.data.synthetic import generate_shop, write_shop
from gemrec.eval.commands import evaluate_on_dataset
from gemrec.eval.evaluate import evaluate
from gemrec.eval.protocols import protocol_of
from gemrec.models.fitting import fit_on_dataset
from gemrec.models.popularity import Popularity


@pytest.fixture(scope="module")
def shop_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    return write_shop(generate_shop(n_users=120, n_items=80, n_categories=5, seed=2), root)


def _import(shop_files, path, **options):
    result = import_dataset([shop_files["events"]], path, items=shop_files["items"], **options)
    return Dataset.open(result.path)


def test_cold_items_rank_only_the_cold_items_of_the_split(shop_files, tmp_path):
    ds = _import(shop_files, tmp_path / "ds", split="cold-items", valid_fraction=0.1)
    e = ds.edges
    for split in ("test", "valid"):
        protocol = protocol_of(ds, split)
        assert protocol.name == "cold-items"
        assert np.array_equal(protocol.candidates, np.unique(e.loc[e.split == split, "item"]))
    test = protocol_of(ds)
    assert len(test.candidates) == 16 and len(protocol_of(ds, "valid").candidates) == 8
    assert "ranked only the 16 cold items of the test split" in test.describe()
    assert test.as_dict() == {
        "name": "cold-items",
        "n_items": 80,
        "candidates": "the cold items of the test split",
    }
    model = fit_on_dataset(ds, Popularity()).model
    got = evaluate_on_dataset(model, ds, [10])
    assert got.n_candidates == 16
    want = evaluate(
        model,
        ds.interactions("test"),
        ks=[10],
        exclude=ds.interactions("train", "valid"),
        item_categories=ds.item_categories(),
        candidates=test.candidates,
    )
    assert got.as_dict() == want.as_dict()


def test_cold_users_and_standard_protocols(shop_files, tmp_path):
    ds = _import(shop_files, tmp_path / "cu", split="cold-users", test_fraction=0.25)
    protocol = protocol_of(ds)
    assert protocol.name == "cold-users" and protocol.candidates is None
    assert protocol.n_cold_users == 30
    assert "the 30 users of the test split have no training interactions" in protocol.describe()
    standard = protocol_of(_import(shop_files, tmp_path / "std"))
    assert standard.name == "standard" and standard.describe() == ""
    assert standard.as_dict() == {"name": "standard", "n_items": 80}


def test_evaluate_command_says_which_protocol_in_text_and_json(shop_files, tmp_path, capsys):
    ds_dir, model_dir = tmp_path / "ds", tmp_path / "pop"
    argv = ["import", str(shop_files["events"]), "--format", "events", "-o", str(ds_dir)]
    assert main([*argv, "--split", "cold-items", "--test-fraction", "0.25", "--quiet"]) == 0
    assert main(["train", str(ds_dir), "--model", "pop", "-o", str(model_dir)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), "--dataset", str(ds_dir), "-k", "5"]) == 0
    out = capsys.readouterr().out
    assert "protocol cold-items: ranked only the 20 cold items of the test split" in out
    assert main(["evaluate", str(model_dir), "--dataset", str(ds_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["protocol"]["name"] == "cold-items" and report["n_candidates"] == 20
    assert 0 <= report["recall@20"] <= 1
