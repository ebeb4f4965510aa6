"""Parsing of ``--set key=value`` options and TOML config files at the CLI edge.

Library code takes keyword arguments; these helpers turn command-line text and TOML files into
typed values once, at the edge, and reject what they cannot place with a one-line
:class:`~gemrec.errors.ConfigError` that names the option or file and the offending key.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from gemrec.errors import ConfigError

__all__ = ["load_config", "parse_assignments", "parse_value"]


def parse_value(text: str) -> Any:
    """Type a ``--set`` value.

    ``"3"`` -> 3, ``"0.5"`` / ``"1e-3"`` -> float, ``"true"``/``"false"`` (any case) -> bool,
    ``"none"``/``"null"`` -> None, ``"[1, 2]"`` -> [1, 2], ``"[a, b]"`` -> ["a", "b"] (each element
    typed the same way), ``'"3"'`` -> the string "3"; anything else stays the string as given.

    Examples
    --------
    >>> [parse_value(t) for t in ["3", "0.5", "True", "none", "[1, 2.5]", "[relu, 3]", "adam"]]
    [3, 0.5, True, None, [1, 2.5], ['relu', 3], 'adam']
    """
    stripped = text.strip()
    low = stripped.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        if stripped.startswith("[") and stripped.endswith("]"):
            inner = stripped[1:-1].strip()
            return [parse_value(part.strip()) for part in inner.split(",")] if inner else []
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text  # json accepts NaN/Infinity; keep such words as the user typed them
    return value


def parse_assignments(items: list[str] | None, option: str = "--set") -> dict[str, Any]:
    """Parse ``["a=1", "b=x"]`` into ``{"a": 1, "b": "x"}``; a malformed entry is a ConfigError."""
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

    Parameters
    ----------
    path : path
        The TOML file.
    allowed : set of str
        Accepted hyperparameter names.

    Returns
    -------
    dict
        Hyperparameters (TOML-typed), plus ``"model"`` when the file names one.

    Raises
    ------
    ConfigError
        Missing/unreadable file, invalid TOML, ``params`` not a table, or an unknown key (named).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text (expected a TOML file)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    raw_params = data.pop("params", {})
    if not isinstance(raw_params, dict):
        raise ConfigError(
            f"{path}: 'params' must be a table ([params]) of hyperparameters; "
            f"got {type(raw_params).__name__} {raw_params!r}"
        )
    params = dict(raw_params)
    model = data.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise ConfigError(f"{path}: 'model' must be a model name string; got {model!r}")
    both = sorted(set(params) & set(data))
    if both:
        raise ConfigError(f"{path}: key {both[0]!r} is given both at top level and under [params]")
    params.update(data)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}; "
            f"expected some of: {', '.join(sorted(allowed))}"
        )
    if model is not None:
        params["model"] = model
    return params
