"""Typed, frozen settings of the recommendation service (parsed once at the CLI edge)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from gemrec.errors import ConfigError

__all__ = ["PRECOMPUTE_CHOICES", "ServeSettings"]

#: values of ``ServeSettings.precompute_lists``
PRECOMPUTE_CHOICES = ("auto", "on", "off")


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``create_app`` needs; immutable, unknown keys rejected by :meth:`from_dict`.

    Parameters
    ----------
    model_dir : Path
        A saved gemrec model (``manifest.json`` + ``arrays.npz``).
    dataset_dir : Path
        The dataset the model was trained on (id maps, item side information, social graph).
    store : str or None
        ``sqlite:///PATH`` or ``redis://HOST:PORT/DB``; None: ``sqlite:///<model_dir>/events.sqlite3``.
    api_key : str or None
        Bearer key required on write and admin endpoints (and on reads when ``protect_reads``).
    protect_reads : bool
        Also require the key on read endpoints.
    max_batch : int
        Most events (or items) in one POST (the schema's ``maxItems``); larger batches get 422.
    max_body_bytes : int
        Largest accepted request body; larger bodies get 413 before they are parsed.
    max_k : int
        Largest ``k`` a list request may ask for.
    ann_threshold : int
        Catalogues with at least this many items are searched with a faiss HNSW index; smaller ones
        exactly.
    ann_ef_search : int
        HNSW search beam width over an embedding model's items (``efSearch``; wider finds more
        of the exact list at more CPU per request). graphfilter's low-rank index and a fusion's
        channels keep 64: their candidates are joined by others (the sparse part, the other
        channels) before exact scoring.
    precompute_lists : {"auto", "on", "off"}
        Compute each known user's list once, in a background thread, and serve it while the user
        has no fresh event (:mod:`gemrec.serve._precomputed`). ``"auto"``: for a fusion, whose
        lists cost several single models' CPU per request, when the lists fit in
        ``precompute_max_bytes``.
    precompute_max_bytes : int
        Memory the lists may take per worker under ``"auto"`` (800 bytes per user; the default
        1 GiB holds 1.34M users); above it a fusion scores every list per request and start-up
        logs a warning. ``"on"`` ignores it.
    diversity_cap : int or None
        At most this many items of one category per list (None: no cap).
    blocklist : tuple of str
        Raw item ids never recommended, added at start to the store's blocklist (shared by every
        worker and replica; ``/v1/admin/blocklist`` changes it) unless the store already holds
        them: an id unblocked through the API stays unblocked when a worker starts again.
    online_pseudo_count : float
        ``c`` in the interest update ``alpha = W / (W + c)`` (W = summed weight of online events).
    history_limit : int
        Most recent online events per user used for the interest vector.
    trending_half_life_days : float
        Half-life of the time decay behind the "trending" cold-start list.
    trending_cache_seconds : float
        How long a worker reuses the store's per-item event counts behind "trending now" before
        reading them again (its own writes show at once; other workers' within this delay).
    reload_poll_seconds : float
        How often each worker checks the store for a reload another worker announced.
    blas_threads : int
        BLAS/OpenMP threads per worker process. One request is a single matrix-vector product, which
        a second thread does not speed up but, on a busy machine, can stall for a whole time slice.
    consume : str or None
        ``redis://HOST:PORT/DB``: each worker also runs a :class:`gemrec.stream.StreamConsumer`
        on this server's stream ``consume_stream`` in group ``consume_group`` (None: no consumer).
    consume_stream, consume_group : str
        The stream key and the consumer group.
    consume_consumer : str or None
        This worker's consumer name (None: ``"<hostname>-<pid>"``).
    consume_claim_idle_ms : int
        Messages another consumer left unacknowledged this long are taken over.
    consume_batch : int
        Most messages per read and store write.
    report_dir : Path or None
        A behaviour analysis report of the dataset (``gemrec analyze DATASET_DIR -o REPORT_DIR``)
        whose figures the console's Overview shows (None: none shown).
    """

    model_dir: Path
    dataset_dir: Path
    store: str | None = None
    api_key: str | None = None
    protect_reads: bool = False
    max_batch: int = 10_000
    max_body_bytes: int = 4 * 1024 * 1024
    max_k: int = 1000
    ann_threshold: int = 20_000
    ann_ef_search: int = 256
    precompute_lists: str = "auto"
    precompute_max_bytes: int = 2**30
    diversity_cap: int | None = None
    blocklist: tuple[str, ...] = ()
    online_pseudo_count: float = 2.0
    history_limit: int = 200
    trending_half_life_days: float = 7.0
    trending_cache_seconds: float = 1.0
    reload_poll_seconds: float = 1.0
    blas_threads: int = 1
    consume: str | None = None
    consume_stream: str = "gemrec:events"
    consume_group: str = "gemrec"
    consume_consumer: str | None = None
    consume_claim_idle_ms: int = 30_000
    consume_batch: int = 1000
    report_dir: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_dir", Path(self.model_dir))
        object.__setattr__(self, "dataset_dir", Path(self.dataset_dir))
        object.__setattr__(self, "blocklist", tuple(str(b) for b in self.blocklist))
        if self.report_dir is not None:
            object.__setattr__(self, "report_dir", Path(self.report_dir))
        for name in (
            "max_batch",
            "max_body_bytes",
            "max_k",
            "ann_threshold",
            "ann_ef_search",
            "history_limit",
            "blas_threads",
            "consume_claim_idle_ms",
            "consume_batch",
            "precompute_max_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"serve setting '{name}' must be a positive integer; got {value!r}"
                )
        if self.precompute_lists not in PRECOMPUTE_CHOICES:
            raise ConfigError(
                "serve setting 'precompute_lists' must be one of "
                f"{', '.join(PRECOMPUTE_CHOICES)}; got {self.precompute_lists!r}"
            )
        if self.diversity_cap is not None and (
            not isinstance(self.diversity_cap, int) or self.diversity_cap < 1
        ):
            raise ConfigError(
                "serve setting 'diversity_cap' must be a positive integer or None; "
                f"got {self.diversity_cap!r}"
            )
        if self.online_pseudo_count <= 0:
            raise ConfigError(
                f"serve setting 'online_pseudo_count' must be > 0; got {self.online_pseudo_count!r}"
            )
        if not self.trending_cache_seconds >= 0:
            raise ConfigError(
                "serve setting 'trending_cache_seconds' must be >= 0; "
                f"got {self.trending_cache_seconds!r}"
            )
        if self.store is not None and not self.store.startswith(("sqlite:///", "redis://")):
            raise ConfigError(
                f"--store must be sqlite:///PATH or redis://HOST:PORT/DB; got {self.store!r}"
            )

        if self.consume is not None and not self.consume.startswith("redis://"):
            raise ConfigError(f"--consume must be redis://HOST:PORT/DB; got {self.consume!r}")

    @property
    def store_url(self) -> str:
        """The event store URL, defaulting to an SQLite file beside the model."""
        return self.store or f"sqlite:///{self.model_dir / 'events.sqlite3'}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServeSettings:
        """Build from a plain dict (e.g. JSON), rejecting unknown keys."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown serve setting(s) {', '.join(unknown)}; "
                f"expected some of: {', '.join(sorted(names))}"
            )
        data = dict(data)
        if "blocklist" in data:
            data["blocklist"] = tuple(data["blocklist"])
        return cls(**data)

    def to_json(self) -> str:
        d = asdict(self)
        d["model_dir"] = str(self.model_dir)
        d["dataset_dir"] = str(self.dataset_dir)
        d["blocklist"] = list(self.blocklist)
        d["report_dir"] = None if self.report_dir is None else str(self.report_dir)
        return json.dumps(d)
