"""Graph views of interactions: normalised adjacencies and spectral decompositions.

Computed once at fit time and shared by graph models (``graphfilter``, ``lightgcn``).
"""

from gemrec.graph.adjacency import (
    bipartite_adjacency,
    bipartite_edge_index,
    degree_power,
    degrees,
    item_gram,
    normalized_interactions,
    to_torch_sparse,
)
from gemrec.graph.spectral import truncated_svd

__all__ = [
    "bipartite_adjacency",
    "bipartite_edge_index",
    "degree_power",
    "degrees",
    "item_gram",
    "normalized_interactions",
    "to_torch_sparse",
    "truncated_svd",
]
