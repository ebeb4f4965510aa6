"""Side information: field choice and codes, item-table alignment, fused and side-only vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gemrec.errors import DataError, ParameterError
from gemrec.models._side_info import (
    SideCodes,
    align_features,
    as_frame,
    cold_attention,
    fields_from_state,
    fields_state,
    fused_vectors,
    learn_fields,
    side_only_vectors,
)


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": [0, 1, 2, 3, 4, 5],
            "category": ["a", "a", "b", "b", None, "a"],
            "tags": [["x", "y"], ["y"], [], ["x"], ["z", "x"], None],
            "price": [1.0, 2.0, 3.0, 4.0, np.nan, 6.0],
            "title": ["t0", "t1", "t2", "t3", "t4", "t5"],
            "available": [True, False, True, True, False, True],
            "constant": ["c"] * 6,
        }
    )


def test_automatic_choice_skips_ids_flags_constants_and_id_like_columns():
    fields = learn_fields(_table(), None, n_buckets=2)
    assert [(f.name, f.kind) for f in fields] == [
        ("category", "categorical"),
        ("tags", "categorical"),
        ("price", "numeric"),
    ]
    category, tags, price = fields
    assert category.vocab.tolist() == ["a", "b"] and tags.vocab.tolist() == ["x", "y", "z"]
    assert price.edges.tolist() == [3.0] and price.size == 2  # the median splits two buckets
    named = learn_fields(_table(), ["title"], n_buckets=2)
    assert [f.name for f in named] == ["title"] and named[0].size == 6
    with pytest.raises(ParameterError, match=r"side_features.*colour"):
        learn_fields(_table(), ["colour"], n_buckets=2)


def test_codes_pad_multi_valued_cells_and_drop_unknown_and_missing_values():
    fields = learn_fields(_table(), None, n_buckets=2)
    new = pd.DataFrame({"tags": [["z", "unknown", "y"], None], "price": [2.5, np.nan]})
    codes = SideCodes.encode(fields, new)
    assert codes.has.tolist() == [[False, True, True], [False, False, False]]
    # category is absent from the frame: padding only
    np.testing.assert_array_equal(codes.idx[0], [[2], [2]])
    np.testing.assert_array_equal(codes.idx[1], [[2, 1], [3, 3]])  # z, y; padding = size 3
    np.testing.assert_allclose(codes.weights[1], [[0.5, 0.5], [0.0, 0.0]])
    np.testing.assert_array_equal(codes.idx[2], [[0], [2]])  # 2.5 < 3.0: bucket 0
    sub = codes.rows(np.array([1]))
    assert sub.has.shape == (1, 3) and sub.idx[1].tolist() == [[3, 3]]


def test_item_column_places_rows_like_positional_order():
    table = _table()
    by_item = align_features(table.sample(frac=1.0, random_state=0), 6)
    by_position = align_features(table.drop(columns="item"), 6)
    for col in ["category", "price", "available"]:
        pd.testing.assert_series_equal(
            by_item[col], by_position[col], check_dtype=False, check_names=False
        )
    assert pd.api.types.is_float_dtype(by_item["price"].dtype)
    assert pd.api.types.is_bool_dtype(by_item["available"].dtype)
    sparse = align_features(table.iloc[[4]], 6)  # one described item of six
    assert sparse["title"].isna().tolist() == [True] * 4 + [False, True]
    assert sparse["title"][4] == "t4"
    with pytest.raises(DataError, match="rows"):
        align_features(table.drop(columns="item").iloc[:3], 6)
    with pytest.raises(DataError, match="item"):
        align_features(table.assign(item=table["item"] + 10), 6)


def test_as_frame_reads_a_dict_a_dict_of_lists_and_a_list_of_dicts():
    assert len(as_frame({"category": "a"}, "side_info")) == 1
    assert len(as_frame({"category": ["a", "b"]}, "side_info")) == 2
    assert len(as_frame([{"category": "a"}, {"category": "b"}], "side_info")) == 2
    with pytest.raises(ParameterError, match="side_info"):
        as_frame(42, "side_info")


def test_fields_survive_a_state_round_trip():
    fields = learn_fields(_table(), None, n_buckets=3)
    back = fields_from_state(fields_state(fields))
    assert [(f.name, f.kind, f.vocab.tolist(), f.edges.tolist()) for f in back] == [
        (f.name, f.kind, f.vocab.tolist(), f.edges.tolist()) for f in fields
    ]


def _random_weights(fields, n, d, seed=0):
    rng = np.random.default_rng(seed)
    own = rng.standard_normal((n, d)).astype(np.float32)
    logits = rng.standard_normal((n, 1 + len(fields))).astype(np.float32)
    tables = [rng.standard_normal((f.size, d)).astype(np.float32) for f in fields]
    return own, logits, tables


def test_fused_vectors_equal_a_per_item_softmax_over_the_known_fields():
    table = align_features(_table(), 6)
    fields = learn_fields(table, None, n_buckets=2)
    codes = SideCodes.encode(fields, table)
    own, logits, tables = _random_weights(fields, 6, 4)
    vectors, attention = fused_vectors(own, logits, tables, codes)
    for v in range(6):
        parts, a = [own[v]], [logits[v, 0]]
        for j, f in enumerate(fields):
            values = f.codes(table[f.name].iloc[[v]])[0]
            if len(values):
                parts.append(tables[j][values].mean(axis=0))
                a.append(logits[v, 1 + j])
        w = np.exp(np.array(a) - max(a))
        w /= w.sum()
        np.testing.assert_allclose(vectors[v], np.sum(w[:, None] * parts, axis=0), rtol=1e-5)
        assert np.count_nonzero(attention[v]) == len(a)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, rtol=1e-6)


def test_side_only_vectors_renormalise_the_global_attention_over_known_fields():
    fields = learn_fields(_table(), None, n_buckets=2)
    _, _, tables = _random_weights(fields, 6, 4)
    g = np.array([0.5, 0.3, 0.2], np.float32)
    new = pd.DataFrame({"category": ["b", "nope"], "price": [5.0, np.nan]})
    codes = SideCodes.encode(fields, new)
    np.testing.assert_allclose(cold_attention(g, codes.has), [[0.5 / 0.7, 0, 0.2 / 0.7], [0, 0, 0]])
    got = side_only_vectors(tables, g, codes)
    want = (0.5 * tables[0][1] + 0.2 * tables[2][1]) / 0.7
    np.testing.assert_allclose(got[0], want, rtol=1e-5)
    np.testing.assert_array_equal(got[1], 0.0)  # nothing known: the zero vector
