"""``gemrec import`` command line: help, summary line, options reaching the pipeline."""

import json

import pytest

from gemrec.cli import main
from gemrec.data.store import Dataset


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    out = capsys.readouterr().out
    assert "gemrec import" in out and "--format" in out and "example" in out and "--on-error" in out


def test_summary_line_and_options_reach_the_pipeline(tmp_path, capsys):
    p = tmp_path / "e.csv"
    rows = [
        f"u{u},i{(u * 7 + k) % 11},view,{1000 + u * 10 + k}" for u in range(6) for k in range(6)
    ]
    p.write_text("user_id,item_id,event_type,timestamp\n" + "\n".join(rows) + "\n")
    argv = ["import", str(p), "--format", "events", "-o", str(tmp_path / "ds")]
    argv += ["--split", "leave-last", "--leave-n", "2", "--valid-fraction", "0.25", "--seed", "7"]
    argv += ["--weights", "view=3", "--half-life-days", "1", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("imported events: 6 users")
    assert out[0].endswith(str(tmp_path / "ds"))
    ds = Dataset.open(tmp_path / "ds")
    m = ds.manifest
    assert m["split"] == {
        **m["split"],
        "method": "leave-last",
        "leave_n": 2,
        "seed": 7,
        "valid_fraction": 0.25,
    }
    assert m["event_weights"]["view"] == 3.0 and m["time_decay"]["half_life_days"] == 1.0
    assert (ds.edges[ds.edges.split == "test"].groupby("user").size() == 2).all()
    json.dumps(m)  # the manifest is plain JSON


def test_unwritable_output_is_a_one_line_error(tmp_path, capsys):
    p = tmp_path / "e.csv"
    p.write_text("user_id,item_id,event_type,timestamp\na,x,view,1\n")
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    code = main(["import", str(p), "--format", "events", "-o", str(blocker / "ds")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write the dataset directory" in err and err.count("\n") == 1
    assert blocker.read_text() == "not a directory"
