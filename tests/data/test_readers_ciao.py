"""``--format ciao``: MATLAB rating and trust matrices, on small generated files and real data."""

import tempfile

import numpy as np
import pytest
import scipy.io

from gemrec.data.importer import import_dataset
from gemrec.data.readers import read_source
from gemrec.data.store import Dataset
from gemrec.errors import DataError
from tests.conftest import shared_data

T0 = 959_670_000
#: userid, productid, categoryid, rating, helpfulness, timestamp
RATINGS = [
    [1, 10, 1, 5, 4, T0],
    [1, 11, 2, 3, 2, T0 + 60],
    [2, 10, 1, 4, 5, T0 + 120],
    [2, 12, 2, 1, 1, T0 + 180],
    [3, 11, 2, 2, 3, T0 + 240],
    [3, 12, 1, 5, 4, T0 + 300],  # product 12 also under category 1: its category is a tie
]


@pytest.fixture
def ciao(tmp_path):
    root = tmp_path / "ciao"
    root.mkdir()
    scipy.io.savemat(root / "rating_with_timestamp.mat", {"rating": np.array(RATINGS, float)})
    scipy.io.savemat(root / "rating.mat", {"rating": np.array(RATINGS, float)[:, :5]})
    scipy.io.savemat(
        root / "trustnetwork.mat", {"trustnetwork": np.array([[1, 2], [3, 1], [9, 1]])}
    )
    (root / "catalog_ciao.txt").write_bytes(b"1 DVDs\r\n2 Books\r\n")
    return root


def _raw_events(ds):
    ev = ds.events
    return sorted(
        zip(
            ds.user_ids[ev.user],
            ds.item_ids[ev.item],
            ev.value.astype(int),
            ev.timestamp.astype(int),
            strict=True,
        )
    )


def test_ratings_categories_and_trust(ciao, tmp_path):
    ds = Dataset.open(import_dataset([ciao], tmp_path / "ds", format="ciao", split="none").path)
    assert _raw_events(ds) == sorted((str(u), str(i), r, t) for u, i, _, r, _, t in RATINGS)
    assert (ds.edges["weight"] == 1.0).all() and (ds.events["event_type"] == "rating").all()
    items = ds.items.set_index("item_id")
    assert items["category"].to_dict() == {"10": "DVDs", "11": "Books", "12": "DVDs"}
    assert items.loc["12", "category_id"] == "1"  # one rating each: the lower id wins the tie
    assert any("1 products are rated under several categories" in n for n in ds.manifest["notes"])
    # trust is directed; the trustor 9 has no rating and is left out (and counted)
    assert ds.social.nnz == 2 and ds.social[ds.user_index["3"], ds.user_index["1"]] == 1.0
    assert ds.manifest["cleaning"]["social_unknown_users"] == 1


def test_helpfulness_as_the_value_and_ratings_without_times(ciao, tmp_path):
    src = read_source("ciao", [ciao], {"value": "helpfulness"})
    assert src.events[0].frame["value"].tolist() == [str(r[4]) for r in RATINGS]
    (ciao / "rating_with_timestamp.mat").unlink()
    res = import_dataset([ciao / "rating.mat"], tmp_path / "ds", format="ciao", split="none")
    ds = Dataset.open(res.path)
    assert ds.events["timestamp"].isna().all()
    assert "has no timestamps" in ds.manifest["notes"][0]
    with pytest.raises(DataError, match="leave-last needs timestamps"):
        import_dataset([ciao], tmp_path / "x", format="ciao", split="leave-last")


def test_bad_rows_name_the_matrix_row_and_field(ciao, tmp_path):
    bad = np.array(RATINGS, float)
    bad[1, 1] = 10.5  # not an integer product id
    bad[3, 3] = np.nan  # no rating
    bad[4, 5] = -1  # not a time
    scipy.io.savemat(ciao / "rating_with_timestamp.mat", {"rating": bad})
    with pytest.raises(
        DataError, match=r"rating_with_timestamp\.mat, line 2: productid: expected a positive"
    ):
        import_dataset([ciao], tmp_path / "ds", format="ciao")
    res = import_dataset([ciao], tmp_path / "ds", format="ciao", on_error="skip", split="none")
    assert [(b.line, b.field) for b in res.rejected] == [
        (2, "productid"),
        (4, "rating"),
        (5, "timestamp"),
    ]
    assert "found 10.5" in res.rejected[0].reason
    assert res.rejected[0].raw == f"1,10.5,2,3,2,{T0 + 60}"
    assert res.report.rows_read == 6 and res.report.accepted == 3
    assert (res.path / "rejected.csv").is_file()


def test_malformed_files_are_one_clear_error(ciao, tmp_path):
    scipy.io.savemat(ciao / "rating_with_timestamp.mat", {"rating": np.ones((3, 4))})
    with pytest.raises(DataError, match=r"must be a numeric matrix with 5 or 6 columns"):
        read_source("ciao", [ciao])
    scipy.io.savemat(ciao / "rating_with_timestamp.mat", {"ratings": np.ones((3, 6))})
    with pytest.raises(DataError, match="expected a variable 'rating'; found ratings"):
        read_source("ciao", [ciao])
    (ciao / "rating_with_timestamp.mat").write_text("userid,productid\n1,2\n")
    with pytest.raises(DataError, match=r"cannot read as a MATLAB \(\.mat\) file"):
        read_source("ciao", [ciao])
    (ciao / "rating_with_timestamp.mat").unlink()
    (ciao / "catalog_ciao.txt").write_text("1 DVDs\nBooks\n")
    with pytest.raises(DataError, match=r"catalog_ciao\.txt, line 2: expected 'ID NAME'"):
        read_source("ciao", [ciao])
    with pytest.raises(DataError, match="not a Ciao dataset"):
        read_source("ciao", [ciao / "trustnetwork.mat"])
    other = tmp_path / "x.csv"
    other.write_text("a\n")
    with pytest.raises(DataError, match="not a Ciao file"):
        read_source("ciao", [other])


# ------------------------------------------------------------------------------ real dataset
def test_ciao_real_counts():
    root = shared_data("ciao")
    with tempfile.TemporaryDirectory() as tmp:
        res = import_dataset([root], f"{tmp}/ciao", format="ciao", split="cold-users")
        ds = Dataset.open(res.path)
        c = ds.manifest["counts"]
        assert (c["users"], c["items"], c["social_edges"]) == (7375, 105114, 111781)
        cl = ds.manifest["cleaning"]
        assert cl["rows_read"] == 284086 and cl["rejected"] == 0
        assert c["events"] == 284086 - cl["deduplicated"]
        assert ds.items["category"].nunique() == 28
        assert ds.events["timestamp"].min() >= 959_000_000
        e = ds.edges
        cold = set(e.loc[e.split == "test", "user"])
        assert len(cold) == 1475 and not cold & set(e.loc[e.split != "test", "user"])
