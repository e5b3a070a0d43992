"""The exceptions tensorfile raises. Every failure a user can cause is a `TensorfileError`.

The CLI turns any of these into one line on stderr and exit code 2; library callers can catch
the base class or one of the few subclasses below.
"""

from __future__ import annotations

from pathlib import Path


class TensorfileError(Exception):
    """Base class: a problem with an input, reported as one clear line."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(TensorfileError):
    """The path cannot be read at all: missing, unreadable, a FIFO, a symlink loop."""


class FormatError(TensorfileError):
    """The bytes are not what they claim: truncated, corrupt or hostile content."""


class UnsupportedError(TensorfileError):
    """The input is valid but this operation does not handle it (yet)."""


class UsageError(TensorfileError):
    """The caller asked for something impossible (bad option, bad pattern)."""
