"""The one table of behaviour (event type) weights, used by import, analysis and serving.

``gemrec import`` weighs each event by its type with :data:`EVENT_WEIGHTS` (``--weights`` overrides
or adds types, and format readers bring their own: ``rating``, ``interaction``, ``play``); the
weights actually applied are stored in the dataset manifest (``event_weights``). Everything that
weighs events later (interest vectors, the service's online fold-in, ``gemrec retrain``) starts from
that manifest table through :func:`weight_table`, so an online event weighs what the same event
weighed in the training graph.

The values rank the shop funnel by intent: a purchase says five times what a view says, and each
step of view -> click -> fav -> cart -> purchase adds one. A model sees them as edge weights (summed
per user-item pair), interest vectors and fold-in as the share of each event.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "DEFAULT_WEIGHT",
    "EVENT_ALIASES",
    "EVENT_WEIGHTS",
    "canonical_event_type",
    "weight_table",
]

#: weight of each shop event type (read-only; ``gemrec import --weights`` overrides per dataset)
EVENT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"view": 1.0, "click": 2.0, "fav": 3.0, "cart": 4.0, "purchase": 5.0}
)

#: other names of the same behaviours: the Taobao UserBehavior log's ``pv`` and ``buy`` (mapped at
#: import) and ``like``, accepted by the service for events sent under those names
EVENT_ALIASES: Mapping[str, str] = MappingProxyType(
    {"pv": "view", "buy": "purchase", "like": "fav"}
)

#: weight of an event type no table names (``checkin``, or ``rating`` sent to a shop dataset)
DEFAULT_WEIGHT = 1.0


def canonical_event_type(event_type: str) -> str:
    """The table's name for ``event_type`` (aliases resolved, case and surrounding space ignored).

    Examples
    --------
    >>> canonical_event_type(" PV "), canonical_event_type("cart"), canonical_event_type("play")
    ('view', 'cart', 'play')
    """
    name = str(event_type).strip().lower()
    return EVENT_ALIASES.get(name, name)


def weight_table(dataset_weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Weights of event types as a dataset was imported, completed with the defaults and aliases.

    Parameters
    ----------
    dataset_weights : mapping of str -> float, optional
        The dataset manifest's ``event_weights`` (what import applied); they win over
        :data:`EVENT_WEIGHTS`.

    Returns
    -------
    dict of str -> float
        Every type of either table, plus each alias of :data:`EVENT_ALIASES` at its behaviour's
        weight (unless the dataset names the alias itself). Look types up with
        ``table.get(event_type, DEFAULT_WEIGHT)``.

    Examples
    --------
    >>> t = weight_table({"view": 2.0, "rating": 1.0})
    >>> t["view"], t["pv"], t["purchase"], t["rating"]
    (2.0, 2.0, 5.0, 1.0)
    """
    table = {**EVENT_WEIGHTS, **{str(k): float(v) for k, v in (dataset_weights or {}).items()}}
    for alias, name in EVENT_ALIASES.items():
        if alias not in table and name in table:
            table[alias] = table[name]
    return table
