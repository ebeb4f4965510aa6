"""Item texts from an item table, and their embeddings cached on disk by a fingerprint.

An item's text is its ``text`` column when the table has one (the RecBole reader keeps the
source's item text there), else its ``title``, ``description``, ``categories``, ``category`` and
``brand`` joined by ". ". Embeddings are cached as ``item_text_embeddings-<fp>.npy``, where
``fp`` hashes the model name and every text in order: a changed title, a new item or another
model is another file, the same texts are read back instead of encoded again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gemrec.errors import ParameterError
from gemrec.models._side_info import _cell_values
from gemrec.text._encoder import DEFAULT_TEXT_MODEL, TextEncoder

__all__ = [
    "TEXT_COLUMNS",
    "default_cache_dir",
    "embed_item_texts",
    "item_texts",
    "text_fingerprint",
]

#: item-table columns joined into an item's text, in this order, when there is no ``text`` column
TEXT_COLUMNS = ("title", "description", "categories", "category", "brand")


def item_texts(table: pd.DataFrame, columns: Sequence[str] | None = None) -> list[str]:
    """One text per row of ``table``.

    Parameters
    ----------
    table : DataFrame
        One row per item (e.g. ``Dataset.items`` aligned to internal ids).
    columns : sequence of str, optional
        The columns to join. None: ``text`` alone if present, else the columns of
        :data:`TEXT_COLUMNS` that ``table`` has.

    Returns
    -------
    list of str
        Values of the columns joined by ". " (missing values skipped; a row with none is "").
    """
    if columns is None:
        columns = (
            ["text"] if "text" in table.columns else [c for c in TEXT_COLUMNS if c in table.columns]
        )
    else:
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ParameterError(
                f"parameter 'text_columns' names {missing}, which the item table lacks; "
                f"columns: {', '.join(map(str, table.columns))}"
            )
    parts = [[" ".join(_cell_values(v)).strip() for v in table[c].tolist()] for c in columns]
    return (
        [". ".join(p for p in row if p) for row in zip(*parts, strict=True)]
        if parts
        else ["" for _ in range(len(table))]
    )


def text_fingerprint(texts: Sequence[str], model: str = DEFAULT_TEXT_MODEL) -> str:
    """A 16-hex-digit hash of ``model`` and ``texts`` (order matters)."""
    h = hashlib.sha256(f"{model}\n{len(texts)}\n".encode())
    for t in texts:
        b = str(t).encode()
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$GEMREC_CACHE_DIR/text``, default ``~/.cache/gemrec/text``."""
    root = os.environ.get("GEMREC_CACHE_DIR") or Path.home() / ".cache" / "gemrec"
    return Path(root) / "text"


def embed_item_texts(
    texts: Sequence[str],
    *,
    encoder: TextEncoder | None = None,
    cache_dir: str | Path | None = None,
) -> np.ndarray:
    """Embeddings of ``texts``, read from the cache when the same texts were embedded before.

    Parameters
    ----------
    texts : sequence of str
    encoder : TextEncoder, optional
        Default: ``TextEncoder()`` (the bundled MiniLM).
    cache_dir : str or Path, optional
        Where ``item_text_embeddings-<fp>.npy`` lives (:func:`default_cache_dir` by default).

    Returns
    -------
    ndarray of float32, shape (len(texts), dim)
    """
    encoder = encoder or TextEncoder()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"item_text_embeddings-{text_fingerprint(texts, encoder.model)}.npy"
    if path.is_file():
        cached = np.load(path, allow_pickle=False)
        if cached.ndim == 2 and len(cached) == len(texts):
            return np.asarray(cached, dtype=np.float32)
    out = encoder.encode(texts)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, out)
    os.replace(tmp, path)  # readers never see a half-written file
    return out
