"""Durable online state: the event log, item side-information updates and a few shared settings.

Two backends share one interface:

- :class:`SQLiteStore` (default): an embedded SQLite file in WAL mode with ``synchronous=FULL``,
  so a commit, and therefore an acknowledgement, means the events are on disk. Several worker
  processes may open the same file.
- :class:`RedisStore`: everything lives in a Redis server, so every worker and replica shares it.
  Writes are single Lua scripts (atomic); durability is that of the server's AOF policy
  (``appendonly yes`` + ``appendfsync always`` for an fsync per acknowledged write).

Idempotency: an event's ``event_id`` is stored once; a retried event is counted as a duplicate.
Each stored event also counts towards its item in the same atomic write (:meth:`EventStore.
item_counts`), so every worker reads the same "trending now" counts.

Users registered at run time (:meth:`EventStore.put_users`) keep their attributes and social ties
(people they follow) beside the events; :meth:`EventStore.forget_user` removes a user's events,
profile and ties in one atomic write and remembers the user id, so ``gemrec retrain`` leaves the
user's offline history out too (:meth:`EventStore.forgotten_users`).

The blocklist (item ids never recommended) is versioned the way items are: each change records the
id's state (blocked or not) under a new version, so a worker reads only what changed since the
version it holds (:meth:`EventStore.blocklist_changes`), one indexed query when nothing did.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlparse

from gemrec._optional import require
from gemrec.errors import ConfigError, GemrecError

__all__ = [
    "Event",
    "EventStore",
    "ItemRecord",
    "RedisStore",
    "SQLiteStore",
    "StoreUnavailable",
    "UserRecord",
    "open_store",
    "unreachable_as",
]

P = ParamSpec("P")
R = TypeVar("R")


class StoreUnavailable(GemrecError):
    """The store's server cannot be reached right now (the service answers writes with 503 and
    reads from the model alone until it is back)."""


@dataclass(frozen=True)
class Event:
    """One behaviour event with raw ids. ``seq`` is the store's append order (0 before storing)."""

    user_id: str
    item_id: str
    event_type: str
    timestamp: float
    value: float | None = None
    event_id: str = ""
    seq: int = 0

    def with_id(self) -> Event:
        """This event with a server-generated ``event_id`` when the client sent none."""
        if self.event_id:
            return self
        return Event(
            self.user_id,
            self.item_id,
            self.event_type,
            self.timestamp,
            self.value,
            uuid.uuid4().hex,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "item_id": self.item_id,
            "event_type": self.event_type,
            "timestamp": self.timestamp,
            "value": self.value,
            "seq": self.seq,
        }


@dataclass(frozen=True)
class ItemRecord:
    """An item added or updated online. ``seq``: first-insertion order; ``version``: last change."""

    item_id: str
    attrs: dict[str, Any]
    seq: int
    version: int


T = TypeVar("T")


@dataclass(frozen=True)
class UserRecord:
    """A user registered online: attributes and the user ids they follow (sorted)."""

    user_id: str
    attrs: dict[str, Any]
    friends: tuple[str, ...]


#: a user upsert: ``(user_id, attributes to merge, friends or None to keep the stored ones)``
UserUpdate = tuple[str, dict[str, Any], Sequence[str] | None]


