"""``--format recbole``: RecBole atomic files, on small hand-made files and on Amazon Scientific."""

import tempfile

import numpy as np
import pandas as pd
import pytest

from gemrec.cli import main
from gemrec.data.importer import import_dataset
from gemrec.data.readers import read_source
from gemrec.data.store import Dataset
from gemrec.errors import DataError
from tests.conftest import shared_data


def _write(path, header, rows):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows))
    return path


def _raw_pairs(ds, split=None):
    e = ds.edges if split is None else ds.edges[ds.edges.split == split]
    return set(zip(ds.user_ids[e.user], ds.item_ids[e.item], strict=True))


@pytest.fixture
def general(tmp_path):
    """ml-style atomic files: ratings with times, user and item features, a social network."""
    root = tmp_path / "toy"
    root.mkdir()
    _write(
        root / "toy.inter",
        ["user_id:token", "item_id:token", "rating:float", "timestamp:float"],
        [
            ["u1", "i1", "5", "881250949"],
            ["u1", "i2", "3", "881250950"],
            ["u2", "i1", "4", "881250951"],
            ["u2", "i3", "1", "881250952"],
            ["u3", "i2", "2", "881250953"],
        ],
    )
    _write(
        root / "toy.user",
        ["user_id:token", "age:float", "gender:token"],
        [["u1", "24", "F"], ["u2", "53", "M"], ["u3", "", "M"]],
    )
    _write(
        root / "toy.item",
        ["item_id:token", "title:token_seq", "categories:token_seq", "price:float"],
        [
            ["i1", "Red shoes", "Shoes Red", "9.5"],
            ["i2", "Cap", "Hats", "12"],
            ["i3", "Mug", "", ""],
        ],
    )
    _write(root / "toy.net", ["source_id:token", "target_id:token"], [["u1", "u2"], ["u3", "u1"]])
    return root


def test_general_atomic_files_give_events_attributes_and_ties(general, tmp_path):
    res = import_dataset([general], tmp_path / "ds", format="recbole", split="none")
    ds = Dataset.open(res.path)
    assert ds.manifest["format"] == "recbole"
    assert _raw_pairs(ds) == {("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u2", "i3"), ("u3", "i2")}
    ev = ds.events.assign(u=lambda d: ds.user_ids[d.user], i=lambda d: ds.item_ids[d.item])
    row = ev.set_index(["u", "i"]).loc[("u2", "i3")]
    assert row["value"] == 1.0 and row["timestamp"] == 881250952.0
    assert (ds.edges["weight"] == 1.0).all()  # every interaction weighs 1, the rating is a value
    users = ds.users.set_index("user_id")
    assert users.loc["u2", "age"] == 53.0 and users.loc["u1", "gender"] == "F"
    items = ds.items.set_index("item_id")
    assert items.loc["i1", "title"] == "Red shoes" and items.loc["i1", "categories"] == "Shoes Red"
    assert items.loc["i2", "price"] == 12.0  # numeric prices become numbers, as for --items
    assert ds.social.nnz == 2
    assert ds.social[ds.user_index["u1"], ds.user_index["u2"]] == 1.0
    assert len(ds.manifest["sources"]) == 4


def test_split_files_are_kept_as_the_predefined_split(tmp_path):
    root = tmp_path / "sp"
    root.mkdir()
    header = ["user_id:token", "item_id:token"]
    _write(root / "sp.train.inter", header, [["a", "1"], ["a", "2"], ["b", "1"], ["b", "3"]])
    _write(root / "sp.valid.inter", header, [["a", "3"]])
    _write(root / "sp.test.inter", header, [["a", "4"], ["b", "2"]])
    ds = Dataset.open(
        import_dataset([root / "sp.test.inter"], tmp_path / "ds", format="recbole").path
    )
    assert ds.manifest["split"]["method"] == "predefined"
    assert _raw_pairs(ds, "valid") == {("a", "3")}
    assert _raw_pairs(ds, "test") == {("a", "4"), ("b", "2")}
    assert ds.manifest["split"]["valid_from"] == "source"
    assert not ds.has_events  # no timestamps: not an event log


