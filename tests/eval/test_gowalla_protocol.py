"""Pins the evaluation protocol to the published value for global popularity on Gowalla."""

import numpy as np
import pytest

from gemrec.data.interactions import Interactions
from gemrec.eval import evaluate
from gemrec.models.popularity import Popularity
from tests.conftest import shared_data


def _read_lightgcn(path):
    users, items = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        users += [int(parts[0])] * (len(parts) - 1)
        items += [int(x) for x in parts[1:]]
    return np.array(users), np.array(items)


def test_popularity_on_gowalla_matches_published_protocol():
    root = shared_data("gowalla")
    tu, ti = _read_lightgcn(root / "train.txt")
    su, si = _read_lightgcn(root / "test.txt")
    n_users, n_items = max(tu.max(), su.max()) + 1, max(ti.max(), si.max()) + 1
    train = Interactions.from_arrays(tu, ti, n_users=n_users, n_items=n_items)
    test = Interactions.from_arrays(su, si, n_users=n_users, n_items=n_items)
    result = evaluate(Popularity().fit(train), test, ks=[20])
    assert result.n_users == 29858
    assert result["recall@20"] == pytest.approx(0.0416, abs=5e-5)
    assert result["ndcg@20"] == pytest.approx(0.0317, abs=5e-5)
