"""Parsing of ``--set key=value`` options and TOML config files at the CLI edge."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from gemrec.errors import ConfigError

__all__ = ["load_config", "parse_assignments", "parse_value"]


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, ``"[1,2]"`` -> [1, 2],
    anything else stays a string."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: list[str] | None, option: str = "--set") -> dict[str, Any]:
    """Parse ``["a=1", "b=x"]`` into a dict, with a clear error for a malformed entry."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} expects key=value; got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def load_config(path: str | Path, allowed: set[str]) -> dict[str, Any]:
    """Read a TOML file of hyperparameters, rejecting unknown keys.

    The file may hold the keys at top level or under a ``[params]`` table; a top-level ``model`` key
    is returned under ``"model"``.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    params = dict(data.pop("params", {}))
    model = data.pop("model", None)
    params.update(data)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}; expected some of: {', '.join(sorted(allowed))}"
        )
    if model is not None:
        params["model"] = model
    return params