@pytest.fixture
def sequential(tmp_path):
    """UniSRec's layout: index maps, history + next item per line, item text."""
    root = tmp_path / "Sci"
    root.mkdir()
    (root / "Sci.user2index").write_text("A1\t0\nB2\t1\n")
    (root / "Sci.item2index").write_text("X\t0\nY\t1\nZ\t2\nW\t3\n")
    header = ["user_id:token", "item_id_list:token_seq", "item_id:token"]
    # user 0 bought X, Y, Z, W in that order; user 1 bought Y, X, Z
    _write(root / "Sci.train.inter", header, [["0", "0", "1"], ["1", "1", "0"]])
    _write(root / "Sci.valid.inter", header, [["0", "0 1", "2"], ["1", "1", "0"]])
    _write(root / "Sci.test.inter", header, [["0", "0 1 2", "3"], ["1", "1 0", "2"]])
    _write(
        root / "Sci.text",
        ["item_id:token", "text:token_seq"],
        [
            ["X", "Glue 8 oz. Industrial & Scientific Tapes Glue. Gorilla. "],
            ["Y", "Tape No. 5. Industrial & Scientific Tapes Duct Tape. 3M. "],
            ["Z", "Mystery part. . . "],
            ["W", "Gloves. Industrial & Scientific Safety. Acme. "],
        ],
    )
    return root


def test_sequences_give_each_interaction_once_with_its_split_and_text(sequential, tmp_path):
    res = import_dataset([sequential], tmp_path / "ds", format="recbole")
    ds = Dataset.open(res.path)
    assert list(ds.user_ids) == ["A1", "B2"]
    assert _raw_pairs(ds, "test") == {("A1", "W"), ("B2", "Z")}
    # B2's valid target X is also its train target (a repeat): it stays in train
    assert _raw_pairs(ds, "valid") == {("A1", "Z")}
    assert _raw_pairs(ds, "train") == {("A1", "X"), ("A1", "Y"), ("B2", "X"), ("B2", "Y")}
    assert ds.manifest["cleaning"]["held_out_pairs_already_in_train"] == 1
    assert any("sequential" in n for n in ds.manifest["notes"])
    items = ds.items.set_index("item_id")
    assert items.loc["Y", "title"] == "Tape No. 5"  # a title may hold ". "
    assert items.loc["Y", "category"] == "Industrial & Scientific Tapes Duct Tape"
    assert items.loc["X", "brand"] == "Gorilla" and items.loc["Z", "category"] == ""
    assert items.loc["W", "text"].startswith("Gloves. ")
    # a blank category is unknown, not a category of its own
    cats = ds.item_categories()
    assert cats[ds.item_index["Z"]] == -1 and cats[ds.item_index["X"]] >= 0


