"""Exceptions raised for bad user input.

Every error names the offending field and value, so a user never has to read a traceback from deep inside.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A configuration field holds a bad value.

    Args:
        field: dotted name of the field, e.g. ``"model.hidden"``.
        value: the value that was given.
        reason: what is wrong, as a short phrase (``"must be > 0"``).
    """

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")


class DataNotFoundError(FileNotFoundError):
    """A data file the task needs is absent; the message says where it was looked for and how to point to it."""
