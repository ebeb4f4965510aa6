"""What a broker adapter provides to :class:`~gemrec.stream.StreamConsumer`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gemrec.errors import GemrecError

__all__ = ["Broker", "BrokerUnavailable", "Message"]


class BrokerUnavailable(GemrecError):
    """The broker cannot be reached right now; the consumer waits and tries again."""


@dataclass(frozen=True)
class Message:
    """One message: the broker's id (unique within the stream) and its fields, one event."""

    id: str
    fields: dict[str, str]


class Broker(Protocol):
    """A stream read by a group of consumers, with at-least-once delivery.

    The consumer calls :meth:`read` (and :meth:`reclaim`) for batches, writes them, then calls
    :meth:`dead_letter` for refused messages and :meth:`ack` for the rest. A message that is read
    but never acknowledged (its consumer died) is delivered again: to the same consumer by
    :meth:`read` after a restart, or to another one by :meth:`reclaim`.

    Notes
    -----
    Redis Streams (:class:`~gemrec.stream.RedisStreamBroker`) map one to one: a consumer group,
    ``XREADGROUP``, ``XACK``, ``XAUTOCLAIM`` and a second stream ``NAME.dead``. A Kafka adapter
    would map :meth:`read` to ``poll`` on a consumer in group ``group``; :meth:`ack` to committing,
    per partition, the offset after the highest message whose batch is written (Kafka acknowledges
    a position, not a message, so the consumer commits only after the whole batch is stored);
    :meth:`reclaim` to nothing (the group coordinator reassigns the partitions of a dead consumer,
    which then resumes from the last committed offset); :meth:`dead_letter` to producing to a topic
    ``NAME.dead`` before committing. Redelivery after a crash is handled the same way for both:
    the store ignores an ``event_id`` it already holds.
    """

    @property
    def name(self) -> str:
        """The stream (or topic) name; a message without ``event_id`` is stored as
        ``"<name>:<message id>"``, so its redelivery is recognised."""
        ...

    def read(self, count: int, block_ms: int) -> list[Message]:
        """Up to ``count`` messages for this consumer, waiting at most ``block_ms`` for the first.

        After a restart under the same consumer name, its own unacknowledged messages come first.
        """
        ...

    def reclaim(self, min_idle_ms: int, count: int) -> list[Message]:
        """Up to ``count`` messages read by another consumer and unacknowledged for at least
        ``min_idle_ms``, now owned by this one (empty where the broker reassigns by itself)."""
        ...

    def ack(self, ids: Sequence[str]) -> None:
        """Mark messages as done: they are never delivered again."""
        ...

    def dead_letter(self, refused: Sequence[tuple[Message, str]]) -> None:
        """Publish each refused message with its reason to the dead-letter stream, then
        acknowledge it."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
