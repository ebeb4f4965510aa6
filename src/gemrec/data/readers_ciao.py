"""Ciao (Tang, Gao & Liu 2012): ``--format ciao``, MATLAB files read with :func:`scipy.io.loadmat`.

=============================  =====================================================================
file                           becomes
=============================  =====================================================================
``rating_with_timestamp.mat``  events (preferred): variable ``rating``, columns ``userid,
                               productid, categoryid, rating, helpfulness, timestamp`` (Unix s)
``rating.mat``                 events without times (read only when the file above is absent):
                               the same five first columns
``trustnetwork.mat``           the social graph: variable ``trustnetwork``, ``trustor, trustee``
                               (directed: the first trusts the second)
``catalog_ciao.txt``           category names (``id name`` per line), optional
=============================  =====================================================================

Each rating is a ``rating`` event whose ``value`` is the rating (``--columns value=helpfulness``
takes the review's helpfulness instead). Each product's category (the most frequent one where a
product is rated under several) becomes the items table's ``category`` (its name from the
catalogue) and ``category_id``.

A "row" is a row of a matrix and its "line" the row's 1-based number. Ids must be positive
integers, ratings and helpfulness finite numbers and timestamps positive; any other row is a bad
row, reported with its file, row and field like the rows of text formats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gemrec.data.readers import Source, _rename, _require
from gemrec.data.tables import BadRow, Table
from gemrec.errors import DataError, ParameterError

__all__ = ["RATING_FIELDS", "TRUST_FIELDS", "read_ciao"]

#: the columns of ``rating`` (``rating.mat`` has the first five)
RATING_FIELDS = ("userid", "productid", "categoryid", "rating", "helpfulness", "timestamp")
#: the columns of ``trustnetwork``
TRUST_FIELDS = ("trustor", "trustee")
#: what each field must hold: "id" (integer >= 1), "number" (finite), "time" (finite, > 0)
_KINDS = {
    "userid": "id",
    "productid": "id",
    "categoryid": "id",
    "rating": "number",
    "helpfulness": "number",
    "timestamp": "time",
    "trustor": "id",
    "trustee": "id",
}
_EXPECTED = {
    "id": "a positive integer id",
    "number": "a finite number",
    "time": "epoch seconds > 0",
}


def read_ciao(sources: Sequence[str | Path], columns: Mapping[str, str] | None = None) -> Source:
    """Read Ciao's ratings, trust network and category names (see the module docstring).

    Parameters
    ----------
    sources : sequence of path
        The directory holding the ``.mat`` files, or the files themselves.
    columns : mapping, optional
        Canonical name -> field, e.g. ``{"value": "helpfulness"}``.

    Returns
    -------
    Source
    """
    found = _find(sources)
    ratings_path = found.get("rating_with_timestamp.mat") or found.get("rating.mat")
    if ratings_path is None:
        raise DataError(
            "not a Ciao dataset: expected rating_with_timestamp.mat or rating.mat",
            path=str(Path(sources[0])),
        )
    layout = "userid, productid, categoryid, rating, helpfulness (, timestamp)"
    matrix = _matrix(ratings_path, "rating", (5, 6), layout)
    fields = RATING_FIELDS[: matrix.shape[1]]
    table = _table(ratings_path, matrix, fields)
    mapping = {
        "user_id": "userid",
        "item_id": "productid",
        "value": "rating",
        "timestamp": "timestamp",
        **(columns or {}),
    }
    events = _rename(table, mapping)
    _require(events, ("user_id", "item_id"), mapping, "Ciao ratings")
    n = len(events.frame)
    events = Table(
        events.path,
        events.frame.assign(event_type=np.full(n, "rating", dtype=object)),
        events.lines,
        events.bad_rows,
        None,
    )
    files = [ratings_path]
    notes = []
    if "timestamp" not in fields:
        notes.append(f"{ratings_path.name} has no timestamps (rating_with_timestamp.mat has)")
    names = None
    if "catalog_ciao.txt" in found:
        names = _catalog(found["catalog_ciao.txt"])
        files.append(found["catalog_ciao.txt"])
    items, multi = _items(table, names)
    if multi:
        notes.append(
            f"{multi} products are rated under several categories: the most frequent one "
            "(the lower id on a tie) is their category"
        )
    social = None
    if "trustnetwork.mat" in found:
        path = found["trustnetwork.mat"]
        trust = _table(path, _matrix(path, "trustnetwork", (2,), "trustor, trustee"), TRUST_FIELDS)
        social = _rename(trust, {"user_id": "trustor", "friend_id": "trustee"})
        files.append(path)
    return Source(
        "ciao",
        [events],
        items=items,
        social=social,
        files=[*files],
        default_weights={"rating": 1.0},
        timestamps_required="timestamp" in fields,
        notes=notes,
    )


def _find(sources: Sequence[str | Path]) -> dict[str, Path]:
    """The known file names among ``sources`` (directories are listed)."""
    out: dict[str, Path] = {}
    known = ("rating_with_timestamp.mat", "rating.mat", "trustnetwork.mat", "catalog_ciao.txt")
    if not sources:
        raise ParameterError.invalid("SOURCE", "the Ciao directory or its .mat files", [])
    for s in sources:
        p = Path(s)
        if not p.exists():
            raise DataError("no such file or directory", path=str(p))
        for f in sorted(p.iterdir()) if p.is_dir() else [p]:
            if f.name in known:
                out[f.name] = f
            elif p.is_file():
                raise DataError(f"not a Ciao file; expected one of {', '.join(known)}", path=str(f))
    return out


def _matrix(path: Path, name: str, widths: tuple[int, ...], layout: str) -> np.ndarray:
    """Variable ``name`` of a MAT file as a float64 matrix with one of ``widths`` columns."""
    import scipy.io

    try:
        variables = scipy.io.loadmat(str(path))
    except Exception as exc:  # SciPy's parser fails in many ways on a file that is not MAT
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(
            f"cannot read as a MATLAB (.mat) file: {reason}; expected Ciao's "
            "rating_with_timestamp.mat, rating.mat or trustnetwork.mat",
            path=str(path),
        ) from None
    data = {k: v for k, v in variables.items() if not k.startswith("__")}
    if name not in data:
        raise DataError(
            f"expected a variable '{name}'; found {', '.join(sorted(data)) or 'none'}",
            path=str(path),
        )
    m = np.asarray(data[name])
    if m.ndim != 2 or m.shape[1] not in widths or not np.issubdtype(m.dtype, np.number):
        shape = "x".join(map(str, m.shape))
        raise DataError(
            f"variable '{name}' must be a numeric matrix with {' or '.join(map(str, widths))} "
            f"columns ({layout}); found {shape} {m.dtype}",
            path=str(path),
        )
    if m.shape[0] == 0:
        raise DataError(f"variable '{name}' has no rows", path=str(path))
    out: np.ndarray = m.astype(np.float64)
    return out


def _table(path: Path, matrix: np.ndarray, fields: Sequence[str]) -> Table:
    """The matrix as string columns; rows with a value of the wrong kind become bad rows."""
    bad = np.zeros(len(matrix), dtype=bool)
    bad_rows: list[BadRow] = []
    for j, field in enumerate(fields):
        x = matrix[:, j]
        kind = _KINDS[field]
        ok = np.isfinite(x)
        if kind == "id":
            ok &= (x >= 1) & (x == np.round(x))
        elif kind == "time":
            ok &= x > 0
        for i in np.flatnonzero(~ok & ~bad):
            bad_rows.append(
                BadRow(
                    str(path),
                    int(i) + 1,
                    field,
                    f"{field}: expected {_EXPECTED[kind]}; found {_number(x[i])}",
                    ",".join(_number(v) for v in matrix[i]),
                )
            )
        bad |= ~ok
    good = matrix[~bad]
    frame = pd.DataFrame(
        {
            field: good[:, j].astype(np.int64).astype(str)
            if _KINDS[field] == "id"
            else _numbers(good[:, j])
            for j, field in enumerate(fields)
        }
    )
    lines = np.flatnonzero(~bad).astype(np.int64) + 1
    return Table(str(path), frame, lines, sorted(bad_rows, key=lambda b: b.line), None)


def _numbers(x: np.ndarray) -> np.ndarray:
    """Finite floats as text: whole numbers without a decimal point (``5``, ``959670000``)."""
    out = np.empty(len(x), dtype=object)
    whole = (x == np.round(x)) & (np.abs(x) < 2.0**53)
    out[whole] = x[whole].astype(np.int64).astype(str)
    out[~whole] = [repr(float(v)) for v in x[~whole]]
    return out


def _number(v: float) -> str:
    """One value as text (for messages and the raw row of a bad row)."""
    return str(int(v)) if np.isfinite(v) and v == round(v) else repr(float(v))


def _catalog(path: Path) -> dict[str, str]:
    """``id -> name`` of ``catalog_ciao.txt`` (``id name`` per line)."""
    names: dict[str, str] = {}
    text = path.read_bytes().decode("utf-8", errors="replace")
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, _, name = line.strip().partition(" ")
        if not key.isdigit() or not name.strip():
            raise DataError(
                f"expected 'ID NAME' (a category id, a space and its name); found {line[:60]!r}",
                path=str(path),
                line=n,
            )
        names[key] = name.strip()
    return names


def _items(ratings: Table, names: dict[str, str] | None) -> tuple[Table, int]:
    """One row per product: its most frequent category (lower id on a tie), and its name.

    Returns the table and the number of products rated under more than one category.
    """
    f = ratings.frame
    pairs = pd.DataFrame(
        {"item_id": f["productid"], "category_id": f["categoryid"].astype(np.int64)}
    )
    counts = pairs.value_counts().rename("n").reset_index()
    multi = int((counts.groupby("item_id").size() > 1).sum())
    best = counts.sort_values(["item_id", "n", "category_id"], ascending=[True, False, True])
    best = best.drop_duplicates("item_id").reset_index(drop=True)
    category_id = best["category_id"].astype(str)
    frame = pd.DataFrame(
        {
            "item_id": best["item_id"].to_numpy(),
            "category": category_id.map(names).fillna(category_id) if names else category_id,
            "category_id": category_id,
        }
    )
    return Table(ratings.path, frame, np.arange(1, len(frame) + 1, dtype=np.int64), [], None), multi
