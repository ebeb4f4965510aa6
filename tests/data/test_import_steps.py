"""The import steps one by one, on tables small enough to check by hand."""

import numpy as np
import pandas as pd
import pytest

from gemrec.data.cleaning import CleaningReport
from gemrec.data.idmaps import IdMaps
from gemrec.data.import_clean import clean_side_table, filter_events
from gemrec.data.import_edges import (
    EDGE_COLUMNS,
    PART,
    SplitOptions,
    aggregate,
    split_edges,
    split_events,
)
from gemrec.data.import_output import OutputTables, output_tables, seal_manifest
from gemrec.data.tables import table_from_frame
from gemrec.errors import DataError


def _events(rows):
    """rows of (user_id, item_id, event_type, timestamp, value)"""
    f = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp", "value"])
    f["event_id"] = ""
    return f


def _options(method, **kw):
    base = dict(test_fraction=0.5, valid_fraction=0.5, leave_n=1, cut=None, seed=0)
    return SplitOptions(method=method, **{**base, **kw})


# ------------------------------------------------------------------ cleaning
def test_side_table_rows_with_an_empty_key_are_rejected_and_repeats_dropped():
    table = table_from_frame(
        pd.DataFrame({"item_id": [" i1", "", "i2", "i1"], "brand": ["a", "b", "c", "d"]}), "items"
    )
    rejected, report = [], CleaningReport()
    out = clean_side_table(table, ("item_id",), "skip", rejected, report, "items")
    assert out.to_dict("list") == {"item_id": ["i1", "i2"], "brand": ["a", "c"]}
    assert [(b.line, b.field) for b in rejected] == [(2, "item_id")]
    assert report.extra == {"items_rejected": 1, "items_duplicates": 1}


def test_side_table_with_an_empty_key_fails_at_its_line():
    table = table_from_frame(pd.DataFrame({"item_id": ["i1", " "]}), "items.csv")
    with pytest.raises(DataError, match=r"items.csv, line 2, field 'item_id'"):
        clean_side_table(table, ("item_id",), "fail", [], CleaningReport(), "items")


def test_min_value_keeps_events_that_reach_it_and_drops_those_without_a_value():
    events = _events(
        [("u", "a", "rating", 1.0, 5.0), ("u", "b", "rating", 2.0, 3.0), ("u", "c", "r", 3, np.nan)]
    )
    report = CleaningReport()
    kept = filter_events(events, min_value=4, min_user=0, min_item=0, report=report)
    assert kept["item_id"].tolist() == ["a"]
    assert report.extra["value_filtered_events"] == 2


def test_kcore_filter_counts_what_it_removes_and_refuses_to_remove_everything():
    # u1 has two items, u2 one: a 2-core on users keeps u1 only
    events = _events([("u1", "a", "v", 1, 1), ("u1", "b", "v", 2, 1), ("u2", "a", "v", 3, 1)])
    report = CleaningReport()
    kept = filter_events(events, min_value=None, min_user=2, min_item=0, report=report)
    assert kept["user_id"].tolist() == ["u1", "u1"]
    assert report.kcore_removed_events == 1
    with pytest.raises(DataError, match="k-core filter"):
        filter_events(events, min_value=None, min_user=3, min_item=0, report=CleaningReport())


# ------------------------------------------------------------------ edges and splits
def test_a_pair_in_train_and_test_stays_in_train_only():
    events = _events([("u", "a", "view", 1.0, 1), ("u", "a", "view", 9.0, 1)])
    parts = np.array([PART["train"], PART["test"]])
    report = CleaningReport()
    edges = aggregate(events, IdMaps.from_events(events), parts, np.ones(2), ["view"], report)
    assert edges[["user", "item", "part"]].to_numpy().tolist() == [[0, 0, PART["train"]]]
    assert report.extra["held_out_pairs_already_in_train"] == 1


def test_temporal_split_labels_events_after_the_cut_as_test():
    events = _events([("u", "a", "v", float(t), 1) for t in range(4)])
    # strictly after the cut
    parts, info = split_events(events, _options("temporal", cut=1.0))
    assert parts.tolist() == [PART["train"]] * 2 + [PART["test"]] * 2
    assert info["cut"] == 1.0 and info["cut_iso"] == "1970-01-01T00:00:01+00:00"


def _edges_of(n_users, per_user):
    events = _events(
        [
            (f"u{u}", f"i{k}", "v", float(10 * u + k), 1)
            for u in range(n_users)
            for k in range(per_user)
        ]
    )
    ids = IdMaps.from_events(events)
    parts = np.zeros(len(events), dtype=np.int64)
    return aggregate(events, ids, parts, np.ones(len(events)), ["v"], CleaningReport()), ids


