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
