"""Exceptions with messages a user can act on: which file, which line or field, what was expected."""

from __future__ import annotations

from pathlib import Path


class TTSCTRError(Exception):
    """Base class of every error raised deliberately by ttsctr."""


class ConfigError(TTSCTRError, ValueError):
    """A configuration value is unknown, missing or does not fit the data."""


class DataFormatError(TTSCTRError, ValueError):
    """Raw or encoded data does not have the expected format.

    The message always names the file, the line (1-based, when there is one), the field
    (when known), what was found and what was expected.
    """

    def __init__(
        self,
        path: str | Path | None,
        *,
        found: str,
        expected: str,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.found = found
        self.expected = expected
        where = self.path or "<input>"
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: found {found}; expected {expected}")
