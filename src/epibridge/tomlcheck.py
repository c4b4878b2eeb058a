"""Checking hand-written TOML files (profiles, agreements) key by key, with line numbers.

``tomllib`` reports syntax errors with a position but gives no positions for values, so a
wrong value is located by searching for its key under its ``[section]`` header: good
enough to send a person to the right line of a file they wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class KeyedError(Protocol):
    def __call__(
        self, path: Path | str, key: str, problem: str, line: int | None = None
    ) -> Exception: ...


def line_of(text: str, section: str, key: str | None) -> int | None:
    """Best-effort line of ``key`` in ``[section]`` (tomllib gives no positions)."""
    lines = text.splitlines()
    start = 0
    if section:
        header = re.compile(r"^\s*\[+\s*" + re.escape(section) + r"\s*\]+\s*(#.*)?$")
        for i, line in enumerate(lines):
            if header.match(line):
                start = i
                if key is None:
                    return i + 1
                break
    if key is not None:
        name = re.escape(key.split(".")[-1])
        # A key on its own line first, then one inside an inline table.
        for pat in (re.compile(r"^\s*\"?" + name + r"\"?\s*="), re.compile(r"\b" + name + r"\s*=")):
            for i in range(start, len(lines)):
                if pat.search(lines[i]):
                    return i + 1
    return None


class Checker:
    """Typed accessors that fail with the file, the ``[section].key`` and its line."""

    def __init__(self, path: Path, text: str, error: KeyedError) -> None:
        self.path = path
        self.text = text
        self.error = error

    def fail(self, section: str, key: str | None, problem: str) -> Exception:
        label = f"{section}.{key}" if key and section else (key or section)
        return self.error(self.path, label, problem, line_of(self.text, section, key))

    def keys(self, section: str, table: Mapping[str, Any], allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(
                    section, key, f"unknown key '{key}'; allowed keys: {', '.join(sorted(allowed))}"
                )

    def require(self, section: str, table: Mapping[str, Any], keys: tuple[str, ...]) -> None:
        for key in keys:
            if key not in table:
                raise self.fail(section, None, f"missing required key '{key}'")

    def table(self, section: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(section, None, "must be a table")
        return value

    def str_(self, section: str, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(section, key, "must be a non-empty string")
        return value

    def strs(self, section: str, key: str, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(section, key, "must be a string or a list of strings")
        return tuple(value)

    def codes(self, section: str, key: str, value: Any) -> dict[str, str]:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.fail(section, key, 'must be a table of source value = "code"')
        return {str(k): v for k, v in value.items()}

    def int_(self, section: str, key: str, value: Any, low: int, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(section, key, f"must be a whole number >= {low}")
        if high is not None and value > high:
            raise self.fail(section, key, f"must be a whole number between {low} and {high}")
        return value

    def number(self, section: str, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise self.fail(section, key, "must be a positive number")
        return float(value)

    def bool_(self, section: str, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(section, key, "must be true or false")
        return value

    def choice(self, section: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.fail(
                section, key, f"'{value}' is not allowed; use one of {', '.join(allowed)}"
            )
        return str(value)
