"""Events from a message broker: a consumer that validates, stores and acknowledges them.

:class:`StreamConsumer` reads batches from any :class:`Broker` (the protocol a broker adapter
implements), validates each message exactly as ``POST /v1/events`` does, writes the valid ones to
the event store (idempotent by ``event_id``), publishes the invalid ones to a dead-letter stream
with the reason, and acknowledges a batch only after both writes. :class:`RedisStreamBroker` is the
Redis Streams adapter (consumer groups, ``XREADGROUP``/``XACK``/``XAUTOCLAIM``).

Start it with ``gemrec consume MODEL_DIR --dataset DATASET --from redis://HOST:PORT/DB --stream
NAME --group NAME``, or inside the service with ``gemrec serve ... --consume redis://...``. See
``docs/deployment.md``.
"""

from __future__ import annotations

from gemrec.stream._broker import Broker, BrokerUnavailable, Message
from gemrec.stream._consumer import ConsumerStats, StreamConsumer
from gemrec.stream._redis import RedisStreamBroker

__all__ = [
    "Broker",
    "BrokerUnavailable",
    "ConsumerStats",
    "Message",
    "RedisStreamBroker",
    "StreamConsumer",
]
