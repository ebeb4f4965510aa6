"""Source formats, on small hand-made files and on the real datasets in ../shared/data."""

import numpy as np
import pandas as pd
import pytest

from gemrec.data.import_edges import VALID_LAST_IN_ORDER
from gemrec.data.importer import import_dataset
from gemrec.data.readers import parse_columns, read_source
from gemrec.data.store import Dataset
from gemrec.errors import DataError, ParameterError
from tests.conftest import shared_data


def _pairs(path):
    out = set()
    for line in path.read_text().splitlines():
        parts = line.split()
        out.update((int(parts[0]), int(i)) for i in parts[1:])
    return out


# ------------------------------------------------------------------------------ small files
def test_parse_columns():
    assert parse_columns(["user_id=uid,item_id=sku", "timestamp=ts"]) == {
        "user_id": "uid",
        "item_id": "sku",
        "timestamp": "ts",
    }
    with pytest.raises(ParameterError, match="keys among"):
        parse_columns("uid=user_id")
    with pytest.raises(ParameterError, match="CANONICAL=SOURCE"):
        parse_columns("user_id")


def test_lightgcn_keeps_split_and_carves_valid_from_train(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1 2 3 4 5 6 7 8 9\n1 1 2\n2 3\n")
    (tmp_path / "test.txt").write_text("0 10\n1 3 4\n2 5\n")
    ds = Dataset.open(import_dataset([tmp_path], tmp_path / "ds", format="lightgcn", seed=0).path)
    e = ds.edges
    assert list(ds.user_ids) == ["0", "1", "2"] and list(ds.item_ids) == [str(i) for i in range(11)]
    got_test = set(
        zip(e.loc[e.split == "test", "user"], e.loc[e.split == "test", "item"], strict=True)
    )
    assert got_test == {(0, 10), (1, 3), (1, 4), (2, 5)}
    trv = e[e.split != "test"]
    assert set(zip(trv.user, trv.item, strict=True)) == _pairs(tmp_path / "train.txt")
    assert (
        e.split == "valid"
    ).sum() == 1 + 0 + 0  # round(0.1 * 10) for user 0; users 1, 2 too small
    assert ds.manifest["split"]["method"] == "predefined"
    assert not ds.has_events


def test_lightgcn_lines_in_their_own_order_keep_it_for_the_models(tmp_path):
    # lines not sorted by item: each user's order is kept as the edges' source order (what
    # graphfilter's recency reads where there are no times); the validation split stays random
    rng = np.random.default_rng(0)
    lines = {u: [str(i) for i in rng.permutation(40)[:20]] for u in range(30)}
    (tmp_path / "train.txt").write_text("".join(f"{u} {' '.join(v)}\n" for u, v in lines.items()))
    (tmp_path / "test.txt").write_text("".join(f"{u} 99\n" for u in lines))
    ds = Dataset.open(
        import_dataset([tmp_path], tmp_path / "ds", format="lightgcn", valid_fraction=0.2).path
    )
    assert ds.manifest["split"]["valid_from"] == "random train edges per user"
    train = ds.interactions()  # train + valid
    assert train.timestamps is None and train.order is not None
    for u, items in lines.items():
        row = ds.user_index[str(u)]
        cols = [ds.item_index[i] for i in items]
        # positions in the file: increasing along each line
        assert np.all(np.diff(train.order[row, cols].toarray().ravel()) > 0)
    assert ds.interactions("test").order is not None

    # the same lines sorted by item carry no order
    (tmp_path / "train.txt").write_text(
        "".join(f"{u} {' '.join(sorted(v, key=int))}\n" for u, v in lines.items())
    )
    ds = Dataset.open(
        import_dataset([tmp_path], tmp_path / "sorted", format="lightgcn", valid_fraction=0.2).path
    )
    assert "source_order" not in ds.edges.columns and ds.interactions().order is None


def test_lightgcn_needs_both_files(tmp_path):
    (tmp_path / "train.txt").write_text("0 1\n")
    with pytest.raises(DataError, match=r"train\.txt and test\.txt"):
        read_source("lightgcn", [tmp_path])


def test_taobao_behaviours_and_categories(tmp_path):
    p = tmp_path / "UserBehavior.csv"
    p.write_text(
        "1,100,7,pv,1511544070\n1,100,7,buy,1511544080\n2,200,8,fav,1511544090\n2,100,7,cart,1511544099\n2,300,9,like,1511544100\n"
    )
    res = import_dataset([p], tmp_path / "ds", format="taobao", on_error="skip", split="none")
    ds = Dataset.open(res.path)
    assert sorted(set(ds.events["event_type"])) == ["cart", "fav", "purchase", "view"]
    assert (
        res.report.rejected == 1
        and "event_type" in res.rejected[0].reason
        and res.rejected[0].line == 5
    )
    assert dict(zip(ds.items.item_id, ds.items.category, strict=True)) == {"100": "7", "200": "8"}
    e = ds.edges.set_index(["user", "item"])
    assert e.loc[(0, 0), "weight"] == 6.0 and e.loc[(0, 0), "n_purchase"] == 1


def test_lastfm_play_counts_friends_and_names(tmp_path):
    (tmp_path / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n2\t51\t100\n2\t52\t7\n3\t51\t1\n"
    )
    (tmp_path / "user_friends.dat").write_text("userID\tfriendID\n2\t3\n3\t2\n3\t99\n")
    (tmp_path / "artists.dat").write_text(
        'id\tname\turl\tpictureURL\n51\tMALICE "MIZER"\thttp://a\t\n52\tDiary\thttp://b\t\n'
    )
    ds = Dataset.open(
        import_dataset(
            [tmp_path], tmp_path / "ds", format="lastfm", split="none", valid_fraction=0
        ).path
    )
    w = dict(
        zip(
            zip(ds.user_ids[ds.edges.user], ds.item_ids[ds.edges.item], strict=True),
            ds.edges.weight,
            strict=True,
        )
    )
    assert w == {("2", "51"): 100.0, ("2", "52"): 7.0, ("3", "51"): 1.0}
    assert ds.items.set_index("item_id").loc["51", "title"] == 'MALICE "MIZER"'
    assert ds.social.nnz == 2 and ds.manifest["cleaning"]["social_unknown_users"] == 1


def test_movielens_100k_layout(tmp_path):
    (tmp_path / "u.data").write_text(
        "1\t10\t5\t881250949\n2\t10\t3\t881250950\n1\t20\t1\t881250951\n"
    )
    flags = "|".join(["0"] * 19)
    (tmp_path / "u.item").write_bytes(
        f"10|Caf\xe9 (1995)|01-Jan-1995||http://x|{flags[:-1]}1\n20|B (1996)|||http://y|1|{flags[2:]}\n".encode(
            "latin-1"
        )
    )
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    ds = Dataset.open(
        import_dataset([tmp_path], tmp_path / "ds", format="movielens", split="none").path
    )
    items = ds.items.set_index("item_id")
    assert items.loc["10", "title"] == "Café (1995)"
    assert items.loc["10", "category"] == "genre_18" and items.loc["20", "category"] == "genre_0"
    assert ds.users.set_index("user_id").loc["2", "age"] == 53.0
    assert sorted(ds.events["value"]) == [1.0, 3.0, 5.0]


def test_movielens_1m_dat_files(tmp_path):
    (tmp_path / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978300275\n"
    )
    (tmp_path / "movies.dat").write_bytes(
        "1193::One Flew Over (1975)::Drama\n661::James (1996)::Animation|Children's\n".encode(
            "latin-1"
        )
    )
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = Dataset.open(
        import_dataset([tmp_path], tmp_path / "ds", format="movielens", split="none").path
    )
    assert ds.n_users == 2 and ds.n_items == 2 and len(ds.edges) == 3
    assert ds.items.set_index("item_id").loc["661", "category"] == "Animation"
    assert ds.users.set_index("user_id").loc["2", "zip"] == "70072"


def test_movielens_not_a_directory_of_it(tmp_path):
    (tmp_path / "x.txt").write_text("hi\n")
    with pytest.raises(DataError, match="not a MovieLens directory"):
        read_source("movielens", [tmp_path])


# ------------------------------------------------------------------------------ real datasets
def test_gowalla_import_counts_and_ids():
    root = shared_data("gowalla")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = import_dataset([root], f"{tmp}/gowalla", format="lightgcn")
        ds = Dataset.open(res.path)
        c = ds.manifest["counts"]
        assert (c["users"], c["items"]) == (29858, 40981)
        assert c["splits"]["train"] + c["splits"]["valid"] == 810128
        assert c["splits"]["test"] == 217242
        assert c["splits"]["valid"] > 0.09 * 810128
        # internal ids are the benchmark's 0-based ids, so published protocols apply unchanged
        assert (ds.user_ids == np.arange(29858).astype(str)).all()
        assert (ds.item_ids == np.arange(40981).astype(str)).all()
        test = ds.interactions("test").matrix
        assert test.nnz == 217242
        tu, ti = test.nonzero()
        assert set(zip(tu[:1000].tolist(), ti[:1000].tolist(), strict=True)) <= _pairs(
            root / "test.txt"
        )
        assert ds.interactions("train", "valid").matrix.nnz == 810128


def test_movielens_100k_real():
    root = shared_data("movielens-100k")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ds = Dataset.open(import_dataset([root], f"{tmp}/ml", format="movielens").path)
        assert (ds.n_users, ds.n_items, len(ds.edges), len(ds.events)) == (
            943,
            1682,
            100000,
            100000,
        )
        assert ds.items["category"].notna().all()
        assert ds.users.columns.tolist() == [
            "user",
            "user_id",
            "age",
            "gender",
            "occupation",
            "zip",
        ]
        assert ds.manifest["counts"]["splits"]["test"] == 20000


def test_movielens_1m_falls_back_to_the_implicit_split():
    root = shared_data("movielens-1m")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ds = Dataset.open(import_dataset([root], f"{tmp}/ml1m", format="movielens").path)
        c = ds.manifest["counts"]
        assert (c["users"], c["items"], c["edges"]) == (6022, 3043, 895699)
        assert c["splits"]["test"] == 99455
        assert "metadata not attached" in ds.manifest["notes"][0]


def test_taobao_sample_real():
    root = shared_data("taobao-userbehavior-sample")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = import_dataset(
            [root / "UserBehavior_prefix.csv"], f"{tmp}/tb", format="taobao", split="temporal"
        )
        ds = Dataset.open(res.path)
        assert (ds.n_users, ds.n_items, len(ds.events)) == (815, 55368, 84475)
        counts = ds.events["event_type"].value_counts().to_dict()
        assert counts == {"view": 75872, "cart": 4497, "fav": 2356, "purchase": 1750}
        assert ds.items["category"].nunique() == 2914
        e = ds.edges
        assert (
            e[e.split == "test"]["first_timestamp"].min()
            > e[e.split != "test"]["last_timestamp"].max()
        )
        assert e["n_events"].sum() + ds.manifest["cleaning"]["held_out_pairs_already_in_train"] > 0


def test_lastfm_real():
    root = shared_data("lastfm-2k")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ds = Dataset.open(import_dataset([root], f"{tmp}/lfm", format="lastfm").path)
        assert (ds.n_users, len(ds.edges)) == (1892, 92834)
        assert ds.social.nnz == 25434
        assert (
            ds.edges["weight"].astype(np.float64).sum()
            == pd.read_csv(root / "user_artists.dat", sep="\t")["weight"].sum()
        )
        assert ds.items["title"].notna().sum() == ds.n_items


def test_format_readers_report_bad_rows_with_lines(tmp_path):
    tb = tmp_path / "tb.csv"
    tb.write_text("1,100,7,pv,1511544070\n1,100,7,pv\n2,200,8,buy,later\n")
    with pytest.raises(DataError, match=r"tb\.csv, line 2: expected 5 fields, found 4"):
        import_dataset([tb], tmp_path / "ds", format="taobao")
    res = import_dataset([tb], tmp_path / "ds", format="taobao", on_error="skip", split="none")
    assert [(b.line, b.field) for b in res.rejected] == [(2, None), (3, "timestamp")]
    assert res.report.accepted == 1

    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "u.data").write_text("1\t10\t5\t881250949\n2\t10\tfive\t881250950\n")
    with pytest.raises(
        DataError, match=r"u\.data, line 2, field 'value': expected a finite number"
    ):
        import_dataset([ml], tmp_path / "ds2", format="movielens")

    lf = tmp_path / "lf"
    lf.mkdir()
    (lf / "user_artists.dat").write_text("user\tartist\tplays\n2\t51\t100\n")
    with pytest.raises(DataError, match=r"missing column\(s\) user_id, item_id, value"):
        import_dataset([lf], tmp_path / "ds3", format="lastfm")
    lg = tmp_path / "lg"
    lg.mkdir()
    (lg / "train.txt").write_bytes(b"0 1 2\n1 \xff\xfe\n")
    (lg / "test.txt").write_text("0 3\n")
    with pytest.raises(DataError, match=r"train\.txt: not valid UTF-8 \(byte 0xff at line 2"):
        import_dataset([lg], tmp_path / "ds4", format="lightgcn")
    assert not any((tmp_path / d).exists() for d in ("ds2", "ds3", "ds4"))


