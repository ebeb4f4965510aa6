import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from gemrec.eval.metrics import hits, mean_metrics, ranking_metrics


def test_hand_computed_example():
    # user 0: 3 relevant, hits at positions 1 and 3 of a top-4 list
    hits = np.array([[True, False, True, False], [False, False, False, False]])
    m = ranking_metrics(hits, np.array([3, 1]), 4)
    assert m["recall"][0] == pytest.approx(2 / 3)
    assert m["precision"][0] == pytest.approx(0.5)
    dcg = 1 + 1 / np.log2(4)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert m["ndcg"][0] == pytest.approx(dcg / idcg)
    assert m["hitrate"][0] == 1.0
    assert m["mrr"][0] == 1.0
    assert m["map"][0] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert all(m[name][1] == 0.0 for name in m)


def test_ideal_dcg_uses_min_k_and_relevant():
    # 10 relevant items, K=2, both hits -> NDCG 1 (ideal over min(K, |T|) = 2 positions)
    m = ranking_metrics(np.array([[True, True]]), np.array([10]), 2)
    assert m["ndcg"][0] == pytest.approx(1.0)
    assert m["recall"][0] == pytest.approx(0.2)


@given(
    st.lists(st.booleans(), min_size=5, max_size=5),
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=1, max_value=5),
)
def test_metric_bounds(row, n_rel, k):
    hits = np.array([row])
    # a list cannot hit more items than are relevant
    if hits.sum() > n_rel:
        hits[0, np.flatnonzero(hits[0])[n_rel:]] = False
    m = ranking_metrics(hits, np.array([n_rel]), k)
    for name, v in m.items():
        assert 0.0 <= v[0] <= 1.0 + 1e-12, name


def test_hits_and_mean_metrics_by_hand() -> None:
    truth = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    ids = np.array([[2, 0, 1], [3, -1, -1], [0, 1, 2]])
    assert hits(truth, ids).tolist() == [
        [True, False, True],
        [False, False, False],
        [False, False, False],
    ]
    m = mean_metrics(ids, truth, 2)
    # recall@2: user 0 finds 1 of 2, user 1 none, user 2 has no truth and scores 0
    assert m["recall"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert m["ndcg"] == pytest.approx((1.0 / (1.0 + 1.0 / np.log2(3))) / 3)
