"""Redis Streams as the broker: one consumer group, ``XREADGROUP``, ``XACK``, ``XAUTOCLAIM``."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from typing import Any

from gemrec._optional import require
from gemrec.errors import ConfigError
from gemrec.serve._store import unreachable_as
from gemrec.stream._broker import BrokerUnavailable, Message

__all__ = ["RedisStreamBroker"]

_reachable = unreachable_as(BrokerUnavailable, "broker")


class RedisStreamBroker:
    """A Redis stream read through a consumer group (implements :class:`~gemrec.stream.Broker`).

    Parameters
    ----------
    url : str
        ``redis://HOST:PORT/DB``.
    stream : str
        The stream's key; refused messages go to ``"<stream>.dead"``.
    group : str
        The consumer group, created (with the stream) when missing, reading from the stream's
        first entry, so events added before the group existed are consumed too.
    consumer : str or None
        This consumer's name in the group; None: ``"<hostname>-<pid>"``.

    Notes
    -----
    Messages read but not acknowledged stay in the group's pending list. :meth:`read` returns
    this consumer's own pending messages first (after a restart under the same name, or when the
    previous batch could not be written), then new ones (``>``). :meth:`reclaim` takes over
    messages another consumer left pending for ``min_idle_ms`` (``XAUTOCLAIM``, scanning the
    pending list from where the previous call stopped).

    A dead letter is the entry ``{"source_id": id, "reason": why, "fields": json of the original
    fields}`` in ``"<stream>.dead"``, added and acknowledged in one transaction.
    """

    def __init__(self, url: str, stream: str, group: str, consumer: str | None = None) -> None:
        require("redis", "the Redis Streams consumer")
        import redis

        if not stream or not group:
            raise ConfigError(f"--stream and --group must be non-empty; got {stream!r}, {group!r}")
        self.url = url
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.dead_stream = f"{stream}.dead"
        # socket_timeout above the longest XREADGROUP BLOCK the consumer asks for
        self._r = redis.Redis.from_url(
            url,
            decode_responses=True,
            encoding_errors="replace",
            socket_timeout=30,
            socket_connect_timeout=1,
        )
        try:
            self._r.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise ConfigError(f"--stream {stream} --group {group}: {exc}") from None
        except redis.RedisError as exc:
            raise ConfigError(f"--from {url}: cannot reach the Redis server: {exc}") from None
        # ids handed out by read/reclaim and not yet acknowledged: while any are left, read()
        # delivers this consumer's pending list again (a batch that could not be written)
        self._outstanding: set[str] = set()
        self._own_pending = True  # after a start: this consumer's name may own pending messages
        self._claim_cursor = "0-0"

    @property
    def name(self) -> str:
        return self.stream

    @staticmethod
    def _messages(entries: Any) -> list[Message]:
        return [Message(str(i), dict(f)) for i, f in entries if f is not None]

    @_reachable
    def read(self, count: int, block_ms: int) -> list[Message]:
        if self._own_pending or self._outstanding:
            resp: Any = self._r.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=count
            )
            entries = resp[0][1] if resp else []
            pending = self._messages(entries)
            # entries deleted from the stream while pending come back without fields: done
            gone = [str(i) for i, f in entries if f is None]
            if gone:
                self._r.xack(self.stream, self.group, *gone)
            if pending:
                self._outstanding = {m.id for m in pending}
                return pending
            self._own_pending = False
            self._outstanding.clear()
        resp = self._r.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        messages = self._messages(resp[0][1]) if resp else []
        self._outstanding.update(m.id for m in messages)
        return messages

    @_reachable
    def reclaim(self, min_idle_ms: int, count: int) -> list[Message]:
        claimed: Any = self._r.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=min_idle_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        cursor, entries = claimed[0], claimed[1]
        self._claim_cursor = str(cursor)
        messages = self._messages(entries)
        self._outstanding.update(m.id for m in messages)
        return messages

    @_reachable
    def ack(self, ids: Sequence[str]) -> None:
        if ids:
            self._r.xack(self.stream, self.group, *ids)
            self._outstanding.difference_update(ids)

    @_reachable
    def dead_letter(self, refused: Sequence[tuple[Message, str]]) -> None:
        if not refused:
            return
        pipe = self._r.pipeline(transaction=True)
        for message, reason in refused:
            pipe.xadd(
                self.dead_stream,
                {"source_id": message.id, "reason": reason, "fields": json.dumps(message.fields)},
            )
        pipe.xack(self.stream, self.group, *(m.id for m, _ in refused))
        pipe.execute()
        self._outstanding.difference_update(m.id for m, _ in refused)

    def close(self) -> None:
        self._r.close()
