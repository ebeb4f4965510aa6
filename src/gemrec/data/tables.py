"""Low-level readers: a text or Parquet file into a table of string columns with exact line numbers.

Every reader returns a :class:`Table`: the parsed rows as string columns (``""`` = missing), the
1-based physical line number of each row in its file (the Parquet row number for Parquet files),
and the rows that could not be split into fields (wrong field count, broken JSON) as
:class:`BadRow`. Whole-file problems (empty, binary, wrong encoding, a line too long to be a row)
raise :class:`~gemrec.errors.DataError` with one line naming the file.

The happy path is vectorised (pyarrow's CSV/JSON parsers); the slow Python loop only runs when
pyarrow's row numbering cannot be trusted (quoted values spanning lines) or a JSON file has broken
lines.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from gemrec.errors import DataError

__all__ = [
    "MAX_LINE_BYTES",
    "BadRow",
    "Table",
    "TextFile",
    "file_kind",
    "fingerprint_file",
    "fingerprint_frame",
    "read_csv",
    "read_jsonl",
    "read_parquet",
    "read_table",
    "table_from_frame",
]

#: a line longer than this is not a row of a behaviour log (binary data, a minified dump ...)
MAX_LINE_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class BadRow:
    """A row that was rejected, with where it came from and why."""

    path: str
    line: int
    field: str | None
    reason: str
    raw: str = ""


@dataclass
class TextFile:
    """A text file loaded into memory with the byte offsets of its lines.

    Attributes
    ----------
    path : str
    data : bytes
        UTF-8 bytes (a leading BOM removed; other encodings already converted).
    starts, ends : numpy.ndarray of int64, shape (n_lines,)
        Byte offsets of each physical line (``ends`` excludes ``\\r\\n``).
    """

    path: str
    data: bytes
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        encoding: str = "utf-8",
        max_line_bytes: int = MAX_LINE_BYTES,
        data: bytes | None = None,
    ) -> TextFile:
        """Read ``path`` and check it is a non-empty text file with sane lines.

        Raises
        ------
        DataError
            Empty file, binary content (NUL bytes), invalid ``encoding``, or a line longer than
            ``max_line_bytes``.
        """
        p = str(path)
        if data is None:
            data = _read_bytes(path)
        if data.startswith(_BOM):
            data = data[len(_BOM) :]
        if not data.strip():
            raise DataError("file is empty; expected a header and at least one row", path=p)
        buf = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(buf == 10)
        nul = np.flatnonzero(buf == 0)
        if len(nul):
            line = int(np.searchsorted(nl, nul[0])) + 1
            raise DataError(
                f"binary data (NUL byte at byte {int(nul[0])}, line {line}); expected a text file "
                "(CSV/TSV/JSONL): is this a compressed or binary file?",
                path=p,
            )
        if encoding.replace("-", "").lower() in ("utf8", "ascii") and not _utf8_ok(data):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = int(np.searchsorted(nl, exc.start)) + 1
                col = exc.start - (int(nl[line - 2]) + 1 if line > 1 else 0) + 1
                raise DataError(
                    f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at line {line}, column {col}); "
                    "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
                    path=p,
                ) from None
        else:
            data = data.decode(encoding).encode("utf-8")
            buf = np.frombuffer(data, dtype=np.uint8)
            nl = np.flatnonzero(buf == 10)
        starts = np.concatenate([[0], nl + 1]).astype(np.int64)
        ends = np.concatenate([nl, [len(data)]]).astype(np.int64)
        if starts[-1] == len(data):  # the file ends with a newline: no final partial line
            starts, ends = starts[:-1], ends[:-1]
        lengths = ends - starts
        long = np.flatnonzero(lengths > max_line_bytes)
        if len(long):
            i = int(long[0])
            raise DataError(
                f"line {i + 1} is {int(lengths[i]):,} bytes long (limit {max_line_bytes:,}); "
                "expected "
                "one row per line: is this a binary file or a single-line dump?",
                path=p,
            )
        has_cr = (lengths > 0) & (buf[np.maximum(ends - 1, 0)] == 13)
        ends = ends - has_cr
        return cls(p, data, starts, ends)

    @property
    def n_lines(self) -> int:
        return len(self.starts)

    def nonempty(self) -> np.ndarray:
        """0-based indices of lines that are not empty (int64)."""
        return np.flatnonzero(self.ends > self.starts)

    def line_text(self, line: int) -> str:
        """Text of 1-based physical ``line``."""
        i = line - 1
        return self.data[self.starts[i] : self.ends[i]].decode("utf-8", errors="replace")


def _utf8_ok(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8, checked by Arrow without copying or decoding."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
    arr = pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data))
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


@dataclass
class Table:
    """Rows of one source file as string columns.

    Attributes
    ----------
    path : str
    frame : pandas.DataFrame
        One string column per field (missing values are ``""``).
    lines : numpy.ndarray of int64, shape (n_rows,)
        1-based physical line (or Parquet row) number of each row.
    bad_rows : list of BadRow
        Rows that could not be split into the expected fields.
    raw : TextFile or None
        The text, for quoting rejected rows; None for Parquet.
    """

    path: str
    frame: pd.DataFrame
    lines: np.ndarray
    bad_rows: list[BadRow] = field(default_factory=list)
    raw: TextFile | None = None

    @property
    def n_read(self) -> int:
        """Data rows read (parsed rows plus rows that could not be parsed)."""
        return len(self.frame) + len(self.bad_rows)

    def raw_row(self, line: int) -> str:
        if self.raw is not None:
            return self.raw.line_text(line)
        idx = int(np.searchsorted(self.lines, line))
        if idx < len(self.lines) and self.lines[idx] == line:
            return json.dumps(self.frame.iloc[idx].to_dict(), default=str)
        return ""


def _read_bytes(path: str | Path) -> bytes:
    p = Path(path)
    if p.is_dir():
        raise DataError(
            "is a directory; expected a file (or pick a --format that reads directories)",
            path=str(p),
        )
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", path=str(p)) from None
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror}", path=str(p)) from None


def fingerprint_file(path: str | Path) -> dict[str, object]:
    """``{"path", "size", "sha256"}`` of a file (streamed, constant memory)."""
    p = Path(path)
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return {"path": str(p), "size": p.stat().st_size, "sha256": h.hexdigest()}


def fingerprint_frame(frame: pd.DataFrame, name: str) -> dict[str, object]:
    """``{"path": name, "size": n_rows, "sha256"}`` of an in-memory table (content hash)."""
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in frame.columns]).encode())
    h.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    return {"path": name, "size": len(frame), "sha256": h.hexdigest()}


def table_from_frame(frame: pd.DataFrame, name: str) -> Table:
    """Wrap an in-memory DataFrame as a :class:`Table` (row numbers from 1; values as strings).

    Datetime columns become UTC epoch seconds, like Parquet timestamps.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame; got {type(frame).__name__}", path=name)
    if frame.empty:
        raise DataError("table has no rows", path=name)
    cols: dict[str, pd.Series] = {}
    for c in frame.columns:
        col = frame[c]
        if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col):
            secs = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
            col = (secs - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
        text = col.astype(object).where(col.notna(), "").astype(str)
        cols[str(c).strip()] = text.astype("str").reset_index(drop=True)
    return Table(name, pd.DataFrame(cols), np.arange(1, len(frame) + 1, dtype=np.int64), [], None)


def file_kind(path: str | Path) -> str:
    """``"csv"``, ``"tsv"``, ``"jsonl"`` or ``"parquet"`` from the file name (default csv)."""
    name = str(path).lower()
    for suffix in (".gz", ".bz2", ".zst", ".zip", ".xz"):
        if name.endswith(suffix):
            raise DataError(
                f"compressed files ({suffix}) are not read directly; decompress it first",
                path=str(path),
            )
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".tsv", ".tab")):
        return "tsv"
    return "csv"


