"""``gemrec serve`` refuses what would fail or expose it, before it prints that it is serving."""

from __future__ import annotations

import socket

from gemrec.cli import main
from tests.serve._process import free_port


def test_a_busy_port_is_one_clear_error_and_no_banner(pop_dir, shop, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["serve", str(pop_dir), "--dataset", str(shop), "--port", str(port)]
        assert main([*argv, "--api-key", "k"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"gemrec serve: error: --host 127.0.0.1 --port {port}: cannot listen there (Address "
        "already in use); another process may hold the port: pick another with --port\n"
    )


def test_no_api_key_beyond_loopback_is_refused_unless_asked_for(pop_dir, shop, capsys):
    argv = ["serve", str(pop_dir), "--dataset", str(shop), "--port", str(free_port())]
    assert main([*argv, "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gemrec serve: error: --host 0.0.0.0: refusing to listen beyond")
    assert "--insecure-no-api-key" in err and err.count("\n") == 1
