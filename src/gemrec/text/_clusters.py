"""Text embeddings as features: centred on the catalogue, and as a categorical field.

Sentence embeddings of one catalogue share a large common direction (the texts' shared layout,
e.g. "title. categories. brand."); :func:`centred` removes it so that what tells items apart
dominates cosine similarity. Item2vec/EGES learns one embedding per value of a categorical field;
a text becomes such a value through k-means on the items' centred embeddings
(:func:`text_centroids`, :func:`nearest_centroid`). NumPy and SciPy only.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2

__all__ = ["centred", "nearest_centroid", "text_centroids"]


def centred(embeddings: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``embeddings - mean`` with rows back to unit norm; zero rows (no text) stay zero.

    Returns
    -------
    ndarray of float32, shape like ``embeddings``
    """
    e = np.asarray(embeddings, np.float64)
    has = np.abs(e).sum(axis=1) > 0
    out = np.where(has[:, None], e - np.asarray(mean, np.float64), 0.0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def text_centroids(
    embeddings: np.ndarray, n_clusters: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """k-means (k-means++ start) on the centred non-zero rows of ``embeddings``.

    Parameters
    ----------
    embeddings : ndarray, shape (n, t)
        Sentence embeddings; zero rows (no text) are left out.
    n_clusters : int
        ``k``, capped at the number of distinct texts.
    seed : int

    Returns
    -------
    centroids : ndarray of float32, shape (k', t)
        Unit-norm centroids in the centred space.
    mean : ndarray of float32, shape (t,)
        The mean embedding removed first (pass both to :func:`nearest_centroid`).
    """
    e = np.asarray(embeddings, np.float64)
    rows = e[np.abs(e).sum(axis=1) > 0]
    if not len(rows):
        return np.zeros((0, e.shape[1]), np.float32), np.zeros(e.shape[1], np.float32)
    mean = rows.mean(axis=0)
    rows = np.unique(centred(rows, mean).astype(np.float64), axis=0)
    k = min(int(n_clusters), len(rows))
    found, _ = kmeans2(rows, k, minit="++", seed=seed)
    norms = np.linalg.norm(found, axis=1, keepdims=True)
    centroids = np.asarray(found / np.where(norms > 0, norms, 1.0), dtype=np.float32)
    return centroids, mean.astype(np.float32)


def nearest_centroid(
    embeddings: np.ndarray, centroids: np.ndarray, mean: np.ndarray
) -> list[str | None]:
    """The cluster of each row as a value ``"t<c>"`` (cosine), None for a zero row (no text)."""
    e = centred(embeddings, mean)
    has = np.abs(e).sum(axis=1) > 0
    if not len(centroids):
        return [None] * len(e)
    best = np.argmax(e @ centroids.T, axis=1)
    return [f"t{c}" if h else None for c, h in zip(best, has, strict=True)]