def read_table(path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> Table:
    """Read a CSV/TSV/JSONL/Parquet file with a header, picking the parser from the file name."""
    kind = file_kind(path)
    if kind == "parquet":
        return read_parquet(path)
    if kind == "jsonl":
        return read_jsonl(path, max_line_bytes=max_line_bytes)
    delimiter = "\t" if kind == "tsv" else _sniff_delimiter(path)
    return read_csv(path, delimiter=delimiter, max_line_bytes=max_line_bytes)


def _sniff_delimiter(path: str | Path) -> str:
    try:
        with Path(path).open("rb") as fh:
            head = fh.readline(4096)
    except OSError:
        return ","
    counts = {d: head.count(d.encode()) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 and counts[","] == 0 else ","


# ------------------------------------------------------------------------------------------ CSV
def read_csv(
    path: str | Path,
    *,
    delimiter: str = ",",
    column_names: Sequence[str] | None = None,
    quoting: bool = True,
    encoding: str = "utf-8",
    max_line_bytes: int = MAX_LINE_BYTES,
    text: TextFile | None = None,
) -> Table:
    """Read a delimited text file into string columns, keeping each row's physical line number.

    Parameters
    ----------
    path : str or Path
    delimiter : str
        One character.
    column_names : sequence of str, optional
        The file has no header and these are its fields; otherwise the first non-empty line is
        the header.
    quoting : bool
        Honour ``"`` quotes (off for formats such as MovieLens ``.dat`` files).
    encoding : str
        Source encoding (converted to UTF-8).
    text : TextFile, optional
        Already-loaded text (used by readers that pre-process the file).
    """
    tf = text or TextFile.load(path, encoding=encoding, max_line_bytes=max_line_bytes)
    p = tf.path
    nonempty = tf.nonempty()
    if column_names is None:
        header_line = tf.line_text(int(nonempty[0]) + 1)
        names = next(
            csv.reader([header_line], delimiter=delimiter, quotechar='"' if quoting else "\x00")
        )
        names = [n.strip() for n in names]
        if any(not n for n in names):
            raise DataError(
                f"header has an empty column name (header: {header_line[:200]!r}); "
                "expected named columns",
                path=p,
                line=int(nonempty[0]) + 1,
            )
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DataError(
                f"header repeats column(s) {', '.join(dup)}", path=p, line=int(nonempty[0]) + 1
            )
        data_lines = nonempty[1:]
    else:
        names = list(column_names)
        data_lines = nonempty
    if len(data_lines) == 0:
        raise DataError("file has a header but no rows", path=p)
    try:
        table = _csv_fast(tf, names, delimiter, quoting, data_lines)
    except _FallBack:
        table = _csv_slow(tf, names, delimiter, quoting, column_names is None)
    return table


class _FallBack(Exception):
    pass


def _csv_fast(
    tf: TextFile,
    names: list[str],
    delimiter: str,
    quoting: bool,
    data_lines: np.ndarray,
) -> Table:
    invalid: list[tuple[int | None, str, int]] = []

    def handler(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    # parse from the first data line with the (stripped) names given, so a header with padded
    # names stays on the fast path and pyarrow's row numbers count non-empty data lines only
    start = int(tf.starts[data_lines[0]])
    try:
        arrow = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(tf.data)[start:]),
            read_options=pacsv.ReadOptions(
                use_threads=False,  # pyarrow only numbers rows when reading serially
                block_size=max(1 << 22, 2 * int((tf.ends - tf.starts).max(initial=0)) + 1),
                column_names=names,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                quote_char='"' if quoting else False,
                newlines_in_values=False,
                ignore_empty_lines=True,
                invalid_row_handler=handler,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError):
        raise _FallBack from None
    bad_idx: list[int] = []
    bad_rows: list[BadRow] = []
    for number, text, actual in invalid:
        # pyarrow numbers rows by non-empty line of the buffer, 1-based
        if number is None or not 0 < number <= len(data_lines):
            raise _FallBack
        phys = int(data_lines[number - 1])
        if tf.line_text(phys + 1) != text:
            raise _FallBack
        bad_idx.append(phys)
        bad_rows.append(
            BadRow(tf.path, phys + 1, None, f"expected {len(names)} fields, found {actual}", text)
        )
    lines = np.setdiff1d(data_lines, np.asarray(bad_idx, dtype=np.int64), assume_unique=True) + 1
    if len(lines) != arrow.num_rows:
        raise _FallBack  # e.g. a quoted value spans lines: let the exact slow reader number rows
    frame = pd.DataFrame({n: arrow.column(i).to_pandas() for i, n in enumerate(names)})
    return Table(tf.path, frame, lines.astype(np.int64), bad_rows, tf)


def _csv_slow(
    tf: TextFile, names: list[str], delimiter: str, quoting: bool, has_header: bool
) -> Table:
    text = tf.data.decode("utf-8", errors="replace")
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar='"',
        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE,
    )
    rows: list[list[str]] = []
    lines: list[int] = []
    bad: list[BadRow] = []
    header_seen = not has_header
    prev = 0
    try:
        for rec in reader:
            start = prev + 1
            prev = reader.line_num
            if not rec:
                continue
            if not header_seen:
                header_seen = True
                continue
            if len(rec) != len(names):
                bad.append(
                    BadRow(
                        tf.path,
                        start,
                        None,
                        f"expected {len(names)} fields, found {len(rec)}",
                        delimiter.join(rec),
                    )
                )
                continue
            rows.append(rec)
            lines.append(start)
    except csv.Error as exc:
        raise DataError(
            f"cannot parse as delimited text: {exc}", path=tf.path, line=reader.line_num
        ) from None
    frame = (
        pd.DataFrame(rows, columns=names, dtype=object)
        if rows
        else pd.DataFrame(columns=names, dtype=object)
    )
    return Table(tf.path, frame.astype(object), np.asarray(lines, dtype=np.int64), bad, tf)


# ---------------------------------------------------------------------------------------- JSONL
def read_jsonl(path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> Table:
    """Read JSON Lines (one object per line); values become strings (JSON scalars as written)."""
    tf = TextFile.load(path, max_line_bytes=max_line_bytes)
    nonempty = tf.nonempty()
    try:
        arrow = pajson.read_json(
            pa.BufferReader(tf.data), read_options=pajson.ReadOptions(use_threads=True)
        )
        if arrow.num_rows != len(nonempty):
            raise ValueError("row count")
        cols = {}
        for name in arrow.column_names:
            col = arrow.column(name)
            if pa.types.is_nested(col.type):
                raise ValueError("nested")
            if pa.types.is_boolean(col.type):
                col = pa.compute.if_else(col, "true", "false")
            cols[name.strip()] = col.cast(pa.string()).fill_null("").to_pandas()
        frame = pd.DataFrame(cols)
        return Table(tf.path, frame, nonempty + 1, [], tf)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        pass
    records: list[dict[str, str]] = []
    lines: list[int] = []
    bad: list[BadRow] = []
    for i in nonempty:
        text = tf.data[tf.starts[i] : tf.ends[i]].decode("utf-8")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.append(
                BadRow(
                    tf.path,
                    int(i) + 1,
                    None,
                    f"expected a JSON object, found invalid JSON ({exc.msg})",
                    text,
                )
            )
            continue
        if not isinstance(obj, dict):
            bad.append(
                BadRow(
                    tf.path,
                    int(i) + 1,
                    None,
                    f"expected a JSON object, found {type(obj).__name__}",
                    text,
                )
            )
            continue
        records.append(
            {
                str(k).strip(): "" if v is None else v if isinstance(v, str) else json.dumps(v)
                for k, v in obj.items()
            }
        )
        lines.append(int(i) + 1)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    return Table(
        tf.path, frame.fillna("").astype(object), np.asarray(lines, dtype=np.int64), bad, tf
    )


# -------------------------------------------------------------------------------------- Parquet
def read_parquet(path: str | Path) -> Table:
    """Read a Parquet file; every column becomes strings, row numbers count from 1."""
    p = str(path)
    data = _read_bytes(path)
    if not data:
        raise DataError("file is empty; expected a Parquet file", path=p)
    if not (data[:4] == b"PAR1" and data[-4:] == b"PAR1"):
        raise DataError("not a Parquet file (missing PAR1 magic bytes); expected Parquet", path=p)
    try:
        arrow = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet file: {str(exc).splitlines()[0]}", path=p) from None
    if arrow.num_rows == 0:
        raise DataError("Parquet file has no rows", path=p)
    cols = {}
    for name in arrow.column_names:
        col = arrow.column(name)
        if pa.types.is_date(col.type):
            col = col.cast(pa.timestamp("s"))
        if pa.types.is_timestamp(col.type):
            # stored as UTC instants (naive = UTC): epoch seconds as text, like a CSV would hold
            per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[col.type.unit]
            ints = pa.compute.cast(col, pa.int64())
            col = pa.compute.divide(pa.compute.cast(ints, pa.float64()), float(per_second))
        elif pa.types.is_boolean(col.type):
            col = pa.compute.if_else(col, "true", "false")
        try:
            col = col.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(
                f"column '{name}' has type {col.type}; "
                "expected scalar values (ids, strings, numbers)",
                path=p,
            ) from None
        cols[name.strip()] = col.fill_null("").to_pandas()
    frame = pd.DataFrame(cols)
    return Table(p, frame, np.arange(1, arrow.num_rows + 1, dtype=np.int64), [], None)
