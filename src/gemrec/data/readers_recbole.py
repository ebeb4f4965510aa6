"""RecBole atomic files: ``--format recbole``.

A RecBole dataset is a directory of tab-separated files named after the dataset, each with a typed
header (``user_id:token``, ``rating:float``, ``categories:token_seq``):

============================  ======================================================================
file                          becomes
============================  ======================================================================
``NAME.inter``                events: ``user_id``, ``item_id``, optional ``rating`` (the ``value``)
                              and ``timestamp``; one row per interaction
``NAME.train.inter``,         the same, with the split kept (``--split predefined``, the default
``.valid.inter``,             when they are present; ``.valid.inter`` is optional)
``.test.inter``
``NAME.user``                 the users table (``user_id`` + attributes)
``NAME.item``                 the items table (``item_id`` + attributes)
``NAME.text``                 item text, joined to the items table (``text`` column)
``NAME.net``                  the social graph: ``source_id`` -> ``target_id`` (directed)
============================  ======================================================================

Columns keep their names without the type (``categories:token_seq`` -> ``categories``); a
``token_seq`` value stays one space-separated string. ``float`` and ``float_seq`` values are
checked: a row with a value that is not a number is a bad row, reported with its file, line and
field like every other bad row. ``--columns item_id=artist_id`` maps other names.

Sequential files
    An ``.inter`` file with an ``item_id_list:token_seq`` column (RecBole's sequential layout:
    the history so far, then the next ``item_id``) holds each interaction many times. Every
    line's target is an interaction of that file's split; history items that are never a target of
    their user are interactions of ``train`` (the start of each sequence). Items cut off by the
    source's history limit cannot be recovered.
Index maps
    UniSRec-style ``NAME.item2index`` / ``NAME.user2index`` (``raw_id<TAB>index``, no header) are
    applied when present: ``.inter`` files hold the indices, the other files the raw ids.
Item text
    When every ``text`` value has UniSRec's Amazon layout ``"title. categories. brand. "``, the
    items table also gets ``title``, ``categories``, ``brand`` and ``category`` (the category path)
    columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gemrec.data.cleaning import _show
from gemrec.data.readers import Source, _rename, _require
from gemrec.data.tables import MAX_LINE_BYTES, BadRow, Table, read_csv
from gemrec.errors import DataError, ParameterError

__all__ = ["FIELD_TYPES", "read_recbole"]

#: the field types of a RecBole header
FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
#: split files, in the order their lines are read
SPLIT_SUFFIXES = ("train", "valid", "test")
_SIDE_SUFFIXES = ("user", "item", "text", "net")


def read_recbole(
    sources: Sequence[str | Path],
    columns: Mapping[str, str] | None = None,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Source:
    """Read a RecBole dataset (see the module docstring).

    Parameters
    ----------
    sources : sequence of path
        The dataset's directory, or one of its files (which names the dataset when the directory
        holds several).
    columns : mapping, optional
        Canonical name -> field name (without the type), e.g. ``{"item_id": "artist_id"}``.
    max_line_bytes : int

    Returns
    -------
    Source
    """
    columns = dict(columns or {})
    root, name = _locate(sources)
    files: list[Path] = []
    split_files = [root / f"{name}.{s}.inter" for s in SPLIT_SUFFIXES]
    predefined = split_files[0].is_file() and split_files[2].is_file()
    inters: list[tuple[Path, str | None]]
    if predefined:
        inters = [(f, s) for f, s in zip(split_files, SPLIT_SUFFIXES, strict=True) if f.is_file()]
    elif (root / f"{name}.inter").is_file():
        inters = [(root / f"{name}.inter", None)]
    else:
        raise DataError(
            f"no interactions for RecBole dataset '{name}': expected {name}.inter, or "
            f"{name}.train.inter and {name}.test.inter",
            path=str(root),
        )
    maps = {
        kind: _index_map(root / f"{name}.{kind}2index", max_line_bytes)
        for kind in ("user", "item")
        if (root / f"{name}.{kind}2index").is_file()
    }
    files += [root / f"{name}.{kind}2index" for kind in maps]
    notes: list[str] = []
    if predefined and (root / f"{name}.inter").is_file():
        notes.append(f"{name}.inter not read: the split files {name}.*.inter were imported")

    event_map = {"value": "rating", **columns}
    item_field = columns.get("item_id", "item_id")
    tables: list[Table] = []
    sequential: list[tuple[Table, str]] = []
    for path, split in inters:
        table = _atomic(path, max_line_bytes, skip_checks=("rating", "timestamp"))
        table = _rename(table, event_map)
        _require(table, ("user_id", "item_id"), event_map, f"a RecBole {path.suffix} file")
        files.append(path)
        list_field = f"{item_field}_list"
        if list_field in table.frame.columns:
            sequential.append((table, split or "train"))
            continue
        frame = table.frame
        n = len(frame)
        extra: dict[str, object] = {
            "event_type": np.full(n, "interaction", dtype=object),
            "timestamp": frame["timestamp"] if "timestamp" in frame else np.full(n, "", object),
        }
        if split is not None:
            extra["split"] = np.full(n, split, dtype=object)
        keep = [c for c in ("user_id", "item_id", "value", "event_id") if c in frame]
        table = Table(
            table.path, frame[keep].assign(**extra), table.lines, table.bad_rows, table.raw
        )
        tables.append(_mapped(table, maps))
    if sequential:
        tables += _expand_sequences(sequential, f"{item_field}_list", maps)
        notes.append(
            "sequential .inter files (history + next item): each interaction read once, from "
            "the line where it is a target (its split) or, for the first items of a sequence, "
            "first seen in a history (train); a repeated interaction counts as a duplicate; "
            "items cut off by the source's history limit are not recoverable"
        )

    side: dict[str, Table | None] = {}
    for kind in _SIDE_SUFFIXES:
        path = root / f"{name}.{kind}"
        side[kind] = _atomic(path, max_line_bytes) if path.is_file() else None
        if side[kind] is not None:
            files.append(path)
    users = _side(side["user"], columns, ("user_id",), ".user")
    items = _side(side["item"], columns, ("item_id",), ".item")
    text = _side(side["text"], columns, ("item_id",), ".text")
    net = side["net"]
    # RecBole names the ends of a social link source_id and target_id
    net_map = (
        {"user_id": "source_id", "friend_id": "target_id"}
        if net is not None and "source_id" in net.frame
        else columns
    )
    social = _side(net, net_map, ("user_id", "friend_id"), ".net")
    if text is not None:
        items, note = _with_text(items, text)
        notes += note
    timestamped = any("timestamp" in t.frame and (t.frame["timestamp"] != "").any() for t in tables)
    return Source(
        "recbole",
        tables,
        items=items,
        users=users,
        social=social,
        files=[*files],
        default_weights={"interaction": 1.0},
        has_events=timestamped and not sequential,
        timestamps_required=False,
        predefined_split=predefined,
        notes=notes,
    )


# ----------------------------------------------------------------------------------- the files
def _locate(sources: Sequence[str | Path]) -> tuple[Path, str]:
    """The dataset's directory and name from a directory or one of its files."""
    if len(sources) != 1:
        raise ParameterError.invalid(
            "SOURCE", "one RecBole dataset directory or one of its files", list(map(str, sources))
        )
    p = Path(sources[0])
    if not p.exists():
        raise DataError("no such file or directory", path=str(p))
    if p.is_file():
        return p.parent, _dataset_name(p.name) or p.stem
    names = sorted(
        {n for f in p.iterdir() if f.is_file() and (n := _dataset_name(f.name)) is not None}
    )
    if not names:
        raise DataError(
            "not a RecBole dataset directory: expected NAME.inter or NAME.train.inter + "
            "NAME.test.inter (tab-separated, typed header such as user_id:token)",
            path=str(p),
        )
    if len(names) > 1:
        raise DataError(
            f"directory holds the RecBole datasets {', '.join(names)}; give one of their "
            ".inter files as SOURCE",
            path=str(p),
        )
    return p, names[0]