class EventStore(ABC):
    """Interface of the online-state backends."""

    url: str

    @abstractmethod
    def append(self, events: Sequence[Event]) -> list[bool]:
        """Durably store events (with ids); per event, False when its id was already stored."""

    @abstractmethod
    def user_events(self, user_id: str, limit: int) -> list[Event]:
        """The user's most recent ``limit`` events, oldest first."""

    @abstractmethod
    def events(self, after_seq: int = 0, batch: int = 10_000) -> Iterator[Event]:
        """All events with ``seq > after_seq`` in append order."""

    @abstractmethod
    def count_events(self) -> int: ...

    @abstractmethod
    def item_counts(self) -> dict[str, int]:
        """Stored events per item id (a retry counted once), incremented atomically with
        :meth:`append`."""

    @abstractmethod
    def put_items(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[bool]:
        """Upsert items (attributes merged into stored ones); per item, True when created."""

    @abstractmethod
    def item_changes(self, after_version: int) -> tuple[int, list[ItemRecord]]:
        """``(current_version, items changed after after_version)``."""

    @abstractmethod
    def put_users(self, users: Sequence[UserUpdate]) -> list[bool]:
        """Upsert users: attributes merged into the stored ones, friends replaced when given (not
        None); a forgotten user posted again is remembered. Per user, True when created."""

    @abstractmethod
    def get_user(self, user_id: str) -> UserRecord | None:
        """The user's stored profile, or None."""

    @abstractmethod
    def forget_user(self, user_id: str) -> int:
        """Remove the user's events (and their item counts), profile and ties in both directions,
        and record the id as forgotten; returns the number of events removed."""

    @abstractmethod
    def forgotten_users(self) -> list[str]:
        """Ids forgotten and not registered again since, sorted."""

    @abstractmethod
    def update_blocklist(
        self, add: Sequence[str] = (), remove: Sequence[str] = (), *, seed: bool = False
    ) -> tuple[int, int]:
        """Block the ids in ``add`` and unblock those in ``remove`` in one atomic write.

        An id in both lists ends unblocked (``remove`` is applied after ``add``). With ``seed``,
        only ids the store has never held are blocked: an id unblocked earlier stays unblocked, so
        seeding the same list again (each worker at start) changes nothing. Every id whose state
        changes is recorded under one new version. Returns ``(n_blocked, n_unblocked)``, the ids
        whose state changed.
        """

    @abstractmethod
    def blocklist_changes(self, after_version: int) -> tuple[int, dict[str, bool]]:
        """``(current_version, {item_id: blocked})`` for the ids changed after ``after_version``
        (an unblocked id maps to False)."""

    def blocklist(self) -> list[str]:
        """The blocked item ids, sorted."""
        _, state = self.blocklist_changes(0)
        return sorted(item_id for item_id, blocked in state.items() if blocked)

    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


# --------------------------------------------------------------------------------------- SQLite
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    timestamp REAL NOT NULL,
    value REAL
);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id, seq);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    version INTEGER NOT NULL,
    attrs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_version ON items(version);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, attrs TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ties (
    user_id TEXT NOT NULL,
    friend_id TEXT NOT NULL,
    PRIMARY KEY (user_id, friend_id)
);
CREATE INDEX IF NOT EXISTS ties_friend ON ties(friend_id);
CREATE TABLE IF NOT EXISTS forgotten (user_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS blocklist (
    item_id TEXT PRIMARY KEY,
    blocked INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS blocklist_version ON blocklist(version);
"""

_COUNTS_SCHEMA = "CREATE TABLE item_counts (item_id TEXT PRIMARY KEY, n INTEGER NOT NULL)"


class SQLiteStore(EventStore):
    """Event store in one SQLite file (WAL, ``synchronous=FULL``: an acknowledged write is on
    disk)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:///{self.path}"
        # a writer and a reader connection, each behind a lock: in WAL mode readers never wait for
        # the writer's fsync, so list requests are not blocked by an ingest commit
        self._wlock, self._rlock = threading.Lock(), threading.Lock()
        self._db = self._connect()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._create_counts()
        self._rdb = self._connect()

    def _create_counts(self) -> None:
        """The per-item counters; a store written before them counts its events once."""
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            exists = cur.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'item_counts'"
            ).fetchone()
            if exists is None:
                cur.execute(_COUNTS_SCHEMA)
                cur.execute(
                    "INSERT INTO item_counts(item_id, n) "
                    "SELECT item_id, COUNT(*) FROM events GROUP BY item_id"
                )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        db.execute("PRAGMA synchronous=FULL")
        return db

    def append(self, events: Sequence[Event]) -> list[bool]:
        out: list[bool] = []
        with self._wlock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for e in events:
                    cur.execute(
                        "INSERT OR IGNORE INTO events(event_id, user_id, item_id, event_type, "
                        "timestamp,"
                        " value) VALUES (?, ?, ?, ?, ?, ?)",
                        (e.event_id, e.user_id, e.item_id, e.event_type, e.timestamp, e.value),
                    )
                    stored = cur.rowcount == 1
                    if stored:
                        cur.execute(
                            "INSERT INTO item_counts(item_id, n) VALUES (?, 1) "
                            "ON CONFLICT(item_id) DO UPDATE SET n = n + 1",
                            (e.item_id,),
                        )
                    out.append(stored)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return out

    @staticmethod
    def _row(r: tuple[Any, ...]) -> Event:
        return Event(
            r[2], r[3], r[4], float(r[5]), None if r[6] is None else float(r[6]), r[1], int(r[0])
        )

    _COLS = "seq, event_id, user_id, item_id, event_type, timestamp, value"

    def user_events(self, user_id: str, limit: int) -> list[Event]:
        with self._rlock:
            rows = self._rdb.execute(
                f"SELECT {self._COLS} FROM events WHERE user_id = ? ORDER BY seq DESC LIMIT ?",
                (user_id, int(limit)),
            ).fetchall()
        return [self._row(r) for r in reversed(rows)]

    def events(self, after_seq: int = 0, batch: int = 10_000) -> Iterator[Event]:
        last = after_seq
        while True:
            with self._rlock:
                rows = self._rdb.execute(
                    f"SELECT {self._COLS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            for r in rows:
                yield self._row(r)
            last = int(rows[-1][0])

    def count_events(self) -> int:
        with self._rlock:
            return int(self._rdb.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def item_counts(self) -> dict[str, int]:
        with self._rlock:
            rows = self._rdb.execute("SELECT item_id, n FROM item_counts").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def put_items(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[bool]:
        created: list[bool] = []
        with self._wlock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                row = cur.execute(
                    "SELECT COALESCE(MAX(version), 0), COUNT(*) FROM items"
                ).fetchone()
                version, count = int(row[0]), int(row[1])
                for item_id, attrs in items:
                    version += 1
                    old = cur.execute(
                        "SELECT attrs FROM items WHERE item_id = ?", (item_id,)
                    ).fetchone()
                    if old is None:
                        cur.execute(
                            "INSERT INTO items(item_id, seq, version, attrs) VALUES (?, ?, ?, ?)",
                            (item_id, count, version, json.dumps(attrs)),
                        )
                        count += 1
                        created.append(True)
                    else:
                        merged = {**json.loads(old[0]), **attrs}
                        cur.execute(
                            "UPDATE items SET version = ?, attrs = ? WHERE item_id = ?",
                            (version, json.dumps(merged), item_id),
                        )
                        created.append(False)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return created

    def item_changes(self, after_version: int) -> tuple[int, list[ItemRecord]]:
        with self._rlock:
            rows = self._rdb.execute(
                "SELECT item_id, attrs, seq, version FROM items WHERE version > ? ORDER BY version",
                (after_version,),
            ).fetchall()
        recs = [ItemRecord(r[0], json.loads(r[1]), int(r[2]), int(r[3])) for r in rows]
        current = max((r.version for r in recs), default=after_version)
        return current, recs

    def _write(self, work: Callable[[sqlite3.Cursor], T]) -> T:
        """Run ``work`` in one IMMEDIATE transaction of the writer connection."""
        with self._wlock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                out = work(cur)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return out

    def put_users(self, users: Sequence[UserUpdate]) -> list[bool]:
        def work(cur: sqlite3.Cursor) -> list[bool]:
            created = []
            for user_id, attrs, friends in users:
                old = cur.execute(
                    "SELECT attrs FROM users WHERE user_id = ?", (user_id,)
                ).fetchone()
                merged = {**(json.loads(old[0]) if old else {}), **attrs}
                cur.execute(
                    "INSERT INTO users(user_id, attrs) VALUES (?, ?) "
                    "ON CONFLICT(user_id) DO UPDATE SET attrs = excluded.attrs",
                    (user_id, json.dumps(merged)),
                )
                if friends is not None:
                    cur.execute("DELETE FROM ties WHERE user_id = ?", (user_id,))
                    cur.executemany(
                        "INSERT OR IGNORE INTO ties(user_id, friend_id) VALUES (?, ?)",
                        [(user_id, f) for f in friends],
                    )
                cur.execute("DELETE FROM forgotten WHERE user_id = ?", (user_id,))
                created.append(old is None)
            return created

        return self._write(work)

    def get_user(self, user_id: str) -> UserRecord | None:
        with self._rlock:
            row = self._rdb.execute(
                "SELECT attrs FROM users WHERE user_id = ?", (user_id,)
            ).fetchone()
            if row is None:
                return None
            ties = self._rdb.execute(
                "SELECT friend_id FROM ties WHERE user_id = ? ORDER BY friend_id", (user_id,)
            ).fetchall()
        return UserRecord(user_id, json.loads(row[0]), tuple(str(t[0]) for t in ties))

    def forget_user(self, user_id: str) -> int:
        def work(cur: sqlite3.Cursor) -> int:
            counts = cur.execute(
                "SELECT item_id, COUNT(*) FROM events WHERE user_id = ? GROUP BY item_id",
                (user_id,),
            ).fetchall()
            cur.executemany(
                "UPDATE item_counts SET n = n - ? WHERE item_id = ?", [(n, i) for i, n in counts]
            )
            cur.execute("DELETE FROM item_counts WHERE n <= 0")
            removed = cur.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
            cur.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            cur.execute("DELETE FROM ties WHERE user_id = ? OR friend_id = ?", (user_id, user_id))
            cur.execute("INSERT OR IGNORE INTO forgotten(user_id) VALUES (?)", (user_id,))
            return int(removed)

        return self._write(work)

    def forgotten_users(self) -> list[str]:
        with self._rlock:
            rows = self._rdb.execute("SELECT user_id FROM forgotten ORDER BY user_id").fetchall()
        return [str(r[0]) for r in rows]

    def update_blocklist(
        self, add: Sequence[str] = (), remove: Sequence[str] = (), *, seed: bool = False
    ) -> tuple[int, int]:
        def work(cur: sqlite3.Cursor) -> tuple[int, int]:
            version = int(
                cur.execute("SELECT COALESCE(MAX(version), 0) FROM blocklist").fetchone()[0]
            )
            state = {
                str(r[0]): bool(r[1])
                for r in cur.execute(
                    "SELECT item_id, blocked FROM blocklist WHERE item_id IN "
                    "(SELECT value FROM json_each(?))",
                    (json.dumps([*add, *remove]),),
                )
            }
            target = dict(state)
            for item_id in add:
                if not (seed and item_id in state):
                    target[item_id] = True
            for item_id in remove:
                target[item_id] = False
            changed = {i: b for i, b in target.items() if state.get(i, False) != b}
            cur.executemany(
                "INSERT INTO blocklist(item_id, blocked, version) VALUES (?, ?, ?) "
                "ON CONFLICT(item_id) DO UPDATE SET blocked = excluded.blocked, "
                "version = excluded.version",
                [(i, int(b), version + 1) for i, b in changed.items()],
            )
            n_blocked = sum(changed.values())
            return n_blocked, len(changed) - n_blocked

        return self._write(work)

    def blocklist_changes(self, after_version: int) -> tuple[int, dict[str, bool]]:
        with self._rlock:
            rows = self._rdb.execute(
                "SELECT item_id, blocked, version FROM blocklist WHERE version > ?",
                (after_version,),
            ).fetchall()
        current = max((int(r[2]) for r in rows), default=after_version)
        return current, {str(r[0]): bool(r[1]) for r in rows}

    def get_meta(self, key: str) -> str | None:
        with self._rlock:
            row = self._rdb.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._wlock:
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def close(self) -> None:
        with self._wlock, self._rlock:
            self._db.close()
            self._rdb.close()


# --------------------------------------------------------------------------------------- Redis
# KEYS: none (names built from the prefix); ARGV: prefix, then 6 fields per event.
_APPEND_LUA = """
local p = ARGV[1]
local out = {}
local n = (#ARGV - 1) / 6
local seq = tonumber(redis.call('GET', p .. 'seq') or '0')
local log, counts, users = {}, {}, {}
for i = 0, n - 1 do
  local b = 1 + i * 6
  local eid, uid, iid = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  if redis.call('HSETNX', p .. 'eid', eid, 1) == 1 then
    seq = seq + 1
    local rec = cjson.encode({seq, eid, uid, iid, ARGV[b + 4], ARGV[b + 5], ARGV[b + 6]})
    log[#log + 1] = rec
    local mine = users[uid]
    if mine == nil then mine = {}; users[uid] = mine end
    mine[#mine + 1] = rec
    counts[iid] = (counts[iid] or 0) + 1
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
-- one command per key, in chunks (Lua's unpack takes a bounded number of values)
for start = 1, #log, 1000 do
  redis.call('RPUSH', p .. 'log', unpack(log, start, math.min(start + 999, #log)))
end
for uid, recs in pairs(users) do
  for start = 1, #recs, 1000 do
    redis.call('RPUSH', p .. 'u:' .. uid, unpack(recs, start, math.min(start + 999, #recs)))
  end
end
for iid, c in pairs(counts) do redis.call('HINCRBY', p .. 'item_count', iid, c) end
if #log > 0 then redis.call('SET', p .. 'seq', seq) end
return out
"""

# ARGV: prefix. Counts the logged events per item once, for a store written before the counters.
_COUNTS_LUA = """
local p = ARGV[1]
if redis.call('EXISTS', p .. 'item_count') == 1 then return 0 end
local n = redis.call('LLEN', p .. 'log')
for start = 0, n - 1, 10000 do
  for _, rec in ipairs(redis.call('LRANGE', p .. 'log', start, start + 9999)) do
    if rec ~= '0' then redis.call('HINCRBY', p .. 'item_count', cjson.decode(rec)[4], 1) end
  end
end
return n
"""

# ARGV: prefix, then item_id, attrs-json pairs
_ITEMS_LUA = """
local p = ARGV[1]
local out = {}
for i = 2, #ARGV, 2 do
  local id, attrs = ARGV[i], ARGV[i + 1]
  local v = redis.call('INCR', p .. 'item_version')
  local old = redis.call('HGET', p .. 'item_attrs', id)
  if old then
    local merged = cjson.decode(old)
    for k, val in pairs(cjson.decode(attrs)) do merged[k] = val end
    redis.call('HSET', p .. 'item_attrs', id, cjson.encode(merged))
    out[#out + 1] = 0
  else
    local s = redis.call('HLEN', p .. 'item_attrs')
    redis.call('HSET', p .. 'item_attrs', id, attrs)
    redis.call('HSET', p .. 'item_seq', id, s)
    out[#out + 1] = 1
  end
  redis.call('ZADD', p .. 'item_changes', v, id)
end
return out
"""


# ARGV: prefix, then user_id, attrs-json, friends-json ("null": keep) triples
_USERS_LUA = """
local p = ARGV[1]
local out = {}
for i = 2, #ARGV, 3 do
  local uid, attrs, friends = ARGV[i], cjson.decode(ARGV[i + 1]), cjson.decode(ARGV[i + 2])
  local old = redis.call('HGET', p .. 'user_attrs', uid)
  local merged = {}
  if old then merged = cjson.decode(old) end
  for k, val in pairs(attrs) do merged[k] = val end
  -- an empty Lua table encodes as [] : store an empty object as such
  local encoded = cjson.encode(merged)
  if next(merged) == nil then encoded = '{}' end
  redis.call('HSET', p .. 'user_attrs', uid, encoded)
  if friends ~= cjson.null then
    for _, f in ipairs(redis.call('SMEMBERS', p .. 'friends:' .. uid)) do
      redis.call('SREM', p .. 'followers:' .. f, uid)
    end
    redis.call('DEL', p .. 'friends:' .. uid)
    for _, f in ipairs(friends) do
      redis.call('SADD', p .. 'friends:' .. uid, f)
      redis.call('SADD', p .. 'followers:' .. f, uid)
    end
  end
  redis.call('SREM', p .. 'forgotten', uid)
  if old then out[#out + 1] = 0 else out[#out + 1] = 1 end
end
return out
"""

# ARGV: prefix, user_id. A forgotten event's slot in the log becomes '0' (seq n stays at index n-1).
_FORGET_LUA = """
local p, uid = ARGV[1], ARGV[2]
local recs = redis.call('LRANGE', p .. 'u:' .. uid, 0, -1)
for _, rec in ipairs(recs) do
  local e = cjson.decode(rec)
  redis.call('HDEL', p .. 'eid', e[2])
  if redis.call('HINCRBY', p .. 'item_count', e[4], -1) <= 0 then
    redis.call('HDEL', p .. 'item_count', e[4])
  end
  redis.call('LSET', p .. 'log', e[1] - 1, '0')
end
redis.call('INCRBY', p .. 'forgotten_events', #recs)
redis.call('DEL', p .. 'u:' .. uid)
redis.call('HDEL', p .. 'user_attrs', uid)
for _, f in ipairs(redis.call('SMEMBERS', p .. 'friends:' .. uid)) do
  redis.call('SREM', p .. 'followers:' .. f, uid)
end
for _, f in ipairs(redis.call('SMEMBERS', p .. 'followers:' .. uid)) do
  redis.call('SREM', p .. 'friends:' .. f, uid)
end
redis.call('DEL', p .. 'friends:' .. uid, p .. 'followers:' .. uid)
redis.call('SADD', p .. 'forgotten', uid)
return #recs
"""


# ARGV: prefix, seed ('1' or '0'), number of ids to add, the ids to add, then the ids to remove.
# Hash ``blocklist``: item_id -> '1' (blocked) or '0' (unblocked); sorted set ``blocklist_changes``:
# item_id scored by the version of its last change; counter ``blocklist_version``.
_BLOCKLIST_LUA = """
local p, seed, n_add = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
local state, target, order = {}, {}, {}
for i = 4, #ARGV do
  local id = ARGV[i]
  if state[id] == nil then
    state[id] = redis.call('HGET', p .. 'blocklist', id) or 'none'
    target[id] = state[id]
    order[#order + 1] = id
  end
  if i >= 4 + n_add then
    target[id] = '0'
  elseif not (seed and state[id] ~= 'none') then
    target[id] = '1'
  end
end
local version, blocked, unblocked = nil, 0, 0
for _, id in ipairs(order) do
  if (target[id] == '1') ~= (state[id] == '1') then
    version = version or redis.call('INCR', p .. 'blocklist_version')
    redis.call('HSET', p .. 'blocklist', id, target[id])
    redis.call('ZADD', p .. 'blocklist_changes', version, id)
    if target[id] == '1' then blocked = blocked + 1 else unblocked = unblocked + 1 end
  end
end
return {blocked, unblocked}
"""


def unreachable_as(
    error: type[GemrecError], what: str
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: a lost connection to Redis (refused, reset, timed out) raises ``error`` naming
    ``what`` and the object's ``url``, one error type for callers to handle."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            import redis

            try:
                return method(*args, **kwargs)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                url = getattr(args[0], "url", "redis")
                raise error(f"{what} {url} unreachable: {exc}") from exc

        return call

    return decorate


_reachable = unreachable_as(StoreUnavailable, "store")


class RedisStore(EventStore):
    """All online state in Redis (shared by every worker and replica).

    Keys (under ``prefix``): ``eid`` (hash of seen event ids), ``seq`` (counter), ``log`` (list of
    all events), ``u:<user_id>`` (list per user), ``item_count`` (hash: events per item),
    ``item_attrs`` / ``item_seq`` (hashes), ``item_changes`` (sorted set by version),
    ``item_version`` (counter), ``meta`` (hash), ``user_attrs`` (hash), ``friends:<user_id>`` /
    ``followers:<user_id>`` (sets), ``forgotten`` (set), ``forgotten_events`` (counter),
    ``blocklist`` (hash: item_id -> 1 or 0), ``blocklist_changes`` (sorted set by version),
    ``blocklist_version`` (counter).
    """

    def __init__(self, url: str, prefix: str = "gemrec:") -> None:
        require("redis", "the Redis event store")
        import redis

        self.url = url
        self.prefix = prefix
        # a stopped server is noticed within a second (connect timeout) rather than hanging
        # requests; reconnection is automatic on the next command
        self._r = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=10, socket_connect_timeout=1
        )
        try:
            self._r.ping()
        except redis.RedisError as exc:
            raise ConfigError(f"--store {url}: cannot reach the Redis server: {exc}") from None
        self._append = self._r.register_script(_APPEND_LUA)
        self._items = self._r.register_script(_ITEMS_LUA)
        self._users = self._r.register_script(_USERS_LUA)
        self._forget = self._r.register_script(_FORGET_LUA)
        self._blocklist = self._r.register_script(_BLOCKLIST_LUA)
        self._r.register_script(_COUNTS_LUA)(args=[prefix])

    @_reachable
    def append(self, events: Sequence[Event]) -> list[bool]:
        argv: list[Any] = [self.prefix]
        for e in events:
            argv += [
                e.event_id,
                e.user_id,
                e.item_id,
                e.event_type,
                repr(float(e.timestamp)),
                "" if e.value is None else repr(float(e.value)),
            ]
        if not events:
            return []
        return [bool(x) for x in self._append(args=argv)]

    @staticmethod
    def _decode(raw: str | bytes) -> Event:
        seq, eid, uid, iid, et, ts, val = json.loads(raw)
        return Event(uid, iid, et, float(ts), None if val == "" else float(val), eid, int(seq))

    @_reachable
    def user_events(self, user_id: str, limit: int) -> list[Event]:
        raws = self._r.lrange(f"{self.prefix}u:{user_id}", -int(limit), -1)
        return [self._decode(r) for r in raws]

    def events(self, after_seq: int = 0, batch: int = 10_000) -> Iterator[Event]:
        # seq n sits at list index n - 1 (seq starts at 1 and every append pushes exactly once)
        start = after_seq
        while True:
            raws = self._r.lrange(f"{self.prefix}log", start, start + batch - 1)
            if not raws:
                return
            for r in raws:
                if r != "0":  # a forgotten event
                    yield self._decode(r)
            start += len(raws)

    @_reachable
    def count_events(self) -> int:
        p = self.prefix
        return int(self._r.llen(f"{p}log")) - int(self._r.get(f"{p}forgotten_events") or 0)

    @_reachable
    def item_counts(self) -> dict[str, int]:
        counts: dict[str, str] = self._r.hgetall(f"{self.prefix}item_count")  # type: ignore[assignment]
        return {item: int(n) for item, n in counts.items()}

    @_reachable
    def put_items(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[bool]:
        argv: list[Any] = [self.prefix]
        for item_id, attrs in items:
            argv += [item_id, json.dumps(attrs)]
        if not items:
            return []
        return [bool(x) for x in self._items(args=argv)]

    @_reachable
    def item_changes(self, after_version: int) -> tuple[int, list[ItemRecord]]:
        p = self.prefix
        pairs: list[tuple[str, float]] = self._r.zrangebyscore(  # type: ignore[assignment]
            f"{p}item_changes", f"({after_version}", "+inf", withscores=True
        )
        if not pairs:
            return after_version, []
        ids = [i for i, _ in pairs]
        pipe = self._r.pipeline(transaction=False)
        pipe.hmget(f"{p}item_attrs", ids)
        pipe.hmget(f"{p}item_seq", ids)
        attrs, seqs = pipe.execute()
        recs = [
            ItemRecord(i, json.loads(a), int(s), int(v))
            for (i, v), a, s in zip(pairs, attrs, seqs, strict=True)
        ]
        return max(r.version for r in recs), recs

    @_reachable
    def put_users(self, users: Sequence[UserUpdate]) -> list[bool]:
        argv: list[Any] = [self.prefix]
        for user_id, attrs, friends in users:
            argv += [
                user_id,
                json.dumps(attrs),
                json.dumps(None if friends is None else [*friends]),
            ]
        if not users:
            return []
        return [bool(x) for x in self._users(args=argv)]

    @_reachable
    def get_user(self, user_id: str) -> UserRecord | None:
        p = self.prefix
        attrs = self._r.hget(f"{p}user_attrs", user_id)
        if attrs is None:
            return None
        friends: set[str] = self._r.smembers(f"{p}friends:{user_id}")  # type: ignore[assignment]
        return UserRecord(user_id, json.loads(str(attrs)), tuple(sorted(friends)))

    @_reachable
    def forget_user(self, user_id: str) -> int:
        return int(self._forget(args=[self.prefix, user_id]))

    @_reachable
    def forgotten_users(self) -> list[str]:
        ids: set[str] = self._r.smembers(f"{self.prefix}forgotten")  # type: ignore[assignment]
        return sorted(ids)

    @_reachable
    def update_blocklist(
        self, add: Sequence[str] = (), remove: Sequence[str] = (), *, seed: bool = False
    ) -> tuple[int, int]:
        if not add and not remove:
            return 0, 0
        argv = [self.prefix, "1" if seed else "0", len(add), *add, *remove]
        n_blocked, n_unblocked = self._blocklist(args=argv)
        return int(n_blocked), int(n_unblocked)

    @_reachable
    def blocklist_changes(self, after_version: int) -> tuple[int, dict[str, bool]]:
        p = self.prefix
        pairs: list[tuple[str, float]] = self._r.zrangebyscore(  # type: ignore[assignment]
            f"{p}blocklist_changes", f"({after_version}", "+inf", withscores=True
        )
        if not pairs:
            return after_version, {}
        # read after the versions: a state is never older than the version it is reported with
        states: list[str | None] = self._r.hmget(f"{p}blocklist", [i for i, _ in pairs])  # type: ignore[assignment]
        return int(max(v for _, v in pairs)), {
            i: s == "1" for (i, _), s in zip(pairs, states, strict=True)
        }

    @_reachable
    def get_meta(self, key: str) -> str | None:
        value = self._r.hget(f"{self.prefix}meta", key)
        return None if value is None else str(value)

    @_reachable
    def set_meta(self, key: str, value: str) -> None:
        self._r.hset(f"{self.prefix}meta", key, value)

    def close(self) -> None:
        self._r.close()


def open_store(url: str) -> EventStore:
    """Open ``sqlite:///PATH`` or ``redis://HOST:PORT/DB``."""
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///") :])
    if url.startswith(("redis://", "rediss://", "unix://")):
        parsed = urlparse(url)
        if parsed.scheme != "unix" and not parsed.hostname:
            raise ConfigError(f"--store {url}: expected redis://HOST:PORT/DB")
        return RedisStore(url)
    raise ConfigError(f"--store must be sqlite:///PATH or redis://HOST:PORT/DB; got {url!r}")