def test_leave_last_holds_out_each_users_latest_edge_and_carves_valid_by_time():
    edges, ids = _edges_of(3, 4)
    options = _options("leave-last", valid_fraction=0.25)  # one of the three left in train
    out, part, info = split_edges(edges, ids.n_users, options, {})
    assert list(out.columns[: len(EDGE_COLUMNS)]) == list(EDGE_COLUMNS)
    assert (out["split"].map(PART).to_numpy() == part).all()
    for _, rows in out.groupby("user"):
        order = rows.sort_values("last_timestamp")["split"].tolist()
        assert order[-1] == "test" and order[-2] == "valid" and set(order[:-2]) == {"train"}
    assert info == {
        "leave_n": 1,
        "valid_from": "most recent train edges per user",
        "held_out_users_without_train": 0,
    }


def test_random_split_keeps_a_valid_part_given_by_the_source():
    edges, ids = _edges_of(2, 4)
    edges.loc[0, "part"] = PART["valid"]
    out, part, info = split_edges(edges, ids.n_users, _options("random"), {"method": "random"})
    assert (part == PART["valid"]).sum() == 1 and out.loc[0, "split"] == "valid"
    assert (part == PART["test"]).sum() == 4  # half of each user's 4 edges
    assert info["valid_from"] == "source" and info["test_fraction"] == 0.5


def test_leave_last_without_timestamps_is_an_error():
    edges, ids = _edges_of(2, 2)
    edges["last_timestamp"] = np.nan
    with pytest.raises(DataError, match="needs timestamps"):
        split_edges(edges, ids.n_users, _options("leave-last"), {})


@pytest.mark.parametrize(("method", "column"), [("cold-items", "item"), ("cold-users", "user")])
def test_cold_splits_hold_out_every_edge_of_a_share_of_items_or_users(method, column):
    edges, ids = _edges_of(10, 10)  # every user has items i0..i9
    edges.loc[edges["user"] == 0, "part"] = PART["test"]  # a source's own split is replaced
    options = _options(method, test_fraction=0.3, valid_fraction=0.2, seed=2)
    out, part, info = split_edges(edges, ids.n_users, options, {"method": method})
    held = {s: set(out.loc[out.split == s, column]) for s in ("train", "valid", "test")}
    assert (len(held["test"]), len(held["valid"]), len(held["train"])) == (3, 2, 5)
    assert not (held["test"] | held["valid"]) & held["train"]
    assert (part == PART["test"]).sum() == 30 and (part == PART["valid"]).sum() == 20
    entity = f"{column}s"
    assert info == {
        "method": method,
        "test_fraction": 0.3,
        "cold": {"entity": entity, "test": 3, "valid": 2, "warm": 5},
        "valid_from": f"cold {entity}",
        "held_out_users_without_train": 5 if column == "user" else 0,
    }
    # no validation share: no validation part at all (nothing carved per user)
    _, part, info = split_edges(edges, ids.n_users, _options(method, valid_fraction=0.0), {})
    assert not (part == PART["valid"]).any() and info["valid_from"] == "none"


# ------------------------------------------------------------------ output
def test_output_tables_join_metadata_and_drop_social_edges_of_unknown_users():
    events = _events([("u1", "a", "v", 1, 1), ("u2", "b", "v", 2, 1)])
    ids = IdMaps.from_events(events)
    report = CleaningReport()
    tables = output_tables(
        events,
        ids,
        users_meta=None,
        items_meta=pd.DataFrame({"item_id": ["b", "zz"], "price": ["2.5", "1"]}),
        social=pd.DataFrame({"user_id": ["u1", "u1"], "friend_id": ["u2", "ghost"]}),
        keep_events=False,
        report=report,
    )
    assert tables.items["price"].tolist()[1] == 2.5 and np.isnan(tables.items["price"][0])
    assert tables.social.to_numpy().tolist() == [[0, 1]]
    assert tables.events is None
    assert report.extra == {
        "users_metadata_unmatched": 0,
        "items_metadata_unmatched": 1,
        "social_unknown_users": 1,
    }


def test_fingerprint_ignores_side_table_paths_but_not_the_content():
    edges, _ = _edges_of(2, 2)
    edges = edges.drop(columns="part").assign(split="train")
    part = np.zeros(len(edges), dtype=np.int64)
    tables = OutputTables(
        pd.DataFrame({"user": [0, 1]}), pd.DataFrame({"item": [0, 1]}), None, None
    )
    manifest = {
        "format": "events",
        "sources": [{"path": "/a/e.csv", "sha256": "0" * 64, "size": 3}],
        "options": {"on_error": "fail", "items": "/a/items.csv"},
        **dict.fromkeys(
            ["event_weights", "weight_by_value", "time_decay", "kcore", "min_value", "cleaning"]
        ),
        "split": {"method": "random"},
    }
    a = seal_manifest(manifest, tables, edges, part)
    moved = {
        **manifest,
        "sources": [{"path": "/b/e.csv", "sha256": "0" * 64, "size": 3}],
        "options": {"on_error": "fail", "items": "/b/items.csv"},
    }
    assert seal_manifest(moved, tables, edges, part)["fingerprint"] == a["fingerprint"]
    part[0] = PART["test"]
    b = seal_manifest(manifest, tables, edges, part)
    assert b["content_sha256"] != a["content_sha256"] and b["fingerprint"] != a["fingerprint"]