def test_min_value_turns_ratings_into_positives(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t5\t1\n1\t20\t3\t2\n2\t10\t4\t3\n2\t30\t1\t4\n")
    res = import_dataset([tmp_path], tmp_path / "ds", format="movielens", min_value=4, split="none")
    ds = Dataset.open(res.path)
    pairs = set(zip(ds.user_ids[ds.edges.user], ds.item_ids[ds.edges.item], strict=True))
    assert pairs == {("1", "10"), ("2", "10")}
    assert ds.manifest["cleaning"]["value_filtered_events"] == 2
    assert ds.manifest["min_value"] == 4
    assert len(ds.events) == 2


def test_valid_latest_takes_the_last_items_of_lines_in_their_own_order(tmp_path):
    rng = np.random.default_rng(1)
    lines = {u: [str(i) for i in rng.permutation(40)[:20]] for u in range(30)}
    (tmp_path / "train.txt").write_text("".join(f"{u} {' '.join(v)}\n" for u, v in lines.items()))
    (tmp_path / "test.txt").write_text("".join(f"{u} 99\n" for u in lines))
    want = {(str(u), i) for u, v in lines.items() for i in v[-4:]}
    for seed in (0, 1):  # no random choice
        ds = Dataset.open(
            import_dataset(
                [tmp_path],
                tmp_path / f"ds{seed}",
                format="lightgcn",
                valid_fraction=0.2,
                valid_latest=True,
                seed=seed,
            ).path
        )
        e = ds.edges[ds.edges.split == "valid"]
        got = {(ds.user_ids[u], ds.item_ids[i]) for u, i in zip(e.user, e.item, strict=True)}
        assert got == want
        assert ds.manifest["split"]["valid_from"] == VALID_LAST_IN_ORDER
    # lines sorted by item carry no order to take the latest from
    (tmp_path / "train.txt").write_text(
        "".join(f"{u} {' '.join(sorted(v, key=int))}\n" for u, v in lines.items())
    )
    with pytest.raises(DataError, match="--valid-latest needs timestamps"):
        import_dataset([tmp_path], tmp_path / "sorted", format="lightgcn", valid_latest=True)
