"""The node's secret pseudonym master key: created once, kept on the node, never printed.

Stored as a file readable by its owner only (mode 0600) under the node's home folder.
Issue 4 moves every node key into the encrypted key store; until then the file's
permissions are the protection, and a file readable by others is refused.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from epibridge.model.errors import EpibridgeError

KEY_BYTES = 32


class SecretError(EpibridgeError):
    """The master key file is missing its protection or is damaged."""


def pseudonym_master_key(home: Path) -> bytes:
    """Read the node's master key from ``home/secrets/pseudonym.key``, creating it if absent."""
    path = home / "secrets" / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretError(
            f"{path}: the pseudonym key file can be read by other users (mode {mode:o})\n"
            f"  what to do: run 'chmod 600 {path}' and check who else could have read it"
        )
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise SecretError(
            f"{path}: the pseudonym key file is damaged ({len(key)} bytes, expected {KEY_BYTES})\n"
            "  what to do: restore it from the node's backup; a new key would give every case "
            "a new pseudonym"
        )
    return key
