"""Low-level table readers: exact line numbers, whole-file errors."""

import numpy as np
import pandas as pd
import pytest

from gemrec.data.tables import (
    TextFile,
    fingerprint_file,
    read_csv,
    read_jsonl,
    read_parquet,
    read_table,
)
from gemrec.errors import DataError


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


def test_csv_line_numbers_skip_blank_lines_crlf_and_bom(tmp_path):
    p = _write(tmp_path, "e.csv", b"\xef\xbb\xbfa,b\r\n1,x\r\n\r\n2,y\r\n\r\n\r\n3,z")
    t = read_csv(p)
    assert list(t.frame.columns) == ["a", "b"]
    assert t.frame["a"].tolist() == ["1", "2", "3"]
    assert t.frame["b"].tolist() == ["x", "y", "z"]
    assert t.lines.tolist() == [2, 4, 7]
    assert t.bad_rows == []
    assert t.raw_row(4) == "2,y"


def test_csv_wrong_field_count_rows_are_reported_with_their_line(tmp_path):
    p = _write(tmp_path, "e.csv", "a,b,c\n1,2,3\n\n4,5\n6,7,8\n9,9,9,9\n")
    t = read_csv(p)
    assert t.frame["a"].tolist() == ["1", "6"]
    assert t.lines.tolist() == [2, 5]
    assert [(b.line, b.reason, b.raw) for b in t.bad_rows] == [
        (4, "expected 3 fields, found 2", "4,5"),
        (6, "expected 3 fields, found 4", "9,9,9,9"),
    ]
    assert t.n_read == 4


def test_csv_quoted_newline_falls_back_to_exact_numbering(tmp_path):
    p = _write(tmp_path, "e.csv", 'a,b\n1,"multi\nline"\n2,x\n3\n')
    t = read_csv(p)
    assert t.frame["b"].tolist() == ["multi\nline", "x"]
    assert t.lines.tolist() == [2, 4]
    assert [b.line for b in t.bad_rows] == [5]


def test_csv_keeps_raw_strings_verbatim(tmp_path):
    p = _write(tmp_path, "e.csv", "u,i\n007, a b \n1e3,NaN\n")
    t = read_csv(p)
    assert t.frame["u"].tolist() == ["007", "1e3"]
    assert t.frame["i"].tolist() == [" a b ", "NaN"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "file is empty"),
        (b"  \n\n", "file is empty"),
        (b"a,b\x00c\n1,2\n", "binary data (NUL byte"),
        (bytes(range(256)) * 10, "binary data"),
        (
            "user_id,item_id\ncaf\xe9,1\n".encode("latin-1"),
            "not valid UTF-8 (byte 0xe9 at line 2, column 4)",
        ),
    ],
)
def test_whole_file_errors(tmp_path, data, message):
    p = _write(tmp_path, "e.csv", data)
    with pytest.raises(DataError) as exc:
        read_csv(p)
    assert message in str(exc.value)
    assert str(p) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_huge_line_is_a_file_error(tmp_path):
    p = _write(tmp_path, "e.csv", "a,b\n1,2\n" + "x" * 5000 + "\n")
    with pytest.raises(DataError, match=r"line 3 is 5,000 bytes long \(limit 1,000\)"):
        TextFile.load(p, max_line_bytes=1000)


def test_header_only_and_bad_header(tmp_path):
    with pytest.raises(DataError, match="header but no rows"):
        read_csv(_write(tmp_path, "a.csv", "a,b\n"))
    with pytest.raises(DataError, match="repeats column"):
        read_csv(_write(tmp_path, "b.csv", "a,a\n1,2\n"))
    with pytest.raises(DataError, match="empty column name"):
        read_csv(_write(tmp_path, "c.csv", "a,,b\n1,2,3\n"))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_csv(tmp_path)


def test_jsonl_fast_path_and_line_numbers(tmp_path):
    p = _write(
        tmp_path, "e.jsonl", '{"u": "a", "n": 1}\n\n{"u": "b", "n": 2.5}\n{"u": "c", "n": null}\n'
    )
    t = read_jsonl(p)
    assert t.frame["u"].tolist() == ["a", "b", "c"]
    assert t.frame["n"].tolist()[:2] == ["1", "2.5"]
    assert t.frame["n"].tolist()[2] == ""
    assert t.lines.tolist() == [1, 3, 4]