def _dataset_name(filename: str) -> str | None:
    """``ml-100k`` of ``ml-100k.inter`` / ``ml-100k.train.inter``; None for other files."""
    if not filename.endswith(".inter"):
        return None
    stem = filename[: -len(".inter")]
    for split in SPLIT_SUFFIXES:
        if stem.endswith(f".{split}"):
            return stem[: -len(split) - 1]
    return stem


def _atomic(path: Path, max_line_bytes: int, skip_checks: Sequence[str] = ()) -> Table:
    """One atomic file: columns renamed to their bare names, number fields checked.

    Rows whose ``float`` / ``float_seq`` field is not a number (or numbers) become bad rows,
    except for the fields in ``skip_checks`` (checked later with the events' own messages).
    """
    table = read_csv(path, delimiter="\t", quoting=False, max_line_bytes=max_line_bytes)
    names, types = [], {}
    for field in table.frame.columns:
        name, sep, kind = str(field).rpartition(":")
        if not sep or not name:
            raise DataError(
                f"header field {field!r} has no type; expected NAME:TYPE with TYPE one of "
                f"{', '.join(FIELD_TYPES)} (RecBole atomic file)",
                path=str(path),
                line=1,
            )
        if kind not in FIELD_TYPES:
            raise DataError(
                f"header field {field!r} has type {kind!r}; expected one of "
                f"{', '.join(FIELD_TYPES)}",
                path=str(path),
                line=1,
            )
        if name in types:
            raise DataError(f"header repeats field {name!r}", path=str(path), line=1)
        names.append(name)
        types[name] = kind
    frame = table.frame.set_axis(names, axis=1)
    bad = np.zeros(len(frame), dtype=bool)
    bad_rows = list(table.bad_rows)
    for name, kind in types.items():
        if kind not in ("float", "float_seq") or name in skip_checks:
            continue
        wrong = _not_numbers(frame[name], seq=kind == "float_seq") & ~bad
        expected = "numbers separated by spaces" if kind == "float_seq" else "a number"
        bad_rows += _bad(table, wrong, name, f"expected {expected} ({name}:{kind})", frame[name])
        bad |= wrong
    return _drop(table, frame, bad, bad_rows)


