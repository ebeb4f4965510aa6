"""Event validation shared by every way events arrive: ``POST /v1/events`` and a stream consumer.

One rule for both: the fields of :class:`~gemrec.serve._schemas.EventIn` (the JSON API's schema,
unknown fields rejected), then an ``item_id`` the catalogue knows (the model's items and those
added online, read again from the store once when a record names an unknown one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gemrec.serve._engine import Engine
from gemrec.serve._schemas import EventIn
from gemrec.serve._store import Event, EventStore

__all__ = ["Rejection", "validate_events"]


@dataclass(frozen=True)
class Rejection:
    """Why record ``position`` of a batch was refused.

    ``loc``: the offending field as a path inside the record (empty for the record as a whole);
    ``kind``: pydantic's error type (``missing``, ``string_pattern_mismatch`` ...) or
    ``unknown_id``.
    """

    position: int
    loc: tuple[str | int, ...]
    message: str
    kind: str

    @property
    def reason(self) -> str:
        """One line: ``"item_id: unknown item_id 'x'; add it first with POST /v1/items"``."""
        where = ".".join(str(p) for p in self.loc)
        return f"{where}: {self.message}" if where else self.message


def validate_events(
    records: Sequence[Mapping[str, Any] | EventIn],
    engine: Engine,
    store: EventStore,
    *,
    now: float,
) -> tuple[list[tuple[int, Event]], list[Rejection]]:
    """Check raw event records and turn the valid ones into :class:`Event` s.

    Parameters
    ----------
    records : sequence of mapping or EventIn
        One event each, fields named as in the JSON API (``user_id``, ``item_id``,
        ``event_type``, ``timestamp``, ``event_id``, ``value``). Mappings are validated against
        :class:`EventIn` (strings such as ``"1764300000"`` are read as numbers, as JSON numbers
        are); an ``EventIn`` was already validated by the HTTP layer.
    engine : Engine
        Whose catalogue says which ``item_id`` exist.
    store : EventStore
        Read for items added online when a record names an item the engine does not know yet.
    now : float
        Epoch seconds given to records without a ``timestamp``.

    Returns
    -------
    accepted : list of (int, Event)
        Position in ``records`` and the event (with a server-generated ``event_id`` when the record
        has none), in input order.
    rejected : list of Rejection
        One per refused record (its first error), in input order.
    """
    parsed: list[tuple[int, EventIn]] = []
    rejected: list[Rejection] = []
    for n, record in enumerate(records):
        try:
            # lax: a stream carries every field as text, so "1764300000" is read as a number
            parsed.append((n, EventIn.model_validate(record, strict=False)))
        except ValidationError as exc:
            first = exc.errors()[0]
            rejected.append(Rejection(n, tuple(first["loc"]), first["msg"], first["type"]))
    index = engine.catalogue.index
    if any(e.item_id not in index for _, e in parsed):
        engine.sync_items(store)
    accepted: list[tuple[int, Event]] = []
    for n, e in parsed:
        if e.item_id not in index:
            rejected.append(
                Rejection(
                    n,
                    ("item_id",),
                    f"unknown item_id {e.item_id!r}; add it first with POST /v1/items",
                    "unknown_id",
                )
            )
            continue
        event = Event(
            e.user_id,
            e.item_id,
            e.event_type,
            now if e.timestamp is None else e.timestamp,
            e.value,
            e.event_id or "",
        )
        accepted.append((n, event.with_id()))
    rejected.sort(key=lambda r: r.position)
    return accepted, rejected
