"""Errors that reach a user. Each one says what is wrong, where, and what to do."""

from __future__ import annotations

from pathlib import Path


class EpibridgeError(Exception):
    """Base class: an error whose message is written for the person at the terminal."""

    exit_code = 2


class SourceError(EpibridgeError):
    """A whole input file cannot be read (encoding, delimiter, truncation, wrong format, empty).

    Row-level problems never raise: they are quarantined. This is for files that cannot
    be read at all, so that no row of them can be accounted for.
    """

    def __init__(self, path: Path | str, problem: str, hint: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.hint = hint
        text = f"{self.path}: {problem}"
        if hint:
            text += f"\n  what to do: {hint}"
        super().__init__(text)


class KeyedFileError(EpibridgeError):
    """A hand-written settings file is invalid: names the file, the key and, when known, the
    line."""

    def __init__(self, path: Path | str, key: str, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.key = key
        self.line = line
        where = f"{self.path}" + (f", line {line}" if line else "")
        super().__init__(f"{where}: [{key}] {problem}")


class ProfileError(KeyedFileError):
    """A mapping profile is invalid. Names the profile file, the key and, when known, the line."""


class RegistryError(EpibridgeError):
    """A shipped registry file is inconsistent (a packaging bug, not user error)."""


class ReasonedError(EpibridgeError):
    """A refusal with a stable machine-readable ``reason`` (for receipts, APIs, logs)
    beside its message for people."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{message} [{reason}]")