def _not_numbers(values: pd.Series, *, seq: bool) -> np.ndarray:
    """Non-empty values that are not a number (``seq``: not space-separated numbers)."""
    text = values.astype(str).str.strip()
    if seq:
        tokens = text.str.split().explode()
        tokens = tokens[tokens.notna()]
        wrong_token = pd.to_numeric(tokens, errors="coerce").isna()
        out: np.ndarray = (
            wrong_token.groupby(level=0).any().reindex(text.index, fill_value=False).to_numpy()
        )
        return out
    nonempty = (text != "").to_numpy()
    wrong: np.ndarray = nonempty & pd.to_numeric(text, errors="coerce").isna().to_numpy()
    return wrong


def _index_map(path: Path, max_line_bytes: int) -> dict[str, str]:
    """``index -> raw id`` from a UniSRec ``raw_id<TAB>index`` file (it must be intact)."""
    table = read_csv(
        path,
        delimiter="\t",
        column_names=["raw", "index"],
        quoting=False,
        max_line_bytes=max_line_bytes,
    )
    if table.bad_rows:
        b = table.bad_rows[0]
        raise DataError(f"{b.reason} (expected raw_id<TAB>index)", path=b.path, line=b.line)
    index = table.frame["index"].str.strip()
    dup = index.duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"index {index.iat[i]!r} is given to two ids; expected one id per index",
            path=table.path,
            line=int(table.lines[i]),
        )
    return dict(zip(index, table.frame["raw"].str.strip(), strict=True))


