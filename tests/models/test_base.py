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


def test_recommend_bounds_one_block_of_scores_and_returns_the_same_lists(monkeypatch):
    import numpy as np
    import scipy.sparse as sp

    from gemrec.data.interactions import Interactions
    from gemrec.models.knn import ItemKNN

    rng = np.random.default_rng(3)
    m = sp.random(60, 50, density=0.15, random_state=rng, dtype=np.float32).tocoo()
    data = rng.uniform(0.5, 3.0, m.nnz).astype(np.float32)
    model = ItemKNN().fit(Interactions.from_arrays(m.row, m.col, data, n_users=60, n_items=50))
    users = np.arange(60)
    ids, scores = model.recommend(users, k=10)
    assert model.block_rows() == model.batch_size
    # a bound of 7 rows' worth of scores: recommend scores 7 users at a time
    calls: list[int] = []
    score = model.score

    def counted(block):
        calls.append(len(block))
        return score(block)

    monkeypatch.setattr(model, "score", counted)
    monkeypatch.setattr(type(model), "score_block_bytes", 7 * 4 * 50)
    assert model.block_rows() == 7
    small_ids, small_scores = model.recommend(users, k=10)
    assert max(calls) == 7 and sum(calls) == 60
    np.testing.assert_array_equal(small_ids, ids)
    np.testing.assert_allclose(small_scores, scores)


def test_extended_fits_a_training_free_model_anew_on_the_larger_data():
    import numpy as np
    import pytest
    import scipy.sparse as sp

    from gemrec.data.interactions import Interactions
    from gemrec.errors import ParameterError
    from gemrec.models.rp3beta import RP3Beta

    rng = np.random.default_rng(4)
    m = sp.random(40, 30, density=0.2, random_state=rng, dtype=np.float32).tocoo()
    first = rng.random(m.nnz) < 0.8
    part = Interactions.from_arrays(m.row[first], m.col[first], n_users=40, n_items=30)
    whole = Interactions.from_arrays(m.row, m.col, n_users=40, n_items=30)
    model = RP3Beta(alpha=0.7).fit(part)
    bigger = model.extended(whole)
    assert bigger is not model and bigger.get_params() == model.get_params()
    np.testing.assert_allclose(
        bigger.score(np.arange(40)), RP3Beta(alpha=0.7).fit(whole).score(np.arange(40))
    )
    assert model.interactions_.nnz == part.nnz  # left as it was
    with pytest.raises(ParameterError, match="shape"):
        model.extended(Interactions.from_arrays([0], [0], n_users=40, n_items=31))
