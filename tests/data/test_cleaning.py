"""Validation, deduplication, k-core, weights and aggregation (each against a slow reference)."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.data.cleaning import (
    CleaningReport,
    aggregate_edges,
    deduplicate,
    event_weights,
    kcore,
    parse_timestamps,
    parse_weights,
    validate_events,
)
from gemrec.data.event_types import EVENT_WEIGHTS
from gemrec.data.tables import Table
from gemrec.errors import DataError, ParameterError


def _table(rows, path="log.csv", columns=("user_id", "item_id", "event_type", "timestamp")):
    frame = pd.DataFrame(rows, columns=list(columns)).astype("str")
    return Table(path, frame, np.arange(2, len(rows) + 2), [], None)


def test_parse_timestamps_units_and_iso():
    raw = pd.Series(
        [
            "1511544070",
            "1511544070000",
            "2017-11-24T17:21:10Z",
            "2017-11-24 17:21:10",
            "",
            "soon",
            "nan",
        ]
    )
    secs, bad = parse_timestamps(raw)
    assert secs[:4].tolist() == [1511544070.0] * 4
    assert math.isnan(secs[4]) and not bad[4]
    assert bad.tolist() == [False, False, False, False, False, True, True]


def test_parse_timestamps_iso_with_offset():
    secs, bad = parse_timestamps(pd.Series(["2017-11-24T19:21:10+02:00", "1.5"]))
    assert secs.tolist() == [1511544070.0, 1.5]
    assert not bad.any()


def test_parse_weights_overrides_defaults_and_rejects_garbage():
    w = parse_weights("view=1, purchase=10")
    assert w == {**EVENT_WEIGHTS, "purchase": 10.0}
    assert parse_weights(["like=2"], base={"rating": 1.0}) == {"rating": 1.0, "like": 2.0}
    with pytest.raises(ParameterError, match="--weights"):
        parse_weights("view")
    with pytest.raises(ParameterError, match="a number"):
        parse_weights("view=lots")
    with pytest.raises(ParameterError, match=">= 0"):
        parse_weights("view=-1")


def test_validate_strips_ids_and_keeps_them_verbatim_otherwise():
    t = _table([[" 007 ", "A b", " VIEW ", "10"], ["7", "a b", "purchase", "11"]])
    ev, rej = validate_events([t], EVENT_WEIGHTS)
    assert rej == []
    assert ev["user_id"].tolist() == ["007", "7"]
    assert ev["item_id"].tolist() == ["A b", "a b"]
    assert ev["event_type"].tolist() == ["view", "purchase"]
    assert ev["line"].tolist() == [2, 3]


BAD_ROWS = [
    (["", "i", "view", "1"], "user_id", "expected a non-empty id; found an empty value"),
    (["u", "  ", "view", "1"], "item_id", "expected a non-empty id"),
    (
        ["u", "i", "like", "1"],
        "event_type",
        "expected one of cart, click, fav, purchase, view; found 'like'",
    ),
    (["u", "i", "view", "yesterday"], "timestamp", "found 'yesterday'"),
    (["u", "i", "view", ""], "timestamp", "found an empty value"),
]


@pytest.mark.parametrize(("row", "field", "message"), BAD_ROWS)
def test_validate_fail_names_file_line_field_expected_found(row, field, message):
    t = _table([["u", "i", "view", "1"], row])
    with pytest.raises(DataError) as exc:
        validate_events([t], EVENT_WEIGHTS, on_error="fail")
    e = exc.value
    assert (e.path, e.line, e.field) == ("log.csv", 3, field)
    assert message in str(e)
    assert str(e).startswith(f"log.csv, line 3, field '{field}': expected ")


@pytest.mark.parametrize(("row", "field", "message"), BAD_ROWS)
def test_validate_skip_collects_the_row(row, field, message):
    good = [["u", "i", "view", "1"], ["u", "j", "cart", "2"]]
    t = _table([good[0], row, good[1]])
    report = CleaningReport()
    ev, rej = validate_events([t], EVENT_WEIGHTS, on_error="skip", report=report)
    assert ev["item_id"].tolist() == ["i", "j"]
    assert [(r.line, r.field) for r in rej] == [(3, field)]
    assert message in rej[0].reason
    assert report.rows_read == 3 and report.rejected == 1


def test_value_must_be_numeric():
    t = _table(
        [
            ["u", "i", "view", "1", "2.5"],
            ["u", "i", "view", "2", "cheap"],
            ["u", "i", "view", "3", ""],
            ["u", "i", "view", "4", "1e999"],
            ["u", "i", "view", "5", "-.5e1"],
        ],
        columns=("user_id", "item_id", "event_type", "timestamp", "value"),
    )
    ev, rej = validate_events([t], EVENT_WEIGHTS, on_error="skip")
    assert ev["value"].tolist()[0] == 2.5 and math.isnan(ev["value"].tolist()[1])
    assert [(r.field, r.line) for r in rej] == [("value", 3), ("value", 5)]
    assert ev["value"].tolist()[-1] == -5.0


def test_first_bad_row_wins_across_field_count_and_value_errors():
    t = _table([["u", "i", "view", "1"], ["u", "i", "nope", "1"]])
    from gemrec.data.tables import BadRow

    t.bad_rows.append(BadRow("log.csv", 2, None, "expected 4 fields, found 2", "u,i"))
    with pytest.raises(DataError, match="line 2: expected 4 fields"):
        validate_events([t], EVENT_WEIGHTS)


def test_deduplicate_exact_then_event_id():
    ev = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b"],
            "item_id": ["x", "x", "x", "y", "y"],
            "event_type": ["view"] * 5,
            "timestamp": [1.0, 1.0, 2.0, 3.0, 4.0],
            "value": [np.nan] * 5,
            "event_id": [None, None, None, "e1", "e1"],
        }
    )
    r = CleaningReport()
    out = deduplicate(ev, r)
    assert out["timestamp"].tolist() == [1.0, 2.0, 3.0]
    assert (r.duplicates_exact, r.duplicates_event_id, r.deduplicated, r.accepted) == (1, 1, 2, 3)


def _kcore_reference(pairs, mu, mi):
    pairs = set(pairs)
    while True:
        cu, ci = {}, {}
        for u, i in pairs:
            cu[u] = cu.get(u, 0) + 1
            ci[i] = ci.get(i, 0) + 1
        keep = {(u, i) for u, i in pairs if cu[u] >= mu and ci[i] >= mi}
        if keep == pairs:
            return keep
        pairs = keep


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=1, max_size=80),
    st.integers(0, 4),
    st.integers(0, 4),
)
def test_kcore_matches_reference_and_is_a_fixed_point(pairs, mu, mi):
    u = np.array([p[0] for p in pairs])
    i = np.array([p[1] for p in pairs])
    keep, _ = kcore(u, i, mu, mi)
    got = set(zip(u[keep].tolist(), i[keep].tolist(), strict=True))
    assert got == _kcore_reference(pairs, mu, mi)
    # duplicates of a kept pair are all kept
    for k in range(len(pairs)):
        assert keep[k] == (pairs[k] in got)


def test_event_weights_types_value_and_half_life():
    types = np.array(["view", "purchase", "view"], dtype=object)
    ts = np.array([0.0, 86400.0 * 2, np.nan])
    w = event_weights(
        types, EVENT_WEIGHTS, timestamps=ts, half_life_days=2.0, reference_time=86400.0 * 2
    )
    np.testing.assert_allclose(w, [0.5, 5.0, 1.0])
    w = event_weights(types, EVENT_WEIGHTS, values=np.array([3.0, 2.0, np.nan]))
    np.testing.assert_allclose(w, [3.0, 10.0, 1.0])
    with pytest.raises(ParameterError, match="half-life"):
        event_weights(types, EVENT_WEIGHTS, timestamps=ts, half_life_days=0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 4),
            st.integers(0, 4),
            st.integers(0, 2),
            st.sampled_from(["view", "cart", "purchase"]),
            st.integers(0, 100),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_aggregate_edges_matches_reference(rows):
    u, i, p, t, ts = (np.array(c) for c in zip(*rows, strict=True))
    w = event_weights(t.astype(object), EVENT_WEIGHTS)
    e = aggregate_edges(u, i, p, w, ts.astype(float), t.astype(object), list(EVENT_WEIGHTS))
    ref = {}
    for uu, ii, pp, tt, s in rows:
        d = ref.setdefault((uu, ii, pp), {"w": 0.0, "n": 0, "last": -1, "first": 1e9, "types": {}})
        d["w"] += EVENT_WEIGHTS[tt]
        d["n"] += 1
        d["last"] = max(d["last"], s)
        d["first"] = min(d["first"], s)
        d["types"][tt] = d["types"].get(tt, 0) + 1
    assert len(e) == len(ref)
    for row in e.itertuples():
        d = ref[(row.user, row.item, row.part)]
        assert row.weight == pytest.approx(d["w"])
        assert (row.n_events, row.last_timestamp, row.first_timestamp) == (
            d["n"],
            d["last"],
            d["first"],
        )
        assert row.n_view == d["types"].get("view", 0) and row.n_purchase == d["types"].get(
            "purchase", 0
        )
        assert row.n_click == 0


def test_aggregate_edges_counts_categorical_types_by_name():
    # categories in another order than the type names, one of them unknown to the recipe
    types = pd.Categorical(
        ["cart", "view", "share", "view", "cart"], categories=["share", "view", "cart"]
    )
    e = aggregate_edges(
        np.zeros(5, int),
        np.array([0, 0, 0, 1, 1]),
        np.zeros(5, np.int8),
        np.array([1.0, 0.5, 2.0, 0.25, 0.125]),
        np.arange(5.0),
        types,
        ["view", "cart"],
    )
    assert e[["n_view", "n_cart", "n_events"]].to_numpy().tolist() == [[1, 1, 3], [1, 1, 2]]
    assert e["weight"].tolist() == [3.5, 0.375]