def _through(values: pd.Series, mapping: dict[str, str]) -> tuple[pd.Series, np.ndarray]:
    """``values`` mapped through ``mapping``, and a mask of the non-empty ones it does not know."""
    stripped = values.astype(str).str.strip()
    mapped = stripped.map(mapping)
    missing: np.ndarray = (mapped.isna() & (stripped != "")).to_numpy().copy()
    return mapped.fillna(stripped), missing


def _bad(table: Table, rows: np.ndarray, field: str, reason: str, found: pd.Series) -> list[BadRow]:
    """Bad rows of ``table`` at the positions set in ``rows`` (``found``: the value per row)."""
    out = []
    for i in np.flatnonzero(rows):
        line = int(table.lines[i])
        out.append(
            BadRow(
                table.path,
                line,
                field,
                f"{field}: {reason}; found {_show(found.iat[i])}",
                table.raw_row(line),
            )
        )
    return out


def _drop(table: Table, frame: pd.DataFrame, bad: np.ndarray, bad_rows: list[BadRow]) -> Table:
    """``table`` with ``frame`` minus the ``bad`` rows, which join its bad rows."""
    return Table(
        table.path,
        frame[~bad].reset_index(drop=True),
        table.lines[~bad],
        sorted(bad_rows, key=lambda b: b.line),
        table.raw,
    )


def _mapped(table: Table, maps: dict[str, dict[str, str]]) -> Table:
    """Indices of ``user_id`` / ``item_id`` replaced by raw ids; unknown indices are bad rows."""
    if not maps:
        return table
    frame = table.frame.copy()
    bad = np.zeros(len(frame), dtype=bool)
    bad_rows = list(table.bad_rows)
    for kind, mapping in maps.items():
        field = f"{kind}_id"
        values, missing = _through(frame[field], mapping)
        missing &= ~bad
        reason = f"expected an index listed in the {kind}2index file"
        bad_rows += _bad(table, missing, field, reason, frame[field])
        frame[field] = values
        bad |= missing
    return _drop(table, frame, bad, bad_rows)


def _expand_sequences(
    files: list[tuple[Table, str]], list_field: str, maps: dict[str, dict[str, str]]
) -> list[Table]:
    """One event per interaction of sequential files (see the module docstring).

    Returns one table per file: its lines' targets, then the history items first seen in it that
    are never a target of their user. A line with an unknown index is a bad row as a whole.
    """
    item_map = maps.get("item")
    checked: list[Table] = []
    targets, histories = [], []
    for k, (table, split) in enumerate(files):
        table = _mapped(table, {kind: m for kind, m in maps.items() if kind == "user"})
        frame = table.frame
        users = frame["user_id"].astype(str).str.strip().to_numpy()
        items = frame["item_id"].astype(str).str.strip()
        history = frame[list_field].astype(str).str.split().explode().dropna().astype(str)
        rows = history.index.to_numpy()  # the line (frame position) of each history item
        hist_items = history.to_numpy()
        bad = np.zeros(len(frame), dtype=bool)
        bad_rows = list(table.bad_rows)
        if item_map is not None:
            reason = "expected an index listed in the item2index file"
            items, bad = _through(items, item_map)
            bad_rows += _bad(table, bad, "item_id", reason, frame["item_id"])
            mapped, missing = _through(history, item_map)
            first = history[missing]
            first = first[~first.index.duplicated()].reindex(frame.index, fill_value="")
            wrong = (first != "").to_numpy() & ~bad
            bad_rows += _bad(table, wrong, list_field, reason, first)
            bad |= wrong
            hist_items = mapped.to_numpy()
        good = ~bad
        targets.append(
            pd.DataFrame(
                {
                    "user_id": users[good],
                    "item_id": items.to_numpy()[good],
                    "split": split,
                    "file": k,
                    "line": table.lines[good],
                }
            )
        )
        keep = good[rows]
        histories.append(
            pd.DataFrame(
                {
                    "user_id": users[rows[keep]],
                    "item_id": hist_items[keep],
                    "split": "train",
                    "file": k,
                    "line": table.lines[rows[keep]],
                }
            )
        )
        checked.append(_drop(table, frame, bad, bad_rows))
    target = pd.concat(targets, ignore_index=True)
    hist = pd.concat(histories, ignore_index=True)
    is_target = pd.MultiIndex.from_frame(hist[["user_id", "item_id"]]).isin(
        pd.MultiIndex.from_frame(target[["user_id", "item_id"]])
    )
    hist = hist[~is_target].drop_duplicates(["user_id", "item_id"], keep="first")
    events = pd.concat([target, hist], ignore_index=True)
    out = []
    for k, table in enumerate(checked):
        part = events[events["file"] == k].sort_values("line", kind="stable")
        n = len(part)
        frame = pd.DataFrame(
            {
                "user_id": part["user_id"].to_numpy(),
                "item_id": part["item_id"].to_numpy(),
                "event_type": np.full(n, "interaction", dtype=object),
                "timestamp": np.full(n, "", dtype=object),
                "split": part["split"].to_numpy(),
            }
        )
        lines = part["line"].to_numpy(np.int64)
        out.append(Table(table.path, frame, lines, table.bad_rows, table.raw))
    return out


