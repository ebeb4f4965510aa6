import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gemrec.models.base import topk


def _reference_topk(scores, k):
    ids, vals = [], []
    for row in scores:
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))
        order = [j for j in order if np.isfinite(row[j])][:k]
        ids.append(order + [-1] * (k - len(order)))
        vals.append([row[j] for j in order] + [-np.inf] * (k - len(order)))
    return np.array(ids), np.array(vals, dtype=np.float32)


@settings(max_examples=60)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(1, 12)),
        elements=st.sampled_from([0.0, 1.0, 2.5, -1.0, -np.inf]),
    ),
    st.integers(1, 15),
)
def test_topk_equals_full_sort(scores, k):
    ids, vals = topk(scores, k)
    _, ref_vals = _reference_topk(scores, k)
    assert ids.shape == (scores.shape[0], k)
    np.testing.assert_array_equal(vals, ref_vals)
    # ties may pick different ids at the cut, but chosen ids must carry the reported scores
    for r in range(scores.shape[0]):
        for j in range(k):
            if ids[r, j] >= 0:
                assert scores[r, ids[r, j]] == vals[r, j]
        valid = ids[r][ids[r] >= 0]
        assert len(set(valid.tolist())) == len(valid)


def test_corrupt_manifests_give_one_clear_error(tmp_path):
    import pytest

    from gemrec.data.store import Dataset
    from gemrec.errors import DataError, GemrecError
    from gemrec.models.base import Recommender

    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(GemrecError, match="not a valid gemrec model manifest"):
        Recommender.load(tmp_path)
    with pytest.raises(DataError, match=r"manifest\.json is not valid JSON"):
        Dataset.open(tmp_path)
    (tmp_path / "manifest.json").write_text('{"model": "pop"}')
    with pytest.raises(GemrecError, match="KeyError"):
        Recommender.load(tmp_path)
