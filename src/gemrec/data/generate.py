"""A synthetic shop of any size written as partitioned Parquet, in bounded memory.

The shop is :mod:`gemrec.data.shop_model`'s (the demo shop's model): the catalogue is drawn once,
then users are drawn in blocks, each block with its own generator, and each block's events are
written as one Parquet part before the next block is drawn. Memory is bounded by the catalogue
(a few arrays of ``n_items``) plus one block (about ``part_events`` events).

Layout of the output directory::

    DIR/
      events/part-00000.parquet ...   user_id, item_id, event_type, timestamp (int64 epoch s),
                                      value (price of purchases, null otherwise), event_id,
                                      session_id; one part per block of users, sorted by time
      items.parquet                   item_id, category, brand, title, price
      users.parquet                   user_id, age_group, country, signup_timestamp
      social.parquet                  user_id, friend_id: both directions of every friendship
                                      (when friends_per_user > 0)
      generate.json                   the parameters and counts

The directory is written under a hidden temporary name beside it and renamed into place at the end,
so an interrupted run never leaves a directory that looks complete. The same parameters and seed
give byte-identical files.

Examples
--------
>>> result = generate_to_parquet(
...     "shop", n_users=1000, n_items=500, n_events=50_000
... )  # doctest: +SKIP
>>> result.n_events  # doctest: +SKIP
49873
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gemrec import __version__
from gemrec.data.shop_model import (
    EVENT_TYPES,
    Catalogue,
    check_categories,
    check_int,
    check_nonnegative,
    check_probability,
    draw_catalogue,
    draw_events,
    draw_social,
    draw_users,
    events_per_view,
    item_ids,
    user_ids,
)
from gemrec.errors import ParameterError

__all__ = ["GenerateResult", "generate_to_parquet", "session_shape"]

#: the marker file of a finished output directory
MARKER = "generate.json"
#: items per row group of ``items.parquet``
_ITEM_CHUNK = 1 << 20
#: views per session when the event budget allows (the demo shop's default)
_VIEWS_PER_SESSION = 5.0
#: the seed key of the friendships (blocks of users use one-element keys ``(b,)``)
_SOCIAL_KEY = (0, 1)


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate_to_parquet` wrote."""

    path: Path
    n_users: int
    n_items: int
    n_events: int
    n_parts: int
    seconds: float

    def summary(self) -> str:
        """The line ``gemrec generate`` prints."""
        rate = self.n_events / max(self.seconds, 1e-9)
        return (
            f"generated {self.n_users:,} users, {self.n_items:,} items, {self.n_events:,} events "
            f"in {self.n_parts} parts in {self.seconds:.1f}s ({rate:,.0f} events/s) -> {self.path}"
        )


def session_shape(n_users: int, n_events: int, per_view: float) -> tuple[float, float]:
    """Mean sessions per user and views per session that give about ``n_events`` events.

    Five views per session (the demo shop's shape) and as many sessions as the budget allows;
    below one five-view session per user, one session with fewer views.

    Raises
    ------
    ParameterError
        When ``n_events`` is below one view (and its funnel) per user.
    """
    per_user = n_events / n_users
    if per_user < per_view:
        raise ParameterError.invalid(
            "events", f"at least {math.ceil(per_view * n_users):,} (one view per user)", n_events
        )
    if per_user >= _VIEWS_PER_SESSION * per_view:
        return per_user / (_VIEWS_PER_SESSION * per_view), _VIEWS_PER_SESSION
    return 1.0, per_user / per_view