def test_jsonl_broken_lines_become_bad_rows(tmp_path):
    p = _write(tmp_path, "e.jsonl", '{"u": "a"}\n{"u": \n[1, 2]\n{"u": 5}\n')
    t = read_jsonl(p)
    assert t.frame["u"].tolist() == ["a", "5"]
    assert t.lines.tolist() == [1, 4]
    assert [b.line for b in t.bad_rows] == [2, 3]
    assert "invalid JSON" in t.bad_rows[0].reason
    assert "found list" in t.bad_rows[1].reason


def test_parquet_values_become_strings(tmp_path):
    p = tmp_path / "e.parquet"
    pd.DataFrame({"u": [1, 2], "s": ["x", None], "f": [0.5, 1.0]}).to_parquet(p)
    t = read_parquet(p)
    assert t.frame["u"].tolist() == ["1", "2"]
    assert t.frame["s"].tolist() == ["x", ""]
    assert t.lines.tolist() == [1, 2]
    bad = _write(tmp_path, "bad.parquet", b"PAR1 not really")
    with pytest.raises(DataError, match=r"not a Parquet file|cannot read Parquet"):
        read_parquet(bad)
    with pytest.raises(DataError, match="file is empty"):
        read_parquet(_write(tmp_path, "empty.parquet", b""))


def test_fingerprint_is_sha256_and_size(tmp_path):
    import hashlib

    p = _write(tmp_path, "x.csv", "hello\n")
    fp = fingerprint_file(p)
    assert fp["size"] == 6
    assert fp["sha256"] == hashlib.sha256(b"hello\n").hexdigest()


def test_compressed_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="decompress"):
        read_table(_write(tmp_path, "e.csv.gz", b"\x1f\x8b"))


def test_fast_csv_matches_python_csv_reference(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["a,b,c"]
    for _ in range(2000):
        r = rng.random()
        if r < 0.05:
            rows.append("")
        elif r < 0.1:
            rows.append("1,2")
        else:
            rows.append(",".join(str(x) for x in rng.integers(0, 100, 3)))
    text = "\n".join(rows) + "\n"
    p = _write(tmp_path, "e.csv", text)
    t = read_csv(p)
    import csv
    import io

    ref_lines, ref_a = [], []
    for n, rec in enumerate(csv.reader(io.StringIO(text)), start=1):
        if n == 1 or not rec or len(rec) != 3:
            continue
        ref_lines.append(n)
        ref_a.append(rec[0])
    assert t.lines.tolist() == ref_lines
    assert t.frame["a"].tolist() == ref_a
    assert len(t.bad_rows) == sum(1 for r in rows[1:] if r == "1,2")


def test_parquet_timestamps_become_utc_epoch_seconds(tmp_path):
    p = tmp_path / "t.parquet"
    ts = pd.to_datetime(["2020-01-01 00:00", "2020-01-02 12:30"]).tz_localize("Europe/Berlin")
    pd.DataFrame({"ts": ts, "naive": ts.tz_localize(None), "d": ts.date}).to_parquet(p)
    t = read_parquet(p)
    assert [float(x) for x in t.frame["ts"]] == [1577833200.0, 1577964600.0]
    assert [float(x) for x in t.frame["naive"]] == [1577836800.0, 1577968200.0]
    assert [float(x) for x in t.frame["d"]] == [1577836800.0, 1577923200.0]


def test_csv_padded_header_and_leading_blank_lines(tmp_path):
    p = _write(tmp_path, "e.csv", "\n\n user_id , item_id \n1,2\n\n3\n4,5\n")
    t = read_csv(p)
    assert list(t.frame.columns) == ["user_id", "item_id"]
    assert t.frame["user_id"].tolist() == ["1", "4"]
    assert t.lines.tolist() == [4, 7]
    assert [(b.line, b.raw) for b in t.bad_rows] == [(6, "3")]


def test_jsonl_mixed_types_fall_back_without_losing_rows(tmp_path):
    p = _write(tmp_path, "e.jsonl", '{"u": 1, "x": {"a": 1}}\n{"u": "007", "x": true}\n')
    t = read_jsonl(p)
    assert t.frame["u"].tolist() == ["1", "007"]
    assert t.frame["x"].tolist() == ['{"a": 1}', "true"]
    assert t.lines.tolist() == [1, 2] and t.bad_rows == []
