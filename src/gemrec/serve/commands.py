"""``gemrec serve``: run the real-time recommendation service with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gemrec._cli_util import add_command, add_model_and_dataset
from gemrec.errors import ConfigError, GemrecError
from gemrec.serve._settings import PRECOMPUTE_CHOICES
from gemrec.stream.commands import add_stream_options

if TYPE_CHECKING:
    from gemrec.serve._settings import ServeSettings

__all__ = ["add_parser", "settings_from_args"]

HELP = "serve real-time recommendations over HTTP"
DESCRIPTION = (
    "Serve MODEL_DIR over HTTP (FastAPI + uvicorn): ingest events, answer recommendations "
    "that reflect them at once, similar items, explanations, cold start, hot reload."
)

EXAMPLE = """example:
  gemrec serve models/rp3 --dataset data/shop
  gemrec serve models/rp3 --dataset data/shop --report reports/shop    # the console shows it
  gemrec serve models/lgn --dataset data/shop --store redis://127.0.0.1:6379/0 \\
      --workers 2 --api-key s3cret
  gemrec serve models/lgn --dataset data/shop --store redis://127.0.0.1:6379/0 \
      --consume redis://127.0.0.1:6379/0 --stream gemrec:events --group gemrec
  curl -s localhost:8000/v1/users/u42/recommendations?k=10
API reference: docs/serving.md; OpenAPI at http://HOST:PORT/docs"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "serve", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    add_model_and_dataset(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--store",
        metavar="URL",
        help="sqlite:///PATH or redis://HOST:PORT/DB (default: sqlite beside the model)",
    )
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--api-key", help="Bearer key for write/admin endpoints (default: $GEMREC_API_KEY)"
    )
    p.add_argument("--protect-reads", action="store_true", help="require the API key on reads too")
    p.add_argument(
        "--insecure-no-api-key",
        action="store_true",
        help="listen on a non-loopback address without an API key (write and admin endpoints "
        "then open to anyone who reaches the port)",
    )
    p.add_argument(
        "--diversity-cap", type=int, metavar="N", help="at most N items per category in a list"
    )
    p.add_argument(
        "--blocklist",
        metavar="FILE",
        help="file of item ids (one a line) never recommended, added at start to the store's "
        "shared blocklist (ids it already holds are left as they are; change it with "
        "POST /v1/admin/blocklist)",
    )
    p.add_argument(
        "--ann-threshold",
        type=int,
        default=20_000,
        metavar="N",
        help="use a faiss HNSW index from N items on (default 20000)",
    )
    p.add_argument(
        "--ann-ef-search",
        type=int,
        default=256,
        metavar="N",
        help="HNSW search beam width over an embedding model's items (default 256)",
    )
    p.add_argument(
        "--precompute-lists",
        choices=PRECOMPUTE_CHOICES,
        default="auto",
        help="compute each known user's list once in the background and serve it until the user "
        "has a fresh event (default auto: for a fusion model whose lists fit in "
        "--precompute-max-mb)",
    )
    p.add_argument(
        "--precompute-max-mb",
        type=int,
        default=1024,
        metavar="MB",
        help="memory the lists may take per worker under auto, 800 bytes per user (default 1024)",
    )
    p.add_argument(
        "--max-batch", type=int, default=10_000, help="most events per POST (default 10000)"
    )
    p.add_argument(
        "--consume",
        metavar="URL",
        help="also apply events from the Redis stream at URL (redis://HOST:PORT/DB), as "
        "`gemrec consume` does; options below",
    )
    add_stream_options(p)
    p.add_argument(
        "--report",
        metavar="REPORT_DIR",
        help="the dataset's behaviour report (gemrec analyze DATASET_DIR -o REPORT_DIR): the "
        "console's Overview shows its figures",
    )
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=_run)


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Typed settings from the parsed command line (checks the directories exist)."""
    from gemrec.serve._settings import ServeSettings

    model_dir, dataset_dir = Path(args.model), Path(args.dataset)
    if not (model_dir / "manifest.json").is_file():
        raise GemrecError(
            f"{model_dir}: not a gemrec model directory (no manifest.json); train one first"
        )
    if not (dataset_dir / "manifest.json").is_file():
        raise GemrecError(f"{dataset_dir}: not a gemrec dataset directory (no manifest.json)")
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1; got {args.workers}")
    blocklist: tuple[str, ...] = ()
    if args.blocklist:
        path = Path(args.blocklist)
        if not path.is_file():
            raise ConfigError(f"--blocklist {path}: file not found")
        blocklist = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    report_dir = None
    if args.report:
        from gemrec.analysis.report import read_report

        read_report(args.report)  # a directory that is not a report fails here, not in the page
        report_dir = Path(args.report).resolve()
    if args.consume and args.consumer and args.workers > 1:
        raise ConfigError(
            f"--consumer {args.consumer} with --workers {args.workers}: each worker needs its own "
            "consumer name; leave --consumer out (each worker is then HOSTNAME-PID)"
        )
    return ServeSettings(
        model_dir=model_dir.resolve(),
        dataset_dir=dataset_dir.resolve(),
        store=args.store,
        api_key=args.api_key or os.environ.get("GEMREC_API_KEY") or None,
        protect_reads=args.protect_reads,
        diversity_cap=args.diversity_cap,
        blocklist=blocklist,
        ann_threshold=args.ann_threshold,
        ann_ef_search=args.ann_ef_search,
        precompute_lists=args.precompute_lists,
        precompute_max_bytes=args.precompute_max_mb * 2**20,
        max_batch=args.max_batch,
        consume=args.consume,
        consume_stream=args.stream,
        consume_group=args.group,
        consume_consumer=args.consumer,
        consume_claim_idle_ms=args.claim_idle_ms,
        consume_batch=args.batch,
        report_dir=report_dir,
    )


def check_listen(host: str, port: int, *, has_key: bool, insecure: bool) -> None:
    """Refuse an open service on a non-loopback address and a port that is taken, before start."""
    if not has_key and not _is_loopback(host) and not insecure:
        raise ConfigError(
            f"--host {host}: refusing to listen beyond this machine without an API key; set "
            "--api-key or GEMREC_API_KEY, or pass --insecure-no-api-key to leave the write and "
            "admin endpoints open"
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"--host {host} --port {port}: cannot listen there ({exc.strerror}); another "
                "process may hold the port: pick another with --port"
            ) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from gemrec.serve._app import SETTINGS_ENV, create_app

    settings = settings_from_args(args)
    check_listen(
        args.host,
        args.port,
        has_key=settings.api_key is not None,
        insecure=args.insecure_no_api_key,
    )
    if settings.api_key is None:
        print(
            "gemrec serve: WARNING: no API key: POST /v1/events, /v1/items and /v1/admin/* "
            "accept requests from anyone who can reach the port; set --api-key or GEMREC_API_KEY",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"gemrec serve: {settings.model_dir} on http://{args.host}:{args.port} "
        f"(store {settings.store_url.split('://')[0]}, {args.workers} worker(s)); docs at /docs",
        flush=True,
    )
    if args.workers == 1:
        uvicorn.run(
            create_app(settings),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=False,
        )
    else:
        os.environ[SETTINGS_ENV] = settings.to_json()
        uvicorn.run(
            "gemrec.serve._app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
            access_log=False,
        )
    return 0
