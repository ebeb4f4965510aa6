"""Tiny data with a planted answer for the torch model tests (lightgcn, mf, ncf)."""

from __future__ import annotations

import numpy as np

from gemrec.data.interactions import Interactions


def planted_blocks(
    n_users: int = 60, n_items: int = 40, n_groups: int = 2, per_user: int = 8, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Users and items split into ``n_groups`` communities; users only touch their own group.

    Returns (train, test): each user keeps one in-group item held out for test.
    """
    rng = np.random.default_rng(seed)
    ug = np.arange(n_users) % n_groups
    ig = np.arange(n_items) % n_groups
    users, items, tu, ti = [], [], [], []
    for u in range(n_users):
        own = np.flatnonzero(ig == ug[u])
        chosen = rng.choice(own, size=per_user + 1, replace=False)
        users += [u] * per_user
        items += list(chosen[:per_user])
        tu.append(u)
        ti.append(chosen[-1])
    train = Interactions.from_arrays(
        np.array(users), np.array(items), n_users=n_users, n_items=n_items
    )
    test = Interactions.from_arrays(np.array(tu), np.array(ti), n_users=n_users, n_items=n_items)
    return train, test


def random_graph(
    n_users: int = 7, n_items: int = 9, density: float = 0.35, seed: int = 1
) -> Interactions:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), np.arange(n_users) % n_items] = True  # nobody is isolated
    u, i = np.nonzero(mask)
    w = rng.integers(1, 4, size=len(u)).astype(np.float32)
    return Interactions.from_arrays(u, i, w, n_users=n_users, n_items=n_items)


def record_adam_learning_rates(monkeypatch) -> list[float]:  # type: ignore[no-untyped-def]
    """Patch ``torch.optim.Adam.step`` to append each step's learning rate to the returned list."""
    import torch

    seen: list[float] = []
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    return seen
