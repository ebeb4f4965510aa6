"""``gemrec consume``: apply events from a Redis stream to the event store, until stopped."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gemrec._cli_util import add_command, add_model_and_dataset
from gemrec.errors import GemrecError

__all__ = ["add_parser", "add_stream_options"]

HELP = "apply events from a stream (Redis Streams) to the event store"
DESCRIPTION = (
    "Read events from a Redis stream with a consumer group, validate them as POST /v1/events "
    "does, store them (idempotent by event_id), acknowledge after the write, send refused ones "
    "to STREAM.dead with the reason, and take over messages a dead consumer left pending. "
    "MODEL_DIR and --dataset give the item catalogue that event item_ids are checked against."
)
EXAMPLE = """example:
  gemrec consume models/rp3 --dataset data/shop --from redis://127.0.0.1:6379/0 \\
      --stream gemrec:events --group gemrec
  redis-cli XADD gemrec:events '*' user_id u42 item_id i7 event_type view event_id e-1
Deployment: docs/deployment.md"""


def add_stream_options(parser: argparse.ArgumentParser) -> None:
    """``--stream``, ``--group``, ``--consumer``, ``--claim-idle-ms``, ``--batch`` (shared by
    ``gemrec consume`` and ``gemrec serve --consume``)."""
    parser.add_argument(
        "--stream", default="gemrec:events", help="stream key (default gemrec:events)"
    )
    parser.add_argument("--group", default="gemrec", help="consumer group (default gemrec)")
    parser.add_argument(
        "--consumer", metavar="NAME", help="consumer name in the group (default HOSTNAME-PID)"
    )
    parser.add_argument(
        "--claim-idle-ms",
        type=int,
        default=30_000,
        metavar="MS",
        help="take over messages another consumer left unacknowledged this long (default 30000)",
    )
    parser.add_argument(
        "--batch", type=int, default=1000, help="most messages per read and write (default 1000)"
    )


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "consume", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    add_model_and_dataset(p)
    p.add_argument(
        "--from", dest="source", required=True, metavar="URL", help="redis://HOST:PORT/DB"
    )
    add_stream_options(p)
    p.add_argument("--store", metavar="URL", help="event store (default: the --from server itself)")
    p.add_argument(
        "--stats-seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="print running totals every S seconds (default 10)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from gemrec.serve._engine import load_engine
    from gemrec.serve._settings import ServeSettings
    from gemrec.serve._store import open_store
    from gemrec.stream._consumer import StreamConsumer
    from gemrec.stream._redis import RedisStreamBroker

    if not str(args.source).startswith("redis://"):
        raise GemrecError(f"--from must be redis://HOST:PORT/DB; got {args.source!r}")
    model_dir, dataset_dir = Path(args.model), Path(args.dataset)
    for path, what in ((model_dir, "model"), (dataset_dir, "dataset")):
        if not (path / "manifest.json").is_file():
            raise GemrecError(f"{path}: not a gemrec {what} directory (no manifest.json)")
    store_url = args.store or args.source
    # the consumer only checks item ids: no retrieval index is built (threshold above any size)
    settings = ServeSettings(
        model_dir=model_dir.resolve(),
        dataset_dir=dataset_dir.resolve(),
        store=store_url,
        ann_threshold=2**62,
        precompute_lists="off",
    )
    engine = load_engine(settings)
    store = open_store(store_url)
    broker = RedisStreamBroker(args.source, args.stream, args.group, args.consumer)
    consumer = StreamConsumer(
        broker,
        store,
        lambda: engine,
        batch=args.batch,
        claim_idle_ms=args.claim_idle_ms,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(
        f"gemrec consume: {args.source} stream {args.stream} group {args.group} "
        f"as {broker.consumer} -> {store_url}",
        flush=True,
    )
    worker = threading.Thread(target=consumer.run, args=(stop,), name="gemrec-consume")
    worker.start()
    try:
        while not stop.wait(args.stats_seconds):
            _print_stats(consumer)
    finally:
        stop.set()
        worker.join()
        _print_stats(consumer)
        broker.close()
        store.close()
    return 0


def _print_stats(consumer: Any) -> None:
    s = consumer.stats
    print(
        f"gemrec consume: {time.strftime('%H:%M:%S')} read {s.read} stored {s.stored} "
        f"duplicates {s.duplicates} dead {s.dead} claimed {s.claimed} retries {s.retries}",
        file=sys.stderr,
        flush=True,
    )
