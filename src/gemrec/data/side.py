"""Side information: what a dataset knows about items beyond the interaction graph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gemrec.errors import ParameterError

__all__ = ["SIDE_FIELDS", "SideInformation"]

#: the fields a model may declare in ``ModelTags.side_information``
SIDE_FIELDS = ("item_features", "item_categories")


@dataclass(frozen=True, eq=False)
class SideInformation:
    """Item metadata handed to models that declare they use it.

    Parameters
    ----------
    item_features : DataFrame, optional
        One row per item with column ``item`` (internal id) and metadata columns (category,
        brand, price, ...), as ``Dataset.items``.
    item_categories : ndarray of int, shape (n_items,), optional
        Category code per item, -1 where unknown.
    """

    item_features: pd.DataFrame | None = None
    item_categories: np.ndarray | None = None

    def check(self, n_items: int) -> SideInformation:
        """Validate shapes against ``n_items``; return self."""
        if self.item_features is not None and not isinstance(self.item_features, pd.DataFrame):
            raise ParameterError.invalid(
                "item_features", "a pandas DataFrame or None", type(self.item_features)
            )
        if self.item_categories is not None:
            cats = np.asarray(self.item_categories)
            if cats.shape != (n_items,) or not np.issubdtype(cats.dtype, np.integer):
                raise ParameterError.invalid(
                    "item_categories", f"an int array of shape ({n_items},)", cats.shape
                )
        return self

    def resized(self, n_items: int) -> SideInformation:
        """The same information for a catalogue grown to ``n_items``.

        New items get category -1; ``item_features`` rows are keyed by their ``item`` column, so
        items without a row simply have no features.
        """
        cats = self.item_categories
        if cats is not None and len(cats) < n_items:
            cats = np.concatenate([cats, np.full(n_items - len(cats), -1, cats.dtype)])
        return SideInformation(self.item_features, cats)
