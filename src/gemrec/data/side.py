"""Side information: what a dataset knows about items and users beyond the interaction graph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gemrec.errors import ParameterError

__all__ = ["SIDE_FIELDS", "SideInformation"]

#: the fields a model may declare in ``ModelTags.side_information``
SIDE_FIELDS = ("item_features", "item_categories", "social", "user_features")


@dataclass(frozen=True, eq=False)
class SideInformation:
    """Item metadata and the social graph, handed to models that declare they use them.

    Parameters
    ----------
    item_features : DataFrame, optional
        One row per item with column ``item`` (internal id) and metadata columns (category,
        brand, price, ...), as ``Dataset.items``.
    item_categories : ndarray of int, shape (n_items,), optional
        Category code per item, -1 where unknown.
    social : csr_matrix, shape (n_dataset_users, n_dataset_users), optional
        Directed ties ``user -> user they follow or trust`` (``Dataset.social``); a model fit on
        more users than the dataset has (``gemrec retrain``) reads the new ones as without ties.
    user_features : DataFrame, optional
        One row per user with column ``user`` (internal id) and metadata columns (gender, age,
        ...), as ``Dataset.users``.
    """

    item_features: pd.DataFrame | None = None
    item_categories: np.ndarray | None = None
    social: sp.csr_matrix | None = None
    user_features: pd.DataFrame | None = None

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
        social = self.social
        if social is not None and (
            not sp.issparse(social) or social.ndim != 2 or social.shape[0] != social.shape[1]
        ):
            raise ParameterError.invalid(
                "social",
                "a square scipy sparse user x user matrix",
                getattr(social, "shape", social),
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
        return SideInformation(self.item_features, cats, self.social, self.user_features)
