"""Source formats: each reader turns files into event tables with canonical column names.

A reader returns a :class:`Source`: tables of events (string columns ``user_id``, ``item_id``,
``event_type``, ``timestamp`` and optionally ``value``, ``event_id``, ``split``) and optional side
tables (``items``: ``item_id`` + metadata; ``users``: ``user_id`` + metadata; ``social``:
``user_id``, ``friend_id``). Validation, cleaning and splitting happen later
(:mod:`gemrec.data.cleaning`, :mod:`gemrec.data.splits`), the same for every format.

Formats
-------
events
    Generic behaviour logs (CSV/TSV, JSONL or Parquet, with a header).
lightgcn
    A directory with ``train.txt`` and ``test.txt`` (optionally ``valid.txt``): one line per user
    ``user item item ...``; the split is kept.
movielens
    ML-100K (``u.data`` + ``u.item`` + ``u.user``), ML-1M (``ratings.dat`` + ``movies.dat`` +
    ``users.dat``) or an ML-1M implicit split in LightGCN format (``ultragcn_implicit_split/``).
taobao
    Alibaba UserBehavior CSV ``user,item,category,behavior,timestamp`` (no header).
lastfm
    HetRec 2011 Last.fm: ``user_artists.dat`` (play counts), ``user_friends.dat``, ``artists.dat``.
recbole
    RecBole atomic files (:mod:`gemrec.data.readers_recbole`).
ciao
    Ciao's MATLAB files: ratings and trust network (:mod:`gemrec.data.readers_ciao`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from gemrec.data.event_types import canonical_event_type
from gemrec.data.tables import (
    MAX_LINE_BYTES,
    BadRow,
    Table,
    TextFile,
    fingerprint_frame,
    read_csv,
    read_table,
    table_from_frame,
)
from gemrec.errors import DataError, ParameterError

__all__ = [
    "EVENT_COLUMNS",
    "FORMATS",
    "Source",
    "event_files",
    "parse_columns",
    "read_side_table",
    "read_source",
]

EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value", "event_id")
REQUIRED_EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp")
SIDE_KEYS = {"items": ("item_id",), "users": ("user_id",), "social": ("user_id", "friend_id")}


@dataclass
class Source:
    """What a format reader found.

    Attributes
    ----------
    format : str
    events : list of Table
        Canonical columns (see module docstring); all values strings.
    items, users, social : Table or None
        Side tables with canonical key columns.
    files : list of Path or dict
        Every file read (for fingerprints); in-memory tables are given by their fingerprint.
    default_weights : dict or None
        Event type -> weight for formats with their own event types (None: the global defaults).
    weight_by_value : bool
        Multiply each event's weight by its ``value`` (Last.fm play counts).
    has_events : bool
        The source is a real event log (kept as ``events.parquet``).
    timestamps_required : bool
    predefined_split : bool
        Events carry a ``split`` column from the source.
    ordered : bool
        Without timestamps, each user's rows come in the order the user made them (a LightGCN
        file whose lines are not sorted by item): the edges keep that order (``source_order``),
        which models may read as time (graphfilter's ``recency``).
    notes : list of str
        Caveats recorded in the manifest.
    """

    format: str
    events: list[Table]
    items: Table | None = None
    users: Table | None = None
    social: Table | None = None
    files: list[Path | dict[str, object]] = field(default_factory=list)
    default_weights: dict[str, float] | None = None
    weight_by_value: bool = False
    has_events: bool = True
    timestamps_required: bool = True
    predefined_split: bool = False
    ordered: bool = False
    notes: list[str] = field(default_factory=list)


def parse_columns(spec: Sequence[str] | str | None) -> dict[str, str]:
    """Parse ``--columns user_id=uid,item_id=sku`` into ``{"user_id": "uid", "item_id": "sku"}``."""
    if not spec:
        return {}
    parts = [spec] if isinstance(spec, str) else list(spec)
    out: dict[str, str] = {}
    allowed = (*EVENT_COLUMNS, "friend_id")
    for entry in itertools.chain.from_iterable(p.split(",") for p in parts):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise ParameterError.invalid(
                "--columns", "CANONICAL=SOURCE pairs such as user_id=uid", entry
            )
        if key not in allowed:
            raise ParameterError.invalid("--columns", f"keys among {', '.join(allowed)}", key)
        out[key] = value
    return out


def _rename(table: Table, columns: Mapping[str, str]) -> Table:
    reverse = {src: canon for canon, src in columns.items() if src in table.frame.columns}
    if reverse:
        clash = [c for c in reverse.values() if c in table.frame.columns and c not in reverse]
        frame = table.frame.drop(columns=clash).rename(columns=reverse)
        table = Table(table.path, frame, table.lines, table.bad_rows, table.raw)
    return table


def _require(table: Table, required: Sequence[str], columns: Mapping[str, str], what: str) -> None:
    missing = [c for c in required if c not in table.frame.columns]
    if missing:
        found = ", ".join(map(str, table.frame.columns)) or "none"
        hint = ", ".join(f"{c}=NAME" for c in missing)
        raise DataError(
            f"missing column(s) {', '.join(missing)} for {what}; found columns: {found}; "
            f"rename them in the file or map them with --columns {hint}",
            path=table.path,
        )


def read_side_table(
    path: str | Path | pd.DataFrame,
    kind: str,
    columns: Mapping[str, str] | None = None,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Table:
    """Read an ``--items`` / ``--users`` / ``--social`` file and check its key columns."""
    if isinstance(path, pd.DataFrame):
        raw = table_from_frame(path, f"<{kind} DataFrame>")
    else:
        raw = read_table(path, max_line_bytes=max_line_bytes)
    table = _rename(raw, columns or {})
    _require(table, SIDE_KEYS[kind], columns or {}, f"--{kind}")
    return table


# --------------------------------------------------------------------------------------- formats
def _files_in(sources: Sequence[str | Path], patterns: Sequence[str] = ("*",)) -> list[Path]:
    out: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            found = sorted(
                {
                    f
                    for pat in patterns
                    for f in p.glob(pat)
                    if f.is_file() and not f.name.startswith(".")
                }
            )
            if not found:
                raise DataError(
                    f"directory has no files matching {', '.join(patterns)}", path=str(p)
                )
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise DataError("no such file or directory", path=str(p))
    return out


#: the files ``--format events`` reads from a directory
EVENT_FILE_PATTERNS = ("*.csv", "*.tsv", "*.jsonl", "*.ndjson", "*.json", "*.parquet", "*.pq")


def event_files(sources: Sequence[str | Path]) -> list[Path]:
    """The files an ``events`` source names: files as given, directories' event files sorted."""
    return _files_in(sources, EVENT_FILE_PATTERNS)


def read_events(
    sources: Sequence[str | Path],
    columns: Mapping[str, str] | None = None,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Source:
    """Generic event logs: CSV/TSV/JSONL/Parquet files (or directories of them) with a header."""
    files = event_files(sources)
    tables = []
    for f in files:
        t = _rename(read_table(f, max_line_bytes=max_line_bytes), columns or {})
        _require(t, REQUIRED_EVENT_COLUMNS, columns or {}, "an event log")
        tables.append(t)
    return Source("events", tables, files=[*files])


def read_frames(frames: Sequence[pd.DataFrame], columns: Mapping[str, str] | None = None) -> Source:
    """Generic event logs already in memory (e.g. from :mod:`gemrec.data.synthetic`)."""
    tables = []
    prints: list[Path | dict[str, object]] = []
    for k, frame in enumerate(frames):
        name = f"<events DataFrame {k}>"
        t = _rename(table_from_frame(frame, name), columns or {})
        _require(t, REQUIRED_EVENT_COLUMNS, columns or {}, "an event log")
        tables.append(t)
        prints.append(fingerprint_frame(frame, name))
    return Source("events", tables, files=prints)


def _lightgcn_file(path: Path, split: str) -> tuple[Table, bool]:
    """Parse ``user item item ...`` lines into one row per (user, item), in line order; and, for
    the train file, whether the lines keep an order of their own (see :func:`_lines_ordered`)."""
    tf = TextFile.load(path)
    text = tf.data.decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    tokens = [ln.split() for ln in lines]
    counts = np.fromiter((max(len(t) - 1, 0) for t in tokens), dtype=np.int64, count=len(tokens))
    heads = pa.array([t[0] if t else "" for t in tokens], pa.string())
    line_no = np.repeat(np.arange(1, len(tokens) + 1, dtype=np.int64), counts)
    users = heads.take(pa.array(line_no - 1)).to_pandas()
    items = pa.array(
        list(itertools.chain.from_iterable(t[1:] for t in tokens)), pa.string()
    ).to_pandas()
    n = len(items)
    frame = pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "event_type": pd.Series(["interaction"], dtype="str").repeat(n).reset_index(drop=True),
            "timestamp": pd.Series([""], dtype="str").repeat(n).reset_index(drop=True),
            "split": pd.Series([split], dtype="str").repeat(n).reset_index(drop=True),
        }
    )
    # only a training file's order is kept (the held-out files' order is not read)
    return Table(str(path), frame, line_no, [], tf), split == "train" and _lines_ordered(tokens)


