from __future__ import annotations

from pathlib import Path

import pytest

from gemrec.errors import ConfigError
from gemrec.serve import Event, EventStore, SQLiteStore, open_store


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> EventStore:
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'ev.sqlite3'}")
    else:
        s = open_store(request.getfixturevalue("fresh_redis"))
    yield s
    s.close()


def ev(user: str, item: str, eid: str, t: float = 1.0) -> Event:
    return Event(user, item, "view", t, None, eid)


def test_append_is_idempotent_by_event_id(store: EventStore) -> None:
    assert store.append([ev("u", "a", "1"), ev("u", "b", "2"), ev("u", "a", "1")]) == [
        True,
        True,
        False,
    ]
    assert store.append([ev("u", "c", "2"), ev("v", "c", "3")]) == [False, True]
    assert store.count_events() == 3
    assert [e.item_id for e in store.user_events("u", 10)] == ["a", "b"]
    stored = list(store.events())
    assert [(e.user_id, e.item_id) for e in stored] == [("u", "a"), ("u", "b"), ("v", "c")]
    seqs = [e.seq for e in stored]
    assert seqs == sorted(set(seqs)) and seqs[0] >= 1  # append order (SQLite may leave gaps)
    assert [e.item_id for e in store.events(after_seq=seqs[1])] == ["c"]


def test_user_events_keeps_most_recent_in_order(store: EventStore) -> None:
    store.append([ev("u", f"i{n}", f"e{n}", float(n)) for n in range(10)])
    recent = store.user_events("u", 3)
    assert [e.item_id for e in recent] == ["i7", "i8", "i9"]
    assert [e.timestamp for e in recent] == [7.0, 8.0, 9.0]
    assert store.user_events("nobody", 3) == []


def test_items_upsert_merges_and_versions(store: EventStore) -> None:
    assert store.put_items([("x", {"category": "c", "price": 2.0}), ("y", {"brand": "b"})]) == [
        True,
        True,
    ]
    version, recs = store.item_changes(0)
    assert {r.item_id: r.seq for r in recs} == {"x": 0, "y": 1}
    assert store.put_items([("x", {"available": False})]) == [False]
    v2, recs2 = store.item_changes(version)
    assert v2 > version and [r.item_id for r in recs2] == ["x"]
    assert recs2[0].attrs == {"category": "c", "price": 2.0, "available": False}
    assert recs2[0].seq == 0
    assert store.item_changes(v2) == (v2, [])


def test_meta_roundtrip(store: EventStore) -> None:
    assert store.get_meta("k") is None
    store.set_meta("k", "v1")
    store.set_meta("k", "v2")
    assert store.get_meta("k") == "v2"


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ev.sqlite3'}"
    s = open_store(url)
    s.append([ev("u", "a", "1")])
    s.close()
    s = open_store(url)
    assert s.append([ev("u", "a", "1")]) == [False]
    assert s.count_events() == 1
    s.close()


def test_bad_store_url() -> None:
    with pytest.raises(ConfigError, match="sqlite:///PATH or redis://"):
        open_store("postgres://x")


def test_item_counts_count_stored_events_once(store: EventStore) -> None:
    assert store.item_counts() == {}
    store.append([ev("u", "a", "1"), ev("v", "a", "2"), ev("u", "b", "3")])
    store.append([ev("u", "a", "1"), ev("w", "b", "4")])  # the retry of "1" is not counted
    assert store.item_counts() == {"a": 2, "b": 2}


