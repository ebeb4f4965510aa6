"""Data for the fusion tests whose right answer is known by construction."""

from __future__ import annotations

import numpy as np

from gemrec.data.interactions import Interactions


def clusters(seed: int = 0) -> tuple[Interactions, Interactions, Interactions]:
    """Users in 4 item clusters; valid/test items come from the user's cluster.

    Returns train, valid and test of 120 users and 60 items: each user has 6 items of their own
    cluster and 2 random ones in train, 2 more of their cluster in valid and 2 in test.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items, n_cl = 120, 60, 4
    cl_u = np.arange(n_users) % n_cl
    cl_i = np.arange(n_items) % n_cl
    parts: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
    for u in range(n_users):
        own = rng.permutation(np.flatnonzero(cl_i == cl_u[u]))[:10]
        noise = rng.choice(n_items, 2, replace=False)
        tr = np.unique(np.concatenate([own[:6], noise]))
        parts["train"] += [(u, i) for i in tr]
        parts["valid"] += [(u, i) for i in own[6:8] if i not in tr]
        parts["test"] += [(u, i) for i in own[8:] if i not in tr]

    def mk(pairs: list[tuple[int, int]]) -> Interactions:
        a = np.array(pairs)
        return Interactions.from_arrays(a[:, 0], a[:, 1], n_users=n_users, n_items=n_items)

    return mk(parts["train"]), mk(parts["valid"]), mk(parts["test"])