# ------------------------------------------------------------------------------ side tables
def _side(
    table: Table | None, mapping: dict[str, str], keys: Sequence[str], what: str
) -> Table | None:
    if table is None:
        return None
    table = _rename(table, mapping)
    _require(table, keys, mapping, f"a RecBole {what} file")
    return table


def _with_text(items: Table | None, text: Table) -> tuple[Table, list[str]]:
    """The items table with the ``.text`` columns (and the fields of UniSRec's layout)."""
    notes = []
    frame = text.frame
    if "text" in frame and "title" not in frame and (items is None or "title" not in items.frame):
        fields = _unisrec_fields(frame["text"])
        if fields is not None:
            frame = frame.join(fields)
            notes.append(
                "item text in UniSRec's 'title. categories. brand. ' layout: title, categories, "
                "brand and category (the category path) taken from it"
            )
    if items is None:
        return Table(text.path, frame, text.lines, text.bad_rows, text.raw), notes
    extra = frame.drop_duplicates("item_id").set_index("item_id")
    extra = extra[[c for c in extra.columns if c not in items.frame.columns]]
    joined = items.frame.join(extra, on="item_id")
    unmatched = int((~extra.index.isin(items.frame["item_id"])).sum())
    if unmatched:
        notes.append(f"{unmatched} .text rows name an item missing from the .item file")
    bad = sorted([*items.bad_rows, *text.bad_rows], key=lambda b: (b.path, b.line))
    return Table(items.path, joined.fillna(""), items.lines, bad, items.raw), notes


def _unisrec_fields(text: pd.Series) -> pd.DataFrame | None:
    """``title``, ``categories``, ``brand``, ``category`` of "title. categories. brand. " texts.

    None unless every non-empty text has that layout (ends with ". ", at least three parts).
    """
    raw = text.astype(str)
    nonempty = raw.str.strip() != ""
    if not nonempty.any() or not raw[nonempty].str.endswith(". ").all():
        return None
    parts = raw.str.rstrip().str[:-1].str.split(". ", regex=False)
    if (parts[nonempty].str.len() < 3).any():
        return None
    title = parts.apply(lambda p: ". ".join(p[:-2]) if isinstance(p, list) else "")
    categories = parts.str[-2].where(nonempty, "").fillna("").str.strip()
    brand = parts.str[-1].where(nonempty, "").fillna("").str.strip()
    return pd.DataFrame(
        {
            "title": title.where(nonempty, "").str.strip(),
            "categories": categories,
            "brand": brand,
            "category": categories,
        },
        index=text.index,
    )
