"""StreamConsumer against a real redis-server: validation, dead letters, acks, redelivery."""

from __future__ import annotations

import json

import pytest

from gemrec.serve import ServeSettings, load_engine, open_store
from gemrec.serve._ingest import validate_events
from gemrec.stream import RedisStreamBroker, StreamConsumer

pytestmark = pytest.mark.redis


@pytest.fixture
def setup(svd_dir, shop, fresh_redis):
    import redis

    engine = load_engine(ServeSettings(model_dir=svd_dir, dataset_dir=shop, store=fresh_redis))
    store = open_store(fresh_redis)
    r = redis.Redis.from_url(fresh_redis, decode_responses=True)
    yield engine, store, r, fresh_redis
    store.close()
    r.close()


def test_valid_events_stored_invalid_dead_lettered_all_acknowledged(setup):
    engine, store, r, url = setup
    broker = RedisStreamBroker(url, "ev", "g", "c1")
    good = [
        {"user_id": "s1", "item_id": "i3", "event_type": "view", "event_id": "a"},
        {"user_id": "s1", "item_id": "i4", "event_type": "buy", "timestamp": "1700000000"},
    ]
    bad = [
        ({"user_id": "s1", "item_id": "nope", "event_type": "view"}, "unknown item_id 'nope'"),
        ({"user_id": "s1", "item_id": "i3"}, "event_type: Field required"),
        ({"user_id": "s1", "item_id": "i3", "event_type": "v", "colour": "red"}, "colour"),
        ({"user_id": "s1", "item_id": "i3", "event_type": "a b"}, "event_type: String should"),
    ]
    ids = [r.xadd("ev", f) for f in good] + [r.xadd("ev", f) for f, _ in bad]
    consumer = StreamConsumer(broker, store, lambda: engine, batch=100, block_ms=10)
    assert consumer.step() == 6
    events = store.user_events("s1", 10)
    assert [(e.item_id, e.event_type) for e in events] == [("i3", "view"), ("i4", "buy")]
    # an event without event_id is stored under the stream name and its message id
    assert events[0].event_id == "a" and events[1].event_id == f"ev:{ids[1]}"
    assert events[1].timestamp == 1700000000.0
    dead = r.xrange("ev.dead")
    assert [d[1]["source_id"] for d in dead] == ids[2:]
    for (_, fields), (sent, why) in zip(dead, bad, strict=True):
        assert why in fields["reason"], fields["reason"]
        assert json.loads(fields["fields"]) == sent
    assert r.xpending("ev", "g")["pending"] == 0
    s = consumer.stats
    assert (s.read, s.stored, s.duplicates, s.dead) == (6, 2, 0, 4)


def test_stream_and_http_share_one_validation(setup):
    engine, store, _, _ = setup
    records = [
        {"user_id": "u", "item_id": "i1", "event_type": "view", "value": "2.5"},
        {"user_id": "u", "item_id": "i1", "event_type": "view", "value": "lots"},
    ]
    accepted, rejected = validate_events(records, engine, store, now=5.0)
    assert [(n, e.value, e.timestamp) for n, e in accepted] == [(0, 2.5, 5.0)]
    assert [(r.position, r.loc, r.kind) for r in rejected] == [(1, ("value",), "float_parsing")]


def test_batch_of_a_dead_consumer_is_claimed_and_not_applied_twice(setup):
    engine, store, r, url = setup
    for n in range(50):
        r.xadd("ev", {"user_id": f"w{n % 5}", "item_id": f"i{n % 30}", "event_type": "view"})
    dead = RedisStreamBroker(url, "ev", "g", "dead")
    taken = dead.read(30, 10)
    # the dead consumer wrote its batch but died before acknowledging it
    records = [{**m.fields, "event_id": f"ev:{m.id}"} for m in taken]
    accepted, _ = validate_events(records, engine, store, now=0.0)
    assert store.append([e for _, e in accepted]) == [True] * 30
    assert r.xpending("ev", "g")["pending"] == 30

    live = StreamConsumer(
        RedisStreamBroker(url, "ev", "g", "live"),
        store,
        lambda: engine,
        block_ms=10,
        claim_idle_ms=1,
    )
    while live.step():
        pass
    assert live.stats.claimed == 30 and live.stats.duplicates == 30 and live.stats.stored == 20
    assert store.count_events() == 50
    assert sum(store.item_counts().values()) == 50  # the trending counters counted each once
    assert r.xpending("ev", "g")["pending"] == 0


def test_a_batch_that_could_not_be_written_is_read_again(setup):
    _, _, r, url = setup
    r.xadd("ev", {"user_id": "x", "item_id": "i1", "event_type": "view"})
    broker = RedisStreamBroker(url, "ev", "g", "c")
    first = broker.read(10, 10)
    again = broker.read(10, 10)  # not acknowledged (the write failed): delivered again
    assert [m.id for m in again] == [m.id for m in first] and len(first) == 1
    broker.ack([m.id for m in again])
    assert broker.read(10, 10) == []
