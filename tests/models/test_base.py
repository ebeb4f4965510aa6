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