def test_item_counts_are_exact_under_concurrent_writers(store: EventStore) -> None:
    """Two store connections (two workers) append at once: no increment is lost."""
    import threading

    other = open_store(store.url)
    try:

        def write(s: EventStore, tag: str) -> None:
            for n in range(40):
                s.append([ev(f"{tag}{n}", "hot", f"{tag}-{n}"), ev(tag, f"x{n % 3}", f"{tag}x{n}")])

        threads = [
            threading.Thread(target=write, args=(s, tag)) for s, tag in ((store, "a"), (other, "b"))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        counts = other.item_counts()
        assert counts["hot"] == 80 and sum(counts.values()) == 160
    finally:
        other.close()


def test_a_store_written_before_the_counters_counts_its_events_once(store: EventStore) -> None:
    store.append([ev("u", "a", "1"), ev("v", "a", "2"), ev("u", "b", "3")])
    if isinstance(store, SQLiteStore):
        import sqlite3

        db = sqlite3.connect(store.path)
        db.execute("DROP TABLE item_counts")
        db.commit()
        db.close()
    else:
        import redis

        redis.Redis.from_url(store.url).delete(f"{store.prefix}item_count")
    reopened = open_store(store.url)
    assert reopened.item_counts() == {"a": 2, "b": 1}
    again = open_store(store.url)  # counted once, however often the store is opened
    again.append([ev("w", "b", "4")])
    assert again.item_counts() == reopened.item_counts() == {"a": 2, "b": 2}
    reopened.close()
    again.close()


def test_users_upsert_merges_attributes_and_replaces_friends(store: EventStore) -> None:
    assert store.put_users([("a", {"age": 30, "city": "x"}, ["b", "c"]), ("b", {}, None)]) == [
        True,
        True,
    ]
    assert store.put_users([("a", {"city": "y"}, None)]) == [False]
    rec = store.get_user("a")
    assert rec is not None
    assert rec.attrs == {"age": 30, "city": "y"} and rec.friends == ("b", "c")
    store.put_users([("a", {}, ["d"])])
    rec = store.get_user("a")
    assert rec is not None and rec.friends == ("d",) and rec.attrs["city"] == "y"
    b = store.get_user("b")
    assert b is not None and b.attrs == {} and b.friends == ()
    assert store.get_user("nobody") is None
    # posting the same body again changes nothing
    store.put_users([("a", {}, ["d"])])
    assert store.get_user("a") == rec


def test_forget_user_removes_events_ties_and_counts(store: EventStore) -> None:
    store.append([ev("a", "x", "1"), ev("a", "y", "2"), ev("b", "x", "3"), ev("a", "x", "4")])
    store.put_users([("a", {"age": 3}, ["b"]), ("b", {}, ["a", "c"])])
    assert store.forget_user("a") == 3
    assert store.user_events("a", 10) == [] and store.get_user("a") is None
    b = store.get_user("b")
    assert b is not None and b.friends == ("c",)  # ties towards the forgotten user are gone too
    assert [(e.user_id, e.item_id) for e in store.events()] == [("b", "x")]
    assert store.count_events() == 1
    assert store.item_counts() == {"x": 1}
    assert store.forgotten_users() == ["a"]
    # a retried event of the forgotten user is new data again; later events keep their order
    assert store.append([ev("a", "z", "1"), ev("c", "y", "5")]) == [True, True]
    assert [(e.user_id, e.item_id) for e in store.events()] == [
        ("b", "x"),
        ("a", "z"),
        ("c", "y"),
    ]
    assert store.count_events() == 3
    # registering the user again takes them off the forgotten list
    store.put_users([("a", {}, None)])
    assert store.forgotten_users() == []
    assert store.forget_user("never-seen") == 0


def test_blocklist_updates_are_versioned_changes(store: EventStore) -> None:
    assert store.blocklist() == [] and store.blocklist_changes(0) == (0, {})
    assert store.update_blocklist(add=["x", "y", "x"]) == (2, 0)
    v1, changes = store.blocklist_changes(0)
    assert v1 > 0 and changes == {"x": True, "y": True}
    assert store.blocklist_changes(v1) == (v1, {})
    # blocking again and unblocking an id never blocked change nothing: no new version
    assert store.update_blocklist(add=["x"], remove=["never"]) == (0, 0)
    assert store.blocklist_changes(v1) == (v1, {})
    assert store.update_blocklist(add=["z"], remove=["y"]) == (1, 1)
    v2, changes = store.blocklist_changes(v1)
    assert v2 > v1 and changes == {"y": False, "z": True}
    assert store.blocklist() == ["x", "z"]
    # an id in both lists ends unblocked
    assert store.update_blocklist(add=["z", "w"], remove=["z", "w"]) == (0, 1)
    assert store.blocklist() == ["x"]
    # a worker that synced at v1 reads every id changed since, once, in its latest state
    assert store.blocklist_changes(v1)[1] == {"y": False, "z": False}


def test_seeding_the_blocklist_blocks_only_ids_never_blocked(store: EventStore) -> None:
    assert store.update_blocklist(add=["a", "b"], seed=True) == (2, 0)
    store.update_blocklist(remove=["a"])
    version, _ = store.blocklist_changes(0)
    # a restart seeds the same file again: "a" stays unblocked, "c" is new
    assert store.update_blocklist(add=["a", "b", "c"], seed=True) == (1, 0)
    assert store.blocklist() == ["b", "c"]
    assert store.update_blocklist(add=["a", "b", "c"], seed=True) == (0, 0)
    assert store.blocklist_changes(version)[1] == {"c": True}


def test_blocklist_is_shared_by_two_connections_and_durable(store: EventStore) -> None:
    other = open_store(store.url)
    try:
        version, _ = other.blocklist_changes(0)
        store.update_blocklist(add=["p", "q"])
        assert other.blocklist_changes(version)[1] == {"p": True, "q": True}
    finally:
        other.close()
    store.close()
    reopened = open_store(store.url)
    assert reopened.blocklist() == ["p", "q"]
    reopened.close()