def _lines_ordered(tokens: list[list[str]]) -> bool:
    """Whether the lines list their items in an order of their own rather than sorted by id:
    fewer than half of the lines with several items are sorted (numerically when the ids are
    numbers; up to 2,000 lines spread over the file are read). A file written from a
    time-ordered log keeps its users' order (the published Gowalla split does: the last third of
    each training line predicts the test items best); one sorted by id carries no order."""
    several = [t[1:] for t in tokens if len(t) > 2]
    if not several:
        return False
    several = several[:: max(1, len(several) // 2000)]

    def key(token: str) -> tuple[int, int | str]:
        return (0, int(token)) if token.isdigit() else (1, token)

    n_sorted = 0
    for items in several:
        keys = [key(x) for x in items]
        n_sorted += all(a <= b for a, b in itertools.pairwise(keys))
    return n_sorted < len(several) / 2


def read_lightgcn(
    sources: Sequence[str | Path], columns: Mapping[str, str] | None = None, **_: object
) -> Source:
    """LightGCN split directories: ``train.txt`` + ``test.txt`` (+ optional ``valid.txt``)."""
    dirs = {Path(s).parent if Path(s).is_file() else Path(s) for s in sources}
    if len(dirs) != 1:
        raise ParameterError.invalid(
            "SOURCE", "one directory holding train.txt and test.txt", list(map(str, sources))
        )
    root = dirs.pop()
    if not (root / "train.txt").is_file() or not (root / "test.txt").is_file():
        raise DataError(
            "expected a directory holding train.txt and test.txt (LightGCN format)", path=str(root)
        )
    tables, files, ordered = [], [], False
    for split in ("train", "valid", "test"):
        f = root / f"{split}.txt"
        if f.is_file():
            table, in_order = _lightgcn_file(f, split)
            tables.append(table)
            files.append(f)
            ordered = ordered or in_order
    return Source(
        "lightgcn",
        tables,
        files=[*files],
        default_weights={"interaction": 1.0},
        has_events=False,
        timestamps_required=False,
        predefined_split=True,
        ordered=ordered,
    )


def _with(table: Table, **columns: object) -> Table:
    frame = table.frame.assign(**columns)
    return Table(table.path, frame, table.lines, table.bad_rows, table.raw)


def _double_colon(path: Path, names: list[str], encoding: str) -> Table:
    """MovieLens-1M ``a::b::c`` files (a two-character delimiter pyarrow cannot split)."""
    tf = TextFile.load(path, encoding=encoding)
    data = tf.data.replace(b"::", b"\x1f")
    tf2 = TextFile.load(path, data=data)
    return read_csv(path, delimiter="\x1f", column_names=names, quoting=False, text=tf2)


def _genre_names(root: Path) -> list[str]:
    g = root / "u.genre"
    if g.is_file():
        rows = [ln.split("|") for ln in g.read_text(encoding="latin-1").splitlines() if ln.strip()]
        return [r[0] for r in sorted(rows, key=lambda r: int(r[1]))]
    return [f"genre_{i}" for i in range(19)]


def _movielens_source(
    ratings: Table, items: Table | None, users: Table | None, files: list[Path]
) -> Source:
    """Ratings become ``rating`` events (weight 1) with ``value`` = stars."""
    return Source(
        "movielens",
        [_with(ratings, event_type="rating")],
        items=items,
        users=users,
        files=[*files],
        default_weights={"rating": 1.0},
    )


def read_movielens(
    sources: Sequence[str | Path], columns: Mapping[str, str] | None = None, **_: object
) -> Source:
    """MovieLens 100K / 1M directories; ratings become ``rating`` events with ``value`` = stars."""
    if len(sources) != 1:
        raise ParameterError.invalid("SOURCE", "one MovieLens directory", list(map(str, sources)))
    root = Path(sources[0])
    if root.is_file():
        root = root.parent
    if (root / "u.data").is_file():
        ev = read_csv(
            root / "u.data",
            delimiter="\t",
            column_names=["user_id", "item_id", "value", "timestamp"],
            quoting=False,
        )
        files = [root / "u.data"]
        items = users = None
        if (root / "u.item").is_file():
            genres = _genre_names(root)
            names = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *genres]
            t = read_csv(
                root / "u.item",
                delimiter="|",
                column_names=names,
                quoting=False,
                encoding="latin-1",
            )
            flags = t.frame[genres].to_numpy() == "1"
            labels = np.asarray(genres, dtype=object)
            genre_lists = ["|".join(labels[row]) for row in flags]
            frame = t.frame[["item_id", "title", "release_date", "imdb_url"]].assign(
                genres=genre_lists, category=[g.split("|")[0] if g else "" for g in genre_lists]
            )
            items = Table(t.path, frame, t.lines, t.bad_rows, t.raw)
            files.append(root / "u.item")
        if (root / "u.user").is_file():
            users = read_csv(
                root / "u.user",
                delimiter="|",
                column_names=["user_id", "age", "gender", "occupation", "zip"],
                quoting=False,
                encoding="latin-1",
            )
            files.append(root / "u.user")
        return _movielens_source(ev, items, users, files)
    if (root / "ratings.dat").is_file():
        ev = _double_colon(
            root / "ratings.dat", ["user_id", "item_id", "value", "timestamp"], "latin-1"
        )
        files = [root / "ratings.dat"]
        items = users = None
        if (root / "movies.dat").is_file():
            t = _double_colon(root / "movies.dat", ["item_id", "title", "genres"], "latin-1")
            frame = t.frame.assign(category=t.frame["genres"].str.split("|").str[0])
            items = Table(t.path, frame, t.lines, t.bad_rows, t.raw)
            files.append(root / "movies.dat")
        if (root / "users.dat").is_file():
            users = _double_colon(
                root / "users.dat", ["user_id", "gender", "age", "occupation", "zip"], "latin-1"
            )
            files.append(root / "users.dat")
        return _movielens_source(ev, items, users, files)
    for split_dir in (root / "ultragcn_implicit_split", root):
        if (split_dir / "train.txt").is_file() and (split_dir / "test.txt").is_file():
            src = read_lightgcn([split_dir])
            src.format = "movielens"
            src.notes.append(
                f"no ratings file in {root}: imported the implicit split {split_dir} (LightGCN "
                "format, 0-based remapped ids); movie/user metadata not attached because those ids "
                "do not match MovieIDs/UserIDs"
            )
            return src
    raise DataError(
        "not a MovieLens directory: expected u.data (100K), ratings.dat (1M) or "
        "ultragcn_implicit_split/train.txt + test.txt",
        path=str(root),
    )


#: the Taobao UserBehavior log's behaviours, named as the weight table names them
TAOBAO_BEHAVIOURS = {b: canonical_event_type(b) for b in ("pv", "cart", "fav", "buy")}


def read_taobao(
    sources: Sequence[str | Path],
    columns: Mapping[str, str] | None = None,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Source:
    """Taobao UserBehavior CSV (no header): pv/cart/fav/buy -> view/cart/fav/purchase."""
    files = _files_in(sources, ("*.csv",))
    tables = []
    item_frames = []
    for f in files:
        t = read_csv(
            f,
            column_names=["user_id", "item_id", "category", "behavior", "timestamp"],
            max_line_bytes=max_line_bytes,
        )
        beh = t.frame["behavior"].str.strip()
        mapped = beh.map(TAOBAO_BEHAVIOURS).fillna(beh)
        tables.append(
            _with(
                Table(t.path, t.frame.drop(columns=["behavior"]), t.lines, t.bad_rows, t.raw),
                event_type=mapped,
            )
        )
        item_frames.append(
            t.frame[["item_id", "category"]].assign(item_id=t.frame["item_id"].str.strip())
        )
    items_frame = pd.concat(item_frames, ignore_index=True).drop_duplicates("item_id")
    items = Table(
        str(files[0]),
        items_frame.reset_index(drop=True),
        np.arange(1, len(items_frame) + 1),
        [],
        None,
    )
    return Source("taobao", tables, items=items, files=[*files])


def read_lastfm(
    sources: Sequence[str | Path], columns: Mapping[str, str] | None = None, **_: object
) -> Source:
    """HetRec Last.fm: play counts become edge weights, friendships social edges, names metadata."""
    if len(sources) != 1:
        raise ParameterError.invalid(
            "SOURCE", "one HetRec Last.fm directory", list(map(str, sources))
        )
    root = Path(sources[0])
    if root.is_file():
        root = root.parent
    ua = root / "user_artists.dat"
    if not ua.is_file():
        raise DataError("not a HetRec Last.fm directory: expected user_artists.dat", path=str(root))
    t = read_csv(ua, delimiter="\t", quoting=False)
    t = _rename(t, {"user_id": "userID", "item_id": "artistID", "value": "weight"})
    _require(t, ("user_id", "item_id", "value"), {}, "user_artists.dat")
    n = len(t.frame)
    events = _with(
        t, event_type=np.full(n, "play", dtype=object), timestamp=np.full(n, "", dtype=object)
    )
    files = [ua]
    social = items = None
    if (root / "user_friends.dat").is_file():
        s = read_csv(root / "user_friends.dat", delimiter="\t", quoting=False)
        social = _rename(s, {"user_id": "userID", "friend_id": "friendID"})
        _require(social, ("user_id", "friend_id"), {}, "user_friends.dat")
        files.append(root / "user_friends.dat")
    if (root / "artists.dat").is_file():
        a = read_csv(root / "artists.dat", delimiter="\t", quoting=False)
        items = _rename(a, {"item_id": "id"})
        items = Table(
            items.path,
            items.frame.rename(columns={"name": "title"}),
            items.lines,
            items.bad_rows,
            items.raw,
        )
        _require(items, ("item_id",), {}, "artists.dat")
        files.append(root / "artists.dat")
    return Source(
        "lastfm",
        [events],
        items=items,
        social=social,
        files=[*files],
        default_weights={"play": 1.0},
        weight_by_value=True,
        has_events=False,
        timestamps_required=False,
    )


def read_recbole(
    sources: Sequence[str | Path],
    columns: Mapping[str, str] | None = None,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Source:
    """RecBole atomic files (see :mod:`gemrec.data.readers_recbole`)."""
    from gemrec.data.readers_recbole import read_recbole as read

    return read(sources, columns, max_line_bytes=max_line_bytes)


def read_ciao(
    sources: Sequence[str | Path], columns: Mapping[str, str] | None = None, **_: object
) -> Source:
    """Ciao ``.mat`` files (see :mod:`gemrec.data.readers_ciao`); SciPy's MAT reader on demand."""
    from gemrec.data.readers_ciao import read_ciao as read

    return read(sources, columns)


FORMATS: dict[str, Callable[..., Source]] = {
    "events": read_events,
    "lightgcn": read_lightgcn,
    "movielens": read_movielens,
    "taobao": read_taobao,
    "lastfm": read_lastfm,
    "recbole": read_recbole,
    "ciao": read_ciao,
}


def read_source(
    format: str,
    sources: Sequence[str | Path],
    columns: Mapping[str, str] | None = None,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Source:
    """Dispatch to the reader of ``format`` (one of :data:`FORMATS`)."""
    if format not in FORMATS:
        raise ParameterError.invalid("--format", f"one of {', '.join(FORMATS)}", format)
    if not sources:
        raise ParameterError.invalid("SOURCE", "at least one file or directory", [])
    reader = FORMATS[format]
    if format in ("events", "taobao", "recbole"):
        return reader(sources, columns, max_line_bytes=max_line_bytes)
    return reader(sources, columns)


def bad_rows_of(tables: Sequence[Table]) -> list[BadRow]:
    return [b for t in tables for b in t.bad_rows]