def generate_to_parquet(
    output: str | Path,
    *,
    n_users: int,
    n_items: int,
    n_events: int,
    n_categories: int = 20,
    interests_per_user: int = 2,
    focus: float = 0.9,
    popularity_exponent: float = 1.0,
    days: int = 90,
    friends_per_user: float = 4.0,
    friend_homophily: float = 0.8,
    seed: int = 0,
    part_events: int = 1_000_000,
    progress: bool = False,
) -> GenerateResult:
    """Write a synthetic shop of about ``n_events`` events to ``output`` (see the module layout).

    Parameters
    ----------
    output : path
        A new or empty directory, or an earlier output of this function (replaced).
    n_users, n_items : int
    n_events : int
        Target size of the event log; the result is within a fraction of a percent of it (the
        counts are random: sessions and views are ``1 + Poisson`` draws).
    n_categories, interests_per_user, focus, popularity_exponent, days
        As :func:`gemrec.data.synthetic.generate_shop`.
    friends_per_user, friend_homophily
        As :func:`gemrec.data.synthetic.generate_shop`: friendships, mostly among users sharing
        a main interest, written to ``social.parquet`` (none when ``friends_per_user`` is 0).
    seed : int
        The catalogue is drawn from ``SeedSequence(seed)``, block ``b`` of users from
        ``SeedSequence(seed, spawn_key=(b,))``, the friendships from
        ``SeedSequence(seed, spawn_key=(0, 1))``.
    part_events : int
        About this many events per part (sets the block of users per part, and so the memory).
    progress : bool
        A progress bar with the event rate on stderr.

    Returns
    -------
    GenerateResult
    """
    start = time.perf_counter()
    n_users = check_int("users", n_users, 1)
    n_items = check_int("items", n_items, 1)
    n_events = check_int("events", n_events, 1)
    n_categories = check_categories(n_categories, n_items)
    interests_per_user = min(check_int("interests_per_user", interests_per_user, 1), n_categories)
    focus = check_probability("focus", focus)
    popularity_exponent = check_nonnegative("popularity_exponent", popularity_exponent)
    days = check_int("days", days, 1)
    friends_per_user = check_nonnegative("friends_per_user", friends_per_user)
    friend_homophily = check_probability("friend_homophily", friend_homophily)
    seed = check_int("seed", seed, 0)
    part_events = check_int("part_events", part_events, 1)
    per_view = events_per_view(focus, interests_per_user, n_categories)
    sessions, views = session_shape(n_users, n_events, per_view)
    users_per_part = max(1, min(n_users, round(part_events * n_users / n_events)))
    n_parts = math.ceil(n_users / users_per_part)
    output = Path(output)
    _check_output(output)

    params: dict[str, Any] = {
        "users": n_users,
        "items": n_items,
        "events": n_events,
        "categories": n_categories,
        "interests_per_user": interests_per_user,
        "focus": focus,
        "popularity_exponent": popularity_exponent,
        "days": days,
        "friends_per_user": friends_per_user,
        "friend_homophily": friend_homophily,
        "seed": seed,
        "part_events": part_events,
        "sessions_per_user": sessions,
        "views_per_session": views,
        "users_per_part": users_per_part,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    bar = _bar(progress, n_events)
    try:
        catalogue = draw_catalogue(
            np.random.default_rng(np.random.SeedSequence(seed)),
            n_items,
            n_categories,
            popularity_exponent,
        )
        _write_items(catalogue, tmp / "items.parquet")
        written, main_category = _write_events_and_users(
            tmp, catalogue, params, n_parts, users_per_part, bar
        )
        counts = {"users": n_users, "items": n_items, "events": written, "parts": n_parts}
        if friends_per_user > 0:
            counts["friendships"] = _write_social(
                tmp / "social.parquet", main_category, catalogue.n_categories, params
            )
        manifest = {
            "created_by": f"gemrec {__version__} generate",
            "parameters": params,
            "counts": counts,
        }
        (tmp / MARKER).write_text(json.dumps(manifest, indent=2) + "\n")
        if output.exists():
            shutil.rmtree(output)
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return GenerateResult(output, n_users, n_items, written, n_parts, time.perf_counter() - start)


def _check_output(output: Path) -> None:
    if output.exists():
        if not output.is_dir():
            raise ParameterError.invalid("-o", "a directory path (it is an existing file)", output)
        if any(output.iterdir()) and not (output / MARKER).is_file():
            raise ParameterError.invalid(
                "-o", "a new or empty directory, or an earlier `gemrec generate` output", output
            )


def _bar(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total, desc="generate", unit="event", unit_scale=True, file=sys.stderr, leave=False
    )


def _write_items(catalogue: Catalogue, path: Path) -> None:
    writer: pq.ParquetWriter | None = None
    try:
        for lo in range(0, catalogue.n_items, _ITEM_CHUNK):
            frame = catalogue.items_frame(lo, min(lo + _ITEM_CHUNK, catalogue.n_items))
            table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _write_events_and_users(
    root: Path,
    catalogue: Catalogue,
    params: dict[str, Any],
    n_parts: int,
    users_per_part: int,
    bar: Any,
) -> tuple[int, np.ndarray]:
    """Draw and write block after block; returns the number of events written and every user's
    main category."""
    n_users = int(params["users"])
    seed = int(params["seed"])
    events_dir = root / "events"
    events_dir.mkdir()
    cdf = catalogue.category_cdf()
    items = pa.array(item_ids(catalogue.n_items))
    types = pa.array(EVENT_TYPES)
    users_writer: pq.ParquetWriter | None = None
    first_event, first_session = 1, 0
    main_category = np.zeros(n_users, np.int32)
    try:
        for b in range(n_parts):
            lo, hi = b * users_per_part, min((b + 1) * users_per_part, n_users)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b,)))
            block = draw_users(
                rng, hi - lo, catalogue.n_categories, int(params["interests_per_user"])
            )
            ev = draw_events(
                rng,
                block.interest,
                catalogue,
                sessions_per_user=float(params["sessions_per_user"]),
                views_per_session=float(params["views_per_session"]),
                focus=float(params["focus"]),
                days=int(params["days"]),
                cdf=cdf,
            )
            main_category[lo:hi] = block.main_category
            ids = user_ids(n_users, lo, hi)
            users = pa.Table.from_pandas(
                block.users_frame(ids), preserve_index=False
            ).replace_schema_metadata()
            if users_writer is None:
                users_writer = pq.ParquetWriter(root / "users.parquet", users.schema)
            users_writer.write_table(users)
            numbers = pa.array(np.arange(first_event, first_event + len(ev))).cast(pa.string())
            table = pa.table(
                {
                    "user_id": pa.array(ids).take(pa.array(ev.user)),
                    "item_id": items.take(pa.array(ev.item)),
                    "event_type": types.take(pa.array(ev.stage)),
                    "timestamp": pa.array(ev.timestamp, pa.int64()),
                    "value": pa.array(ev.value, pa.float64(), from_pandas=True),
                    "event_id": pc.binary_join_element_wise("e", pc.utf8_lpad(numbers, 7, "0"), ""),
                    "session_id": pa.array(ev.session + first_session, pa.int64()),
                }
            )
            pq.write_table(table, events_dir / f"part-{b:05d}.parquet")
            first_event += len(ev)
            first_session += ev.n_sessions
            if bar is not None:
                bar.update(len(ev))
    finally:
        if users_writer is not None:
            users_writer.close()
    return first_event - 1, main_category


def _write_social(
    path: Path, main_category: np.ndarray, n_categories: int, params: dict[str, Any]
) -> int:
    """Draw the friendships and write them; returns the number of rows (both directions)."""
    rng = np.random.default_rng(np.random.SeedSequence(int(params["seed"]), spawn_key=_SOCIAL_KEY))
    pairs = draw_social(
        rng,
        main_category,
        n_categories,
        float(params["friends_per_user"]),
        float(params["friend_homophily"]),
    )
    ids = pa.array(user_ids(len(main_category)))
    table = pa.table(
        {"user_id": ids.take(pa.array(pairs[:, 0])), "friend_id": ids.take(pa.array(pairs[:, 1]))}
    )
    pq.write_table(table, path)
    return len(pairs)
