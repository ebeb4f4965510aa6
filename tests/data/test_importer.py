"""End-to-end ``gemrec import`` on generic event logs: cleaning, bad input, splits, manifest."""

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.cli import main
from gemrec.data.importer import import_dataset
from gemrec.data.store import Dataset
from gemrec.errors import DataError, ParameterError

HEADER = "user_id,item_id,event_type,timestamp,value,event_id"
#: the four required columns only
COLUMNS = "user_id,item_id,event_type,timestamp"


def _good_rows(n_users=12, n_items=15, per_user=8, seed=0):
    rng = np.random.default_rng(seed)
    types = ["view", "click", "fav", "cart", "purchase"]
    rows = []
    for u in range(n_users):
        for k in range(per_user):
            rows.append(
                [
                    f"u{u}",
                    f"i{rng.integers(n_items)}",
                    types[rng.integers(5)],
                    str(1_600_000_000 + u * 1000 + k * 10),
                    "",
                    "",
                ]
            )
    return rows


def _csv(rows, header=HEADER):
    return header + "\n" + "\n".join(",".join(r) for r in rows) + "\n"


def _run(capsys, *argv):
    code = main(["import", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _run_events(capsys, source, output, *options):
    """``gemrec import SOURCE --format events -o OUTPUT [OPTIONS]``: (exit code, stdout, stderr)"""
    return _run(capsys, source, "--format", "events", "-o", output, *options)


def _write(tmp_path, text, name="e.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _import(tmp_path, text, **options):
    """Import ``text`` (an events CSV) through the API into ``tmp_path / "ds"`` and open it."""
    return Dataset.open(import_dataset([_write(tmp_path, text)], tmp_path / "ds", **options).path)


def _edges_by_raw_pair(ds):
    """The edges table indexed by raw (user_id, item_id)."""
    return ds.edges.assign(
        u=lambda d: ds.user_ids[d.user], i=lambda d: ds.item_ids[d.item]
    ).set_index(["u", "i"])


def _events_as_raw(ds):
    ev = ds.events
    return sorted(
        zip(
            ds.user_ids[ev["user"]],
            ds.item_ids[ev["item"]],
            ev["event_type"],
            ev["timestamp"].astype(int),
            strict=True,
        )
    )


# --------------------------------------------------------------------------- happy paths
def test_csv_parquet_jsonl_give_the_same_dataset(tmp_path, capsys):
    rows = _good_rows()
    df = pd.DataFrame(rows, columns=HEADER.split(","))
    (tmp_path / "e.csv").write_text(_csv(rows))
    df.to_parquet(tmp_path / "e.parquet")
    with (tmp_path / "e.jsonl").open("w") as fh:
        for r in rows:
            fh.write(
                json.dumps(
                    {"user_id": r[0], "item_id": r[1], "event_type": r[2], "timestamp": int(r[3])}
                )
                + "\n"
            )
    fps = []
    for name in ("e.csv", "e.parquet", "e.jsonl"):
        code, out, err = _run(
            capsys, tmp_path / name, "--format", "events", "-o", tmp_path / f"ds_{name}"
        )
        assert code == 0, err
        assert out.startswith("imported events: 12 users")
        ds = Dataset.open(tmp_path / f"ds_{name}")
        assert _events_as_raw(ds) == sorted((r[0], r[1], r[2], int(r[3])) for r in rows)
        fps.append(ds.manifest["content_sha256"])
    assert len(set(fps)) == 1


def test_edges_aggregate_events_with_weights_and_counts(tmp_path):
    rows = [
        ["a", "x", "view", "10"],
        ["a", "x", "view", "20"],
        ["a", "x", "purchase", "30"],
        ["a", "y", "cart", "5"],
        ["b", "x", "click", "7"],
    ]
    ds = _import(
        tmp_path, _csv(rows, COLUMNS), split="none", valid_fraction=0, weights="purchase=10"
    )
    e = _edges_by_raw_pair(ds)
    assert e.loc[("a", "x"), "weight"] == 12.0
    assert (
        e.loc[("a", "x"), "n_view"],
        e.loc[("a", "x"), "n_purchase"],
        e.loc[("a", "x"), "n_events"],
    ) == (2, 1, 3)
    assert e.loc[("a", "x"), "last_timestamp"] == 30.0
    assert e.loc[("a", "y"), "weight"] == 4.0 and e.loc[("b", "x"), "weight"] == 2.0
    assert set(ds.edges["split"]) == {"train"}
    assert ds.manifest["event_weights"]["purchase"] == 10.0
    m = ds.interactions("train", "valid").matrix
    assert m.sum() == pytest.approx(18.0)


def test_time_decay_halves_weight_per_half_life(tmp_path):
    day = 86400
    rows = [
        ["a", "x", "view", str(10 * day)],
        ["a", "y", "view", str(8 * day)],
        ["b", "x", "view", str(6 * day)],
    ]
    ds = _import(tmp_path, _csv(rows, COLUMNS), split="none", valid_fraction=0, half_life_days=2)
    w = dict(
        zip(
            zip(ds.user_ids[ds.edges.user], ds.item_ids[ds.edges.item], strict=True),
            ds.edges.weight,
            strict=True,
        )
    )
    assert w[("a", "x")] == pytest.approx(1.0)
    assert w[("a", "y")] == pytest.approx(0.5)
    assert w[("b", "x")] == pytest.approx(0.25)
    assert ds.manifest["time_decay"]["half_life_days"] == 2


def test_columns_mapping_and_iso_ms_timestamps(tmp_path, capsys):
    p = _write(
        tmp_path,
        "uid,sku,action,ts\n1,A,view,2020-01-01T00:00:00Z\n1,B,purchase,1577836800000\n2,A,cart,1577836800\n",
        "log.csv",
    )
    code, _out, err = _run_events(
        capsys,
        p,
        tmp_path / "ds",
        "--columns",
        "user_id=uid,item_id=sku",
        "--columns",
        "event_type=action,timestamp=ts",
        "--split",
        "none",
        "--valid-fraction",
        "0",
    )
    assert code == 0, err
    ds = Dataset.open(tmp_path / "ds")
    assert set(ds.events["timestamp"]) == {1577836800.0}
    assert list(ds.item_ids) == ["A", "B"]


def test_ids_keep_leading_zeros_and_whitespace_is_stripped(tmp_path):
    text = f"{COLUMNS}\n 007 ,x,view,1\n7,x,view,2\n007,x ,view,3\n"
    ds = _import(tmp_path, text, split="none", valid_fraction=0)
    assert sorted(ds.user_ids) == ["007", "7"]
    assert list(ds.item_ids) == ["x"]
    assert ds.edges["n_events"].sum() == 3


def test_numeric_ids_are_ordered_numerically(tmp_path):
    ds = _import(tmp_path, f"{COLUMNS}\n10,3,view,1\n9,20,view,2\n100,1,view,3\n", split="none")
    assert list(ds.user_ids) == ["9", "10", "100"]
    assert list(ds.item_ids) == ["1", "3", "20"]


def test_duplicates_and_event_ids_are_counted(tmp_path, capsys):
    p = _write(
        tmp_path,
        f"{COLUMNS},event_id\n"
        "a,x,view,1,e1\n"
        "a,x,view,1,e1\n"  # exact duplicate
        "a,y,view,2,e1\n"  # repeated event id
        "a,y,view,3,e2\n"
        "b,x,view,4,\n"
        "b,x,view,4,\n",  # exact duplicate without id
    )
    code, out, err = _run_events(capsys, p, tmp_path / "ds", "--on-error", "skip")
    assert code == 0, err
    assert "rows read 6 / accepted 3 / rejected 0 / deduplicated 3" in out
    ds = Dataset.open(tmp_path / "ds")
    c = ds.manifest["cleaning"]
    assert (c["duplicates_exact"], c["duplicates_event_id"]) == (2, 1)
    assert len(ds.events) == 3
    assert not (tmp_path / "ds" / "rejected.csv").exists()


def test_kcore_filter_reaches_a_fixed_point(tmp_path):
    rows = [
        ["u1", "a", "view", "1"],
        ["u1", "b", "view", "2"],
        ["u2", "a", "view", "3"],
        ["u2", "b", "view", "4"],
        ["u3", "a", "view", "5"],
        ["u3", "c", "view", "6"],
    ]
    # item c has 1 user -> removed; then u3 has 1 item -> removed; a and b keep 2 users each
    ds = _import(
        tmp_path,
        _csv(rows, COLUMNS),
        min_user_interactions=2,
        min_item_interactions=2,
        split="none",
    )
    assert sorted(ds.user_ids) == ["u1", "u2"]
    assert sorted(ds.item_ids) == ["a", "b"]
    assert ds.manifest["cleaning"]["kcore_removed_events"] == 2
    assert ds.manifest["cleaning"]["kcore_rounds"] == 3


def test_side_tables_attach_metadata_and_social(tmp_path):
    p = _write(tmp_path, _csv(_good_rows(n_users=3, n_items=4), HEADER))
    (tmp_path / "items.csv").write_text(
        "item_id,category,brand,price,title\ni0,shoes,acme,9.5,Red\ni1,hats,acme,12,Cap\nzz,x,y,1,none\n"
    )
    (tmp_path / "users.jsonl").write_text('{"user_id": "u0", "country": "DE"}\n')
    pd.DataFrame(
        {"user_id": ["u0", "u1", "u0", "ghost"], "friend_id": ["u1", "u0", "u2", "u0"]}
    ).to_parquet(tmp_path / "f.parquet")
    res = import_dataset(
        [p],
        tmp_path / "ds",
        items=tmp_path / "items.csv",
        users=tmp_path / "users.jsonl",
        social=tmp_path / "f.parquet",
    )
    ds = Dataset.open(res.path)
    items = ds.items.set_index("item_id")
    assert items.loc["i0", "category"] == "shoes" and items.loc["i1", "price"] == 12.0
    assert ds.items["price"].dtype == np.float64
    assert "zz" not in items.index and ds.manifest["cleaning"]["items_metadata_unmatched"] == 1
    assert ds.users.set_index("user_id").loc["u0", "country"] == "DE"
    assert ds.social.nnz == 3 and ds.manifest["cleaning"]["social_unknown_users"] == 1
    cats = ds.item_categories()
    assert cats is not None and len(cats) == ds.n_items
    assert len(ds.manifest["sources"]) == 4


def test_manifest_fingerprint_is_reproducible_and_sensitive(tmp_path):
    p = _write(tmp_path, _csv(_good_rows(), HEADER))
    a = import_dataset([p], tmp_path / "a", seed=3).manifest
    b = import_dataset([p], tmp_path / "b", seed=3).manifest
    c = import_dataset([p], tmp_path / "c", seed=4).manifest
    assert a["fingerprint"] == b["fingerprint"] != c["fingerprint"]
    assert pd.read_parquet(tmp_path / "a/edges.parquet").equals(
        pd.read_parquet(tmp_path / "b/edges.parquet")
    )
    for key in (
        "counts",
        "schema",
        "event_weights",
        "cleaning",
        "split",
        "sources",
        "fingerprint",
        "id_maps",
    ):
        assert key in a
    src = a["sources"][0]
    import hashlib

    assert (
        src["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
        and src["size"] == p.stat().st_size
    )
    cl = a["cleaning"]
    assert cl["rows_read"] == cl["accepted"] + cl["rejected"] + cl["deduplicated"] == 96


def test_row_order_does_not_change_the_dataset(tmp_path):
    rows = _good_rows()
    (tmp_path / "a.csv").write_text(_csv(rows))
    (tmp_path / "b.csv").write_text(_csv(rows[::-1]))
    a = import_dataset([tmp_path / "a.csv"], tmp_path / "da", split="temporal")
    b = import_dataset([tmp_path / "b.csv"], tmp_path / "db", split="temporal")
    assert a.manifest["content_sha256"] == b.manifest["content_sha256"]


# --------------------------------------------------------------------------- splits end to end
@pytest.mark.parametrize("method", ["random", "temporal", "leave-last", "none"])
def test_every_pair_in_exactly_one_split_and_valid_from_train(tmp_path, method):
    ds = _import(tmp_path, _csv(_good_rows(n_users=30, per_user=12)), split=method, seed=1)
    e = ds.edges
    assert not e.duplicated(["user", "item"]).any()
    assert set(e["split"]) <= {"train", "valid", "test"}
    assert (e["split"] == "valid").any()
    # every user with a held-out edge still has train edges (a global time cut may leave
    # users that only appear after the cut: counted in the manifest)
    tr = set(e.loc[e.split == "train", "user"])
    cold = set(e.loc[e.split != "train", "user"]) - tr
    assert len(cold) == ds.manifest["split"]["held_out_users_without_train"]
    if method != "temporal":
        assert not cold
    if method == "temporal":
        test, rest = e[e.split == "test"], e[e.split != "test"]
        assert test["first_timestamp"].min() > rest["last_timestamp"].max()
        assert test["first_timestamp"].min() > ds.manifest["split"]["cut"]
    if method == "leave-last":
        assert (e.loc[e.split == "test"].groupby("user").size() == 1).all()
    if method == "random":
        assert ds.manifest["split"]["test_fraction"] == 0.2


def _shop_files(tmp_path):
    from gemrec.data.synthetic import generate_shop, write_shop

    shop = generate_shop(n_users=120, n_items=80, n_categories=5, seed=3)
    return write_shop(shop, tmp_path / "shop")


def _import_shop(paths, output, **options):
    return Dataset.open(
        import_dataset(
            [paths["events"]],
            output,
            items=paths["items"],
            users=paths["users"],
            social=paths["social"],
            **options,
        ).path
    )


def test_cold_items_keep_their_side_information_and_never_reach_train(tmp_path):
    paths = _shop_files(tmp_path)
    ds = _import_shop(paths, tmp_path / "ds", split="cold-items", test_fraction=0.25, seed=1)
    e = ds.edges
    cold = set(e.loc[e.split == "test", "item"])
    assert not cold & set(e.loc[e.split != "test", "item"])
    assert len(cold) == round(0.25 * ds.n_items)
    assert not (e.split == "valid").any()  # no validation share unless asked for
    # their metadata stays in the item table: a text or category model can still see them
    items = ds.items.set_index("item")
    assert items.loc[sorted(cold), ["category", "title"]].notna().all().all()
    split = ds.manifest["split"]
    assert split["method"] == "cold-items" and split["test_fraction"] == 0.25
    assert split["valid_fraction"] == 0.0 and split["cold"]["test"] == len(cold)
    # the same seed gives the same dataset, another seed other cold items
    again = _import_shop(paths, tmp_path / "again", split="cold-items", test_fraction=0.25, seed=1)
    assert again.manifest["fingerprint"] == ds.manifest["fingerprint"]
    other = _import_shop(paths, tmp_path / "other", split="cold-items", test_fraction=0.25, seed=2)
    assert set(other.edges.loc[other.edges.split == "test", "item"]) != cold


def test_cold_users_keep_attributes_and_ties_with_a_cold_validation_share(tmp_path):
    paths = _shop_files(tmp_path)
    ds = _import_shop(
        paths, tmp_path / "ds", split="cold-users", test_fraction=0.2, valid_fraction=0.1
    )
    e = ds.edges
    test_users = set(e.loc[e.split == "test", "user"])
    valid_users = set(e.loc[e.split == "valid", "user"])
    train_users = set(e.loc[e.split == "train", "user"])
    assert not (test_users | valid_users) & train_users and not test_users & valid_users
    assert (len(test_users), len(valid_users)) == (round(0.2 * ds.n_users), round(0.1 * ds.n_users))
    assert ds.manifest["split"]["held_out_users_without_train"] == len(test_users | valid_users)
    assert ds.manifest["split"]["valid_from"] == "cold users"
    users = ds.users.set_index("user")
    assert users.loc[sorted(test_users), "country"].notna().all()
    social = ds.social
    assert sum(social[u].nnz + social[:, u].nnz for u in test_users) > 0  # ties kept


def test_cold_split_from_the_command_line_replaces_a_predefined_split(tmp_path, capsys):
    (tmp_path / "train.txt").write_text(
        "".join(f"{u} " + " ".join(map(str, range(u, u + 6))) + "\n" for u in range(8))
    )
    (tmp_path / "test.txt").write_text("".join(f"{u} {u + 6}\n" for u in range(8)))
    code, out, _ = _run(
        capsys,
        tmp_path,
        "--format",
        "lightgcn",
        "-o",
        tmp_path / "ds",
        "--split",
        "cold-items",
        "--test-fraction",
        "0.25",
        "--valid-fraction",
        "0.15",
    )
    assert code == 0 and "valid" in out
    ds = Dataset.open(tmp_path / "ds")
    cold = ds.manifest["split"]["cold"]
    assert cold == {"entity": "items", "test": 4, "valid": 2, "warm": 8}  # of 14 items
    with pytest.raises(ParameterError, match="below 1"):
        import_dataset(
            [tmp_path],
            tmp_path / "x",
            format="lightgcn",
            split="cold-users",
            test_fraction=0.5,
            valid_fraction=0.5,
        )


def test_temporal_split_drops_test_events_of_pairs_seen_in_train(tmp_path):
    rows = [
        ["a", "x", "view", "1"],
        ["a", "x", "view", "100"],
        ["a", "y", "view", "101"],
        ["b", "x", "view", "2"],
        ["b", "z", "view", "3"],
    ]
    ds = _import(tmp_path, _csv(rows, COLUMNS), split="temporal", test_after="50", valid_fraction=0)
    e = _edges_by_raw_pair(ds)
    assert e.loc[("a", "x"), "split"] == "train" and e.loc[("a", "x"), "n_events"] == 1
    assert e.loc[("a", "y"), "split"] == "test"
    assert ds.manifest["cleaning"]["held_out_pairs_already_in_train"] == 1
    assert len(ds.events) == 5  # the event log keeps everything


def test_split_options_are_checked(tmp_path):
    p = _write(tmp_path, _csv(_good_rows(), HEADER))
    with pytest.raises(ParameterError, match="no predefined split"):
        import_dataset([p], tmp_path / "ds", split="predefined")
    with pytest.raises(ParameterError, match="--split"):
        import_dataset([p], tmp_path / "ds", split="sideways")
    with pytest.raises(ParameterError, match="test-after"):
        import_dataset([p], tmp_path / "ds", split="temporal", test_after="whenever")
    assert not (tmp_path / "ds").exists()


def test_refuses_to_overwrite_a_non_dataset_directory(tmp_path):
    p = _write(tmp_path, _csv(_good_rows(), HEADER))
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("...")
    with pytest.raises(ParameterError, match="-o"):
        import_dataset([p], tmp_path / "precious")
    assert (tmp_path / "precious" / "thesis.tex").exists()


# --------------------------------------------------------------------------- bad input
BAD = {
    "empty_user": (
        ["", "i1", "view", "1600000000", "", ""],
        "user_id",
        "expected a non-empty id; found an empty value",
    ),
    "empty_item": (
        ["u1", "", "view", "1600000000", "", ""],
        "item_id",
        "expected a non-empty id; found an empty value",
    ),
    "unknown_type": (
        ["u1", "i1", "teleport", "1600000000", "", ""],
        "event_type",
        "expected one of cart, click, fav, purchase, view; found 'teleport'",
    ),
    "bad_time": (
        ["u1", "i1", "view", "31/12/2020", "", ""],
        "timestamp",
        "expected epoch seconds, epoch milliseconds or an ISO 8601 date-time; found '31/12/2020'",
    ),
    "no_time": (["u1", "i1", "view", "", "", ""], "timestamp", "found an empty value"),
    "bad_value": (
        ["u1", "i1", "view", "1600000000", "lots", ""],
        "value",
        "expected a finite number (quantity, price or rating); found 'lots'",
    ),
    "too_few": (["u1", "i1", "view"], None, "expected 6 fields, found 3"),
    "too_many": (["u1", "i1", "view", "1", "", "", "extra"], None, "expected 6 fields, found 7"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_fail_mode_stops_at_first_bad_row_and_writes_nothing(tmp_path, capsys, kind):
    row, field, message = BAD[kind]
    good = _good_rows()
    rows = [*good[:5], row, *good[5:], row]
    p = _write(tmp_path, _csv(rows), "log.csv")
    code, _out, err = _run_events(capsys, p, tmp_path / "ds")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    where = f"{p}, line 7" + (f", field '{field}'" if field else "")
    assert where in err, err
    assert message in err
    assert not (tmp_path / "ds").exists()
    assert not any(x.name.startswith(".ds") for x in tmp_path.iterdir())


def test_failed_import_leaves_an_existing_dataset_untouched(tmp_path, capsys):
    p = _write(tmp_path, _csv(_good_rows()), "log.csv")
    assert _run_events(capsys, p, tmp_path / "ds")[0] == 0
    before = (tmp_path / "ds" / "manifest.json").read_bytes()
    p.write_text(_csv([*_good_rows(), BAD["bad_time"][0]]))
    assert _run_events(capsys, p, tmp_path / "ds")[0] == 2
    assert (tmp_path / "ds" / "manifest.json").read_bytes() == before


def test_skip_mode_accounts_for_every_row_and_loses_nothing(tmp_path, capsys):
    good = _good_rows(n_users=20, per_user=10, seed=5)
    dups = [good[3], good[17], good[17]]
    lines = [HEADER]
    expected_bad = {}
    rng = np.random.default_rng(1)
    bad_cycle = sorted(BAD)
    body = (
        [("good", r) for r in good]
        + [("dup", r) for r in dups]
        + [("bad", k) for k in bad_cycle * 3]
    )
    order = rng.permutation(len(body))
    for idx in order:
        kind, payload = body[idx]
        lines.append(",".join(BAD[payload][0] if kind == "bad" else payload))
        if kind == "bad":
            expected_bad[len(lines)] = payload
        if rng.random() < 0.1:
            lines.append("")  # blank lines are not rows
    p = _write(tmp_path, "\n".join(lines) + "\n", "log.csv")
    code, out, err = _run_events(capsys, p, tmp_path / "ds", "--on-error", "skip")
    assert code == 0, err
    n_rows = len(good) + len(dups) + len(expected_bad)
    # duplicated rows may collide with each other and with their originals: recount independently
    distinct = {tuple(r) for r in good + dups}
    n_dedup = len(good) + len(dups) - len(distinct)
    assert (
        f"rows read {n_rows} / accepted {len(distinct)} / rejected {len(expected_bad)} / "
        f"deduplicated {n_dedup}" in out
    )
    rej = pd.read_csv(tmp_path / "ds" / "rejected.csv", dtype=str, keep_default_na=False)
    assert list(rej.columns) == ["file", "line", "field", "reason", "raw"]
    assert dict(zip(rej["line"].astype(int), rej["raw"], strict=True)) == {
        line: ",".join(BAD[k][0]) for line, k in expected_bad.items()
    }
    for line, reason in zip(rej["line"].astype(int), rej["reason"], strict=True):
        assert BAD[expected_bad[line]][2] in reason
    ds = Dataset.open(tmp_path / "ds")
    got = _events_as_raw(ds)
    assert got == sorted((r[0], r[1], r[2], int(r[3])) for r in distinct)
    assert ds.edges["n_events"].sum() == len(distinct)  # nothing accepted is lost in edges either
    c = ds.manifest["cleaning"]
    assert (c["rows_read"], c["accepted"], c["rejected"], c["deduplicated"]) == (
        n_rows,
        len(distinct),
        len(expected_bad),
        n_dedup,
    )


def test_skip_mode_with_jsonl_broken_lines(tmp_path, capsys):
    p = _write(
        tmp_path,
        '{"user_id":"a","item_id":"x","event_type":"view","timestamp":1}\n{"user_id": "b",\n'
        '{"user_id":"b","item_id":"y","event_type":"buy","timestamp":2}\n'
        '{"user_id":"c","item_id":"y","event_type":"cart","timestamp":"2020-01-01"}\n',
        "log.jsonl",
    )
    code, out, err = _run_events(capsys, p, tmp_path / "ds", "--on-error", "skip")
    assert code == 0, err
    assert "rows read 4 / accepted 2 / rejected 2 / deduplicated 0" in out
    rej = pd.read_csv(tmp_path / "ds" / "rejected.csv")
    assert rej["line"].tolist() == [2, 3]
    code, out, err = _run_events(capsys, p, tmp_path / "ds2")
    assert code == 2 and "line 2" in err and "invalid JSON" in err


MALFORMED = {
    "wrong_encoding": (
        "log.csv",
        "user_id,item_id,event_type,timestamp\nJosé,x,view,1\n".encode("latin-1"),
        "not valid UTF-8 (byte 0xe9 at line 2",
    ),
    "missing_columns": (
        "log.csv",
        b"user_id,item_id,when\nu,i,1\n",
        "missing column(s) event_type, timestamp",
    ),
    "empty_file": ("log.csv", b"", "file is empty"),
    "header_only": ("log.csv", (HEADER + "\n").encode(), "header but no rows"),
    "binary_garbage": (
        "log.csv",
        bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "binary data",
    ),
    "huge_line": (
        "log.csv",
        (HEADER + "\n" + "a" * (1 << 21) + "\n").encode(),
        "line 2 is 2,097,152 bytes long",
    ),
    "not_parquet": ("log.parquet", b"user_id,item_id\n1,2\n", "not a Parquet file"),
    "jsonl_binary": ("log.jsonl", b"\x00\x01\x02", "binary data"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_malformed_files_give_one_clear_line(tmp_path, capsys, kind, mode):
    name, data, message = MALFORMED[kind]
    p = tmp_path / name
    p.write_bytes(data)
    code, _out, err = _run_events(capsys, p, tmp_path / "ds", "--on-error", mode)
    assert code == 2
    assert err.startswith("gemrec import: error: ") and err.count("\n") == 1
    assert message in err and str(p) in err
    assert not (tmp_path / "ds").exists()


def test_missing_source_and_bad_options(tmp_path, capsys):
    code, _, err = _run_events(capsys, tmp_path / "nope.csv", tmp_path / "ds")
    assert code == 2 and "no such file" in err
    p = _write(tmp_path, _csv(_good_rows()))
    code, _, err = _run_events(capsys, p, tmp_path / "ds", "--weights", "view")
    assert code == 2 and "--weights" in err
    code, _, err = _run_events(capsys, p, tmp_path / "ds", "--columns", "userid=uid")
    assert code == 2 and "--columns" in err


def test_all_rows_bad_is_an_error_even_in_skip_mode(tmp_path, capsys):
    p = _write(tmp_path, _csv([BAD["bad_time"][0], BAD["unknown_type"][0]]))
    code, _, err = _run_events(capsys, p, tmp_path / "ds", "--on-error", "skip")
    assert code == 2 and "no valid events" in err
    assert not (tmp_path / "ds").exists()


def test_rejected_csv_quotes_raw_rows_with_commas(tmp_path):
    p = _write(tmp_path, f'{COLUMNS}\na,x,view,1\n"b,1",x,nope,2\n')
    res = import_dataset([p], tmp_path / "ds", on_error="skip")
    rows = list(csv.reader(io.StringIO((tmp_path / "ds" / "rejected.csv").read_text())))
    assert rows[1][1] == "3" and rows[1][4] == '"b,1",x,nope,2'
    assert res.report.rejected == 1


def test_api_raises_dataerror_for_bad_rows(tmp_path):
    p = _write(tmp_path, _csv([*_good_rows(), BAD["empty_item"][0]]))
    with pytest.raises(DataError) as exc:
        import_dataset([p], tmp_path / "ds")
    assert exc.value.line == 98 and exc.value.field == "item_id"


def test_side_table_errors_are_reported_like_event_errors(tmp_path, capsys):
    p = _write(tmp_path, _csv(_good_rows(n_users=3, n_items=4)))
    items = tmp_path / "items.csv"
    items.write_text("sku,category\ni0,shoes\n")
    code, _, err = _run_events(capsys, p, tmp_path / "ds", "--items", items)
    assert code == 2 and "missing column(s) item_id for --items" in err and str(items) in err
    items.write_text("item_id,category\ni0,shoes\n ,hats\ni1,socks\n")
    code, _, err = _run_events(capsys, p, tmp_path / "ds", "--items", items)
    assert code == 2 and f"{items}, line 3, field 'item_id': expected a non-empty id" in err
    assert not (tmp_path / "ds").exists()
    code, _out, err = _run_events(
        capsys,
        p,
        tmp_path / "ds",
        "--items",
        items,
        "--on-error",
        "skip",
    )
    assert code == 0, err
    ds = Dataset.open(tmp_path / "ds")
    assert ds.manifest["cleaning"]["items_rejected"] == 1
    assert ds.items.set_index("item_id").loc["i1", "category"] == "socks"
    rej = pd.read_csv(tmp_path / "ds" / "rejected.csv")
    assert rej["file"].tolist() == [str(items)] and rej["line"].tolist() == [3]


def test_columns_mapping_replaces_a_same_named_column(tmp_path):
    text = "user_id,customer,item_id,event_type,timestamp\nx,c1,i,view,1\ny,c2,i,view,2\n"
    ds = _import(tmp_path, text, columns="user_id=customer", split="none")
    assert sorted(ds.user_ids) == ["c1", "c2"]


event_rows = st.lists(
    st.tuples(
        st.integers(0, 5),
        st.integers(0, 6),
        st.sampled_from(["view", "cart", "purchase"]),
        st.integers(0, 30),
    ),
    min_size=2,
    max_size=60,
)


@settings(max_examples=15, deadline=None)
@given(event_rows, st.sampled_from(["random", "temporal", "leave-last"]), st.integers(0, 2))
def test_import_property_no_leak_and_one_split_per_pair(rows, method, seed):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = f"{tmp}/e.csv"
        with open(p, "w") as fh:
            fh.write(COLUMNS + "\n")
            fh.writelines(f"u{u},i{i},{t},{s}\n" for u, i, t, s in rows)
        res = import_dataset([p], f"{tmp}/ds", split=method, seed=seed, test_fraction=0.3)
        ds = Dataset.open(res.path)
        e = ds.edges
        assert not e.duplicated(["user", "item"]).any()
        assert len(ds.events) == len(set(rows))
        if method == "temporal":
            test, rest = e[e.split == "test"], e[e.split != "test"]
            if len(test) and len(rest):
                assert test["first_timestamp"].min() > rest["last_timestamp"].max()
            assert e["n_events"].sum() <= len(set(rows))
        else:
            assert e["n_events"].sum() == len(set(rows))
        again = import_dataset([p], f"{tmp}/ds2", split=method, seed=seed, test_fraction=0.3)
        assert again.manifest["fingerprint"] == res.manifest["fingerprint"]


def test_import_from_dataframes_matches_the_csv_import(tmp_path):
    rows = _good_rows()
    df = pd.DataFrame(rows, columns=HEADER.split(","))[
        ["user_id", "item_id", "event_type", "timestamp"]
    ]
    df["timestamp"] = pd.to_datetime(df["timestamp"].astype(int), unit="s")
    items = pd.DataFrame({"item_id": ["i0", "i1"], "category": ["a", "b"], "price": [1.5, 2.0]})
    social = pd.DataFrame({"user_id": ["u0"], "friend_id": ["u1"]})
    (tmp_path / "e.csv").write_text(_csv(rows))
    a = import_dataset([df], tmp_path / "a", items=items, social=social, split="temporal")
    b = import_dataset([tmp_path / "e.csv"], tmp_path / "b", split="temporal")
    assert a.manifest["content_sha256"] == b.manifest["content_sha256"]
    ds = Dataset.open(a.path)
    assert ds.items.set_index("item_id").loc["i1", "price"] == 2.0 and ds.social.nnz == 1
    assert a.manifest["sources"][0]["path"] == "<events DataFrame 0>"
    again = import_dataset([df], tmp_path / "c", items=items, social=social, split="temporal")
    assert again.manifest["fingerprint"] == a.manifest["fingerprint"]
    with pytest.raises(ParameterError, match="DataFrames"):
        import_dataset([df, tmp_path / "e.csv"], tmp_path / "d")
    bad = df.assign(event_type=["view"] * (len(df) - 1) + ["teleport"])
    with pytest.raises(DataError, match=r"<events DataFrame 0>, line 96, field 'event_type'"):
        import_dataset([bad], tmp_path / "d")


def test_interactions_carry_first_and_last_event_time_per_pair(tmp_path):
    """Each edge keeps its first and last event time (a time holdout needs both)."""
    rows = [
        ["u0", "i0", "view", "100", "", ""],
        ["u0", "i0", "purchase", "900", "", ""],
        ["u0", "i1", "view", "500", "", ""],
        ["u1", "i0", "view", "300", "", ""],
        ["u1", "i1", "cart", "700", "", ""],
        ["u1", "i1", "view", "200", "", ""],
    ]
    ds = _import(tmp_path, _csv(rows))
    inter = ds.interactions("train", "valid", "test")
    u, i = ds.user_index, ds.item_index
    first, last = inter.first_timestamps, inter.timestamps
    assert first is not None and last is not None
    assert first.nnz == last.nnz == inter.nnz == 4
    expect = {("u0", "i0"): (100, 900), ("u0", "i1"): (500, 500), ("u1", "i0"): (300, 300)}
    expect[("u1", "i1")] = (200, 700)
    for (user, item), (t0, t1) in expect.items():
        assert (first[u[user], i[item]], last[u[user], i[item]]) == (t0, t1)
