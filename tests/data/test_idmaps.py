"""Id maps: content order, round trip, independence of row order."""

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from gemrec.data.idmaps import IdMaps, sorted_ids


def test_plain_integers_are_ordered_numerically():
    codes, ids, order = sorted_ids(pd.Series(["10", "9", "2", "10"]))
    assert order == "numeric"
    assert ids.tolist() == ["2", "9", "10"]
    assert codes.tolist() == [2, 1, 0, 2] and codes.dtype == np.int32


def test_any_other_id_orders_every_id_as_text():
    # a leading zero is not a plain integer: "007" and "10" then sort as strings
    codes, ids, order = sorted_ids(pd.Series(["10", "007", "9"]))
    assert order == "lexicographic"
    assert ids.tolist() == ["007", "10", "9"]
    assert codes.tolist() == [1, 0, 2]


@given(
    st.lists(st.one_of(st.integers(0, 50).map(str), st.sampled_from(["a", "b", "x7"])), min_size=1),
    st.randoms(use_true_random=False),
)
def test_ids_round_trip_and_do_not_depend_on_row_order(values, rnd):
    codes, ids, _ = sorted_ids(pd.Series(values))
    assert ids[codes].tolist() == values
    assert sorted(set(codes.tolist())) == list(range(len(ids)))
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert sorted_ids(pd.Series(shuffled))[1].tolist() == ids.tolist()


def test_id_maps_of_an_event_table():
    events = pd.DataFrame({"user_id": ["u2", "u1", "u2"], "item_id": ["5", "3", "40"]})
    ids = IdMaps.from_events(events)
    assert (ids.n_users, ids.n_items) == (2, 3)
    assert ids.users.tolist() == [1, 0, 1] and ids.items.tolist() == [1, 0, 2]
    assert (ids.user_order, ids.item_order) == ("lexicographic", "numeric")