def test_text_outside_the_unisrec_layout_stays_plain(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    _write(root / "t.inter", ["user_id:token", "item_id:token"], [["a", "x"], ["b", "y"]])
    _write(
        root / "t.text", ["item_id:token", "text:token_seq"], [["x", "a plain title"], ["y", "b"]]
    )
    ds = Dataset.open(import_dataset([root], tmp_path / "ds", format="recbole", split="none").path)
    assert ds.items.columns.tolist() == ["item", "item_id", "text"]


def test_bad_rows_name_file_line_and_field(sequential, general, tmp_path):
    # a float field that is not a number
    _write(
        general / "toy.item",
        ["item_id:token", "price:float"],
        [["i1", "9.5"], ["i2", "cheap"], ["i3", "1"]],
    )
    with pytest.raises(
        DataError,
        match=r"toy\.item, line 3: price: expected a number \(price:float\); found 'cheap'",
    ):
        import_dataset([general], tmp_path / "d1", format="recbole")
    res = import_dataset([general], tmp_path / "d2", format="recbole", on_error="skip")
    assert [(b.line, b.field) for b in res.rejected] == [(3, "price")]
    rejected = pd.read_csv(res.path / "rejected.csv")
    assert rejected["raw"].tolist() == ["i2\tcheap"] and rejected["field"].tolist() == ["price"]
    # a rating that is not a number: the events' own check and message
    inter = general / "toy.inter"
    inter.write_text(inter.read_text().replace("u2\ti3\t1\t", "u2\ti3\tone\t"))
    with pytest.raises(DataError, match=r"toy\.inter, line 5, field 'value': expected a finite"):
        import_dataset([general], tmp_path / "d3", format="recbole")
    # an index missing from the item2index file, in a history and as a target
    test = sequential / "Sci.test.inter"
    test.write_text(test.read_text().replace("0 1 2\t3", "0 9 2\t3").replace("1 0\t2", "1 0\t7"))
    with pytest.raises(
        DataError, match=r"Sci\.test\.inter, line 2: item_id_list: expected an index listed"
    ):
        import_dataset([sequential], tmp_path / "d4", format="recbole")
    res = import_dataset([sequential], tmp_path / "d5", format="recbole", on_error="skip")
    assert [(b.line, b.field) for b in res.rejected] == [(2, "item_id_list"), (3, "item_id")]
    assert "found '9'" in res.rejected[0].reason and "found '7'" in res.rejected[1].reason
    assert res.report.rejected == 2


def test_malformed_files_are_one_clear_error(general, tmp_path, capsys):
    _write(general / "toy.net", ["source_id", "target_id:token"], [["u1", "u2"]])
    with pytest.raises(DataError, match=r"toy\.net, line 1: header field 'source_id' has no type"):
        read_source("recbole", [general])
    _write(general / "toy.net", ["source_id:tokens", "target_id:token"], [["u1", "u2"]])
    with pytest.raises(DataError, match="has type 'tokens'; expected one of token, token_seq"):
        read_source("recbole", [general])
    (general / "toy.net").unlink()
    _write(general / "toy.inter", ["uid:token", "item_id:token"], [["u1", "i1"]])
    with pytest.raises(DataError, match=r"missing column\(s\) user_id"):
        read_source("recbole", [general])
    assert read_source("recbole", [general], {"user_id": "uid"}).events[0].frame["user_id"][0] == (
        "u1"
    )
    _write(general / "other.inter", ["user_id:token", "item_id:token"], [["a", "b"]])
    with pytest.raises(DataError, match="datasets other, toy"):
        read_source("recbole", [general])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="not a RecBole dataset directory"):
        read_source("recbole", [empty])
    code = main(["import", str(empty), "--format", "recbole", "-o", str(tmp_path / "x")])
    assert code == 2 and "not a RecBole dataset directory" in capsys.readouterr().err


# ------------------------------------------------------------------------------ real dataset
def test_amazon_scientific_imports_with_its_split_and_text():
    root = shared_data("amazon-scientific-text")
    with tempfile.TemporaryDirectory() as tmp:
        ds = Dataset.open(import_dataset([root], f"{tmp}/sci", format="recbole").path)
        c = ds.manifest["counts"]
        assert (c["users"], c["items"]) == (8442, 4385)
        # one valid and one test target per user, less the repeats of a train item
        assert 8300 < c["splits"]["valid"] <= 8442 and 8300 < c["splits"]["test"] <= 8442
        assert c["edges"] + ds.manifest["cleaning"]["held_out_pairs_already_in_train"] > 59_000
        assert "ABW8NXS7SV55K" in ds.user_index  # raw ids through Scientific.user2index
        items = ds.items
        assert items["text"].str.len().gt(0).all() and items["title"].str.len().gt(0).all()
        assert (items["category"] != "").mean() > 0.95
        assert items.set_index("item_id").loc["B0000223UV", "brand"] == "Gorilla"
        cats = ds.item_categories()
        assert cats is not None and len(np.unique(cats[cats >= 0])) > 500


def test_amazon_scientific_cold_items_from_the_command_line(capsys):
    root = shared_data("amazon-scientific-text")
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["import", str(root), "--format", "recbole", "-o", f"{tmp}/cold", "--quiet"]
        assert main([*argv, "--split", "cold-items", "--test-fraction", "0.2"]) == 0
        ds = Dataset.open(f"{tmp}/cold")
        e = ds.edges
        cold = set(e.loc[e.split == "test", "item"])
        assert len(cold) == 877 and not cold & set(e.loc[e.split != "test", "item"])
        assert ds.items.loc[sorted(cold), "text"].str.len().gt(0).all()
