"""The stream consumer: read a batch, validate, store, dead-letter the refused, acknowledge."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gemrec.errors import ParameterError
from gemrec.serve._engine import Engine
from gemrec.serve._ingest import validate_events
from gemrec.serve._store import EventStore, StoreUnavailable
from gemrec.stream._broker import Broker, BrokerUnavailable, Message

__all__ = ["ConsumerStats", "StreamConsumer"]

log = logging.getLogger("gemrec.stream")


@dataclass
class ConsumerStats:
    """Running totals of one consumer.

    ``read``: messages received (new and reclaimed, a redelivery counted again); ``stored``: events
    written; ``duplicates``: valid events whose ``event_id`` the store already held (a redelivery
    after a crash, or a producer's retry); ``dead``: messages sent to the dead-letter stream;
    ``claimed``: messages taken over from other consumers; ``retries``: batches that could not be
    written (store or broker unreachable) and were read again.
    """

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    claimed: int = 0
    retries: int = 0


class StreamConsumer:
    """Apply a broker's event messages to the event store, at least once and idempotently.

    Parameters
    ----------
    broker : Broker
    store : EventStore
        Where events are written (:meth:`EventStore.append`, which ignores a stored ``event_id``).
    engine : callable returning Engine
        The catalogue that validation checks ``item_id`` against; called per batch, so a service
        passes ``lambda: state.engine`` and follows reloads.
    batch : int
        Most messages per read (one store write per batch).
    block_ms : int
        Longest wait of one read for new messages.
    claim_idle_ms : int
        Messages another consumer left unacknowledged this long are taken over (that consumer is
        presumed dead). Checked every ``claim_idle_ms / 2``.

    Notes
    -----
    One message is one event; its fields are those of the JSON API (``user_id``, ``item_id``,
    ``event_type``, optional ``timestamp``, ``event_id``, ``value``), validated by
    :func:`gemrec.serve._ingest.validate_events`, the function behind ``POST /v1/events``. A
    message without ``event_id`` is stored as ``"<stream>:<message id>"`` and one without
    ``timestamp`` at the time the broker received it, so a redelivered message is the same event.

    A batch is acknowledged only after its valid events are written and its invalid ones are in
    the dead-letter stream: a crash in between redelivers the batch, and the store counts its
    events as duplicates rather than applying them twice.
    """

    def __init__(
        self,
        broker: Broker,
        store: EventStore,
        engine: Callable[[], Engine],
        *,
        batch: int = 1000,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
    ) -> None:
        for name, value, low in (
            ("batch", batch, 1),
            ("block_ms", block_ms, 1),
            ("claim_idle_ms", claim_idle_ms, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ParameterError(f"{name} must be an integer >= {low}; got {value!r}")
        self.broker = broker
        self.store = store
        self.engine = engine
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.stats = ConsumerStats()
        self._next_claim = 0.0

    def step(self) -> int:
        """Handle one batch (reclaimed messages first when a claim check is due); the number of
        messages handled (0 when none arrived within ``block_ms``)."""
        messages: list[Message] = []
        now = time.monotonic()
        if now >= self._next_claim:
            messages = self.broker.reclaim(self.claim_idle_ms, self.batch)
            self.stats.claimed += len(messages)
            if not messages:  # the pending list is scanned through: look again later
                self._next_claim = now + self.claim_idle_ms / 2000
        if not messages:
            messages = self.broker.read(self.batch, self.block_ms)
        if messages:
            self.handle(messages)
        return len(messages)

    def handle(self, messages: list[Message]) -> None:
        """Validate, write, dead-letter and acknowledge one batch."""
        self.stats.read += len(messages)
        records: list[dict[str, str | float]] = []
        for m in messages:
            record: dict[str, str | float] = dict(m.fields)
            record.setdefault("event_id", f"{self.broker.name}:{m.id}")
            if "timestamp" not in record:
                record["timestamp"] = _id_seconds(m.id)
            records.append(record)
        engine = self.engine()
        accepted, rejected = validate_events(records, engine, self.store, now=time.time())
        events = [e for _, e in accepted]
        flags = self.store.append(events) if events else []
        stored = [e for e, ok in zip(events, flags, strict=True) if ok]
        engine.record_ingested(stored)
        self.broker.dead_letter([(messages[r.position], r.reason) for r in rejected])
        self.broker.ack([messages[n].id for n, _ in accepted])
        self.stats.stored += len(stored)
        self.stats.duplicates += len(events) - len(stored)
        self.stats.dead += len(rejected)
        if rejected:
            log.warning(
                "%d message(s) sent to the dead-letter stream; first: %s %s",
                len(rejected),
                messages[rejected[0].position].id,
                rejected[0].reason,
            )

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; an unreachable store or broker is waited out (the batch
        is read again), never skipped."""
        wait = 0.05
        while not stop.is_set():
            try:
                self.step()
                wait = 0.05
            except (StoreUnavailable, BrokerUnavailable) as exc:
                self.stats.retries += 1
                log.warning("stream consumer waiting %.2f s: %s", wait, exc)
                stop.wait(wait)
                wait = min(2 * wait, 1.0)


def _id_seconds(message_id: str) -> float:
    """The epoch seconds a Redis stream id (``"<ms>-<n>"``) was created at; now for other ids."""
    head = message_id.split("-", 1)[0]
    return int(head) / 1000 if head.isdigit() else time.time()
