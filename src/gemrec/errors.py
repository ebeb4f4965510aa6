"""One exception hierarchy for gemrec.

Every message names the input, what was expected, what was found and, where possible, how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "GemrecError",
    "MissingDependencyError",
    "NotFittedError",
    "ParameterError",
]


class GemrecError(Exception):
    """Base class of every error gemrec raises on purpose."""


class DataError(GemrecError):
    """Input data is malformed: names the file, line and field where known.

    Parameters
    ----------
    message : str
        What was expected and what was found.
    path : str, optional
        The file the bad input came from.
    line : int, optional
        1-based line (or row) number in ``path``.
    field : str, optional
        The column or field name.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.path = path
        self.line = line
        self.field = field
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ParameterError(GemrecError, ValueError):
    """A hyperparameter or argument has an invalid value."""

    @classmethod
    def invalid(cls, name: str, expected: str, got: object) -> ParameterError:
        """Build the uniform message: parameter name, what was expected, what was received."""
        return cls(f"parameter '{name}' must be {expected}; got {got!r}")


class NotFittedError(GemrecError, RuntimeError):
    """A model was used before ``fit`` (or ``load``)."""


class ConfigError(GemrecError):
    """A settings file or CLI option is invalid (unknown key, wrong type)."""


class MissingDependencyError(GemrecError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""
