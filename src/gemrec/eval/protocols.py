"""What a dataset's split asks of evaluation: the standard protocol or a cold-start one.

The importer records the split method in the dataset's manifest (``split.method``):

- any per-user split (``random``, ``temporal``, ``leave-last``, ``predefined``): the standard
  protocol, every item ranked for every test user;
- ``cold-items``: the held-out items have no training interaction, so they are ranked only among
  themselves: the candidate set is the items of the evaluated split (every one of them cold);
- ``cold-users``: the evaluated users have no training interaction; every item is ranked, as a
  new user would be served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gemrec.data.store import Dataset

__all__ = ["Protocol", "protocol_of"]


@dataclass(frozen=True, eq=False)
class Protocol:
    """How one split of a dataset is evaluated.

    Attributes
    ----------
    name : {"standard", "cold-items", "cold-users"}
    split : str
        The evaluated split.
    n_items : int
        The catalogue size.
    candidates : ndarray of int or None
        The items ranked (cold items); None: every item.
    n_cold_users : int
        Users held out of training (cold-users), else 0.
    """

    name: str
    split: str
    n_items: int
    candidates: np.ndarray | None = None
    n_cold_users: int = 0

    def describe(self) -> str:
        """One line for the evaluation report ("" for the standard protocol)."""
        if self.name == "cold-items" and self.candidates is not None:
            return (
                f"protocol cold-items: ranked only the {len(self.candidates):,} cold items of the "
                f"{self.split} split (the candidate set; no training interactions), not all "
                f"{self.n_items:,} items"
            )
        if self.name == "cold-users":
            return (
                f"protocol cold-users: the {self.n_cold_users:,} users of the {self.split} split "
                f"have no training interactions; every one of the {self.n_items:,} items ranked"
            )
        return ""

    def as_dict(self) -> dict[str, Any]:
        """The ``protocol`` entry of ``gemrec evaluate --json``."""
        out: dict[str, Any] = {"name": self.name, "n_items": self.n_items}
        if self.candidates is not None:
            out["candidates"] = f"the cold items of the {self.split} split"
        if self.name == "cold-users":
            out["n_cold_users"] = self.n_cold_users
        return out


def protocol_of(dataset: Dataset, split: str = "test") -> Protocol:
    """The protocol for evaluating ``dataset``'s ``split`` (see the module docstring)."""
    method = dataset.manifest.get("split", {}).get("method")
    edges = dataset.edges
    held = edges[edges["split"] == split]
    if method == "cold-items":
        candidates = np.unique(held["item"].to_numpy()).astype(np.int64)
        return Protocol("cold-items", split, dataset.n_items, candidates=candidates)
    if method == "cold-users":
        n_cold = int(held["user"].nunique())
        return Protocol("cold-users", split, dataset.n_items, n_cold_users=n_cold)
    return Protocol("standard", split, dataset.n_items)
