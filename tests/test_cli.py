"""The ``gemrec`` dispatcher: help texts with examples, one-line errors with exit code 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gemrec.cli import COMMANDS, build_parser, main

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _subcommands() -> dict[str, object]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return dict(sub.choices)


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    built = _subcommands()
    # the contract: these four exist in every build
    assert {"import", "train", "evaluate", "recommend"} <= set(built)
    assert set(built) <= set(COMMANDS)
    for name in built:
        assert f"    {name}" in out
    assert "gemrec COMMAND --help" in out


def test_no_command_prints_help_and_succeeds(capsys):
    assert main([]) == 0
    assert "usage: gemrec" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_subcommand_help_has_an_example(name, capsys):
    if name not in _subcommands():
        pytest.skip(f"{name} is not built in this checkout")
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gemrec {name}")
    assert "example" in out
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.lower().startswith("example"))
    # the example is a runnable command line of this very subcommand
    assert any(line.strip().startswith(f"gemrec {name}") for line in lines[first + 1 :])


def test_gemrec_error_is_one_line_with_exit_code_2(tmp_path, capsys):
    code = main(["evaluate", str(tmp_path / "nomodel"), "--dataset", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    expected = f"{tmp_path / 'nomodel'}: not a gemrec model directory (no manifest.json)"
    assert err == f"gemrec evaluate: error: {expected}\n"


def test_console_entry_point_unknown_model_has_no_traceback(tmp_path):
    """A real process: exit code 2, a single stderr line, no traceback."""
    env = {**os.environ, "PYTHONPATH": SRC}
    cmd = [sys.executable, "-c", "import sys; from gemrec.cli import main; sys.exit(main())"]
    proc = subprocess.run(
        [*cmd, "train", str(tmp_path), "--model", "nosuchmodel", "-o", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "unknown model 'nosuchmodel'; expected one of:" in proc.stderr
    assert "rp3beta" in proc.stderr
    assert not (tmp_path / "m").exists()


def _lightgcn_file(path: Path) -> dict[str, set[str]]:
    """``user item item ...`` lines -> raw user id -> set of raw item ids (read as plain text)."""
    out: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) > 1:
            out[parts[0]] = set(parts[1:])
    return out


@pytest.mark.slow
def test_gowalla_import_train_recommend_reproduces_published_rp3beta(tmp_path, capsys):
    """Import, train rp3beta (shipped defaults), recommend top-20 for the test users, then score
    recs.jsonl against the raw test.txt without gemrec's evaluator.

    Published (full ranking, train items excluded, mean over test users): Recall@20 .183,
    NDCG@20 .152; we must be within 0.005 (docs/benchmarks/cli.md).
    """
    import json
    import math

    from tests.conftest import shared_data

    src = shared_data("gowalla")
    ds, model, recs = tmp_path / "gowalla", tmp_path / "rp3", tmp_path / "recs.jsonl"
    for step, argv in [
        ("import", ["import", str(src), "--format", "lightgcn", "-o", str(ds), "--quiet"]),
        ("train", ["train", str(ds), "--model", "rp3beta", "--no-tune", "-o", str(model)]),
        ("recommend", ["recommend", str(model), "--dataset", str(ds), "--users", "test"]),
    ]:
        if step == "recommend":
            argv += ["-k", "20", "-o", str(recs), "--quiet"]
        assert main(argv) == 0, step
    capsys.readouterr()

    test = _lightgcn_file(src / "test.txt")
    train = _lightgcn_file(src / "train.txt")
    lists = {}
    for line in recs.read_text().splitlines():
        row = json.loads(line)
        assert row["user"] not in lists
        lists[row["user"]] = row["items"]
    assert set(lists) == set(test) and len(test) == 29858
    recall = ndcg = 0.0
    for user, relevant in test.items():
        items = lists[user]
        assert len(items) == 20 and len(set(items)) == 20
        assert not set(items) & train.get(user, set()), user  # training items excluded
        hits = [item in relevant for item in items]
        recall += sum(hits) / len(relevant)
        dcg = sum(1 / math.log2(j + 2) for j, h in enumerate(hits) if h)
        ndcg += dcg / sum(1 / math.log2(j + 2) for j in range(min(20, len(relevant))))
    recall, ndcg = recall / len(test), ndcg / len(test)
    print(f"gowalla rp3beta: Recall@20 {recall:.4f} NDCG@20 {ndcg:.4f}")
    assert abs(recall - 0.183) <= 0.005, recall
    assert abs(ndcg - 0.152) <= 0.005, ndcg


def test_version_and_multiline_messages_are_folded(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("gemrec ")
    # a config error whose message would carry the file's own line break stays on one line
    cfg = tmp_path / "c.toml"
    cfg.write_text('model = "pop"\n[params]\n"weird\\nkey" = 1\n')
    code = main(["train", str(tmp_path), "--model", "pop", "--config", str(cfg), "-o", "m"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "unknown key(s) weird" in err and "key; expected some of" in err
