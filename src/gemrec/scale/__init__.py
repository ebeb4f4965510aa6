"""Past one machine's memory: the spectral model fitted and scored on a Dask cluster.

- :mod:`gemrec.scale.blocks`: row blocks (blocks of users) of a dataset's interaction matrix,
  read by the workers straight from ``edges.parquet``.
- :mod:`gemrec.scale.svd`: the randomized truncated SVD of :mod:`gemrec.graph.spectral` expressed
  as Dask tasks over row blocks; only ``n_items x (k + p)`` matrices reach the client.
- :mod:`gemrec.scale.graphfilter`: :class:`~gemrec.models.graphfilter.GraphFilter` fitted from
  those pieces (its item-item part truncated per item, or factored), saved and loaded like any
  model.
- :mod:`gemrec.scale.scoring`: top-k for blocks of users on the workers, written as Parquet
  parts, resumable (``gemrec recommend --engine dask``).

``gemrec train --engine dask`` fits the models of :data:`DASK_FITTERS`.

Every function takes a ``distributed.Client``; see ``docs/scaling.md`` for when to use them.
"""

from collections.abc import Callable

from gemrec.models.fitting import FitResult
from gemrec.scale.graphfilter import fit_graphfilter_dask
from gemrec.scale.scoring import recommend_dask
from gemrec.scale.svd import block_randomized_svd

#: ``gemrec train --engine dask``: model name -> ``fit(dataset, *, client, **params)``
DASK_FITTERS: dict[str, Callable[..., FitResult]] = {"graphfilter": fit_graphfilter_dask}

__all__ = ["DASK_FITTERS", "block_randomized_svd", "fit_graphfilter_dask", "recommend_dask"]
