"""`epibridge keys`: create, rotate, revoke and list keys; never print a secret."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from typer.testing import CliRunner, Result

from epibridge.cli_keys import Reason, current_kids, key_status, register
from epibridge.model.errors import EpibridgeError
from epibridge.transport.keystore import (
    KeyInfo,
    KeyStore,
    KeyStoreError,
    KeyStoreInfo,
    RootKeyOfflineError,
    WrongPassphraseError,
)
from epibridge.transport.trust import REVOCATION_REASONS, Revocation

KID = r"[A-Za-z0-9_-]{43}"  # RFC 7638 thumbprint: base64url SHA-256
PASSPHRASE = "correct horse battery staple"

# Runs the real entry point with the keys group on it, whether or not cli.py registers it yet.
MAIN = """
import sys
from epibridge import cli
from epibridge.cli_keys import register
if not any(group.name == "keys" for group in cli.app.registered_groups):
    register(cli.app)
sys.argv[0] = "epibridge"
cli.main()
"""


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Root, so `keys` stays a sub-command group."""

    register(app)
    return app


def invoke(home: Path, *args: str, passphrase: str | None = PASSPHRASE, **kw: str) -> Result:
    env = {"COLUMNS": "200", "EPIBRIDGE_HOME": str(home), "EPIBRIDGE_KEY_PASSPHRASE": ""}
    if passphrase is not None:
        env["EPIBRIDGE_KEY_PASSPHRASE"] = passphrase
    return CliRunner().invoke(_app(), ["keys", *args], env=env, **kw)  # type: ignore[arg-type]


def ok(home: Path, *args: str) -> str:
    result = invoke(home, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def rows(output: str) -> dict[str, list[str]]:
    """The table rows by kid: [use, valid from, valid to, status]."""
    found = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 7 and re.fullmatch(KID, words[0]) and words[1] in {"sig", "enc"}:
            kid, use, d1, t1, d2, t2, *status = words
            found[kid] = [use, f"{d1} {t1}", f"{d2} {t2}", " ".join(status)]
    return found


def secret_forms(home: Path) -> list[str]:
    """Every private key of the store in raw hex, base64 and base64url, plus the passphrase."""
    store = KeyStore.open(home, PASSPHRASE)
    now = datetime.now(UTC)
    keys: list[Ed25519PrivateKey | X25519PrivateKey] = [
        store.signing_key(now).private_key,
        *(k.private_key for k in store.encryption_keys(now)),
    ]
    forms = [PASSPHRASE]
    for key in keys:
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        forms += [
            raw.hex(),
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
        ]
    return forms


def assert_no_secret(home: Path, output: str) -> None:
    for form in secret_forms(home):
        assert form not in output
    assert "PRIVATE KEY" not in output


@pytest.fixture
def home(tmp_path: Path) -> Path:
    ok(tmp_path, "init", "--country", "KHM")
    return tmp_path


def test_init_then_show_lists_one_key_of_each_use_and_the_root(home: Path) -> None:
    out = ok(home, "show")
    table = rows(out)
    assert sorted(r[0] for r in table.values()) == ["enc", "sig"]
    assert all(r[3] == "current" for r in table.values())
    info = KeyStore.open(home, PASSPHRASE).show()
    assert set(table) == {k.kid for k in info.keys}
    assert f"root {info.root_kid}: here" in out
    assert "keys of KHM" in out
    assert_no_secret(home, out)


def test_init_reports_the_keys_and_validity(tmp_path: Path) -> None:
    out = ok(tmp_path, "init", "--country", "HUB", "--validity-days", "30")
    table = rows(out)
    assert len(table) == 2
    for _use, start, end, _status in table.values():
        span = datetime.fromisoformat(end) - datetime.fromisoformat(start)
        assert span == timedelta(days=30)
    assert_no_secret(tmp_path, out)


def test_init_prompts_for_the_passphrase_without_echo(tmp_path: Path) -> None:
    typed = f"{PASSPHRASE}\n{PASSPHRASE}\n"
    result = invoke(tmp_path, "init", "--country", "KHM", passphrase=None, input=typed)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "New key passphrase" in result.output
    assert "Repeat for confirmation" in result.output
    assert_no_secret(tmp_path, result.output)
    shown = invoke(tmp_path, "show", passphrase=None, input=f"{PASSPHRASE}\n")
    assert shown.exit_code == 0, (shown.output, shown.exception)
    assert len(rows(shown.output)) == 2
    assert PASSPHRASE not in shown.output
    # nothing typed and no passphrase in the environment: one clear error, not "Aborted"
    none = invoke(tmp_path, "show", passphrase=None, input="")
    assert isinstance(none.exception, EpibridgeError)  # cli.main prints it, exit status 2
    assert "EPIBRIDGE_KEY_PASSPHRASE" in str(none.exception)


def test_rotate_adds_a_key_and_the_newest_is_current(home: Path) -> None:
    before = set(rows(ok(home, "show")))
    out = ok(home, "rotate", "--use", "sig")
    table = rows(out)
    (new,) = set(table) - before
    assert table[new][0] == "sig"
    assert f"new sig key {new}" in out
    sig = {kid: r[3] for kid, r in table.items() if r[0] == "sig"}
    assert sorted(sig.values()) == ["current", "valid"]
    # Two keys made in one second tie on their start; "current" is the one the store signs with.
    store = KeyStore.open(home, PASSPHRASE)
    assert sig[store.signing_key(datetime.now(UTC)).kid] == "current"
    assert_no_secret(home, out)


def test_revoke_marks_the_key_revoked(home: Path) -> None:
    ok(home, "rotate", "--use", "enc")
    table = rows(ok(home, "show"))
    current = next(k for k, r in table.items() if r[0] == "enc" and r[3] == "current")
    other = next(k for k, r in table.items() if r[0] == "enc" and k != current)
    out = ok(home, "revoke", current, "--reason", "key_compromise")
    assert f"revoked {current} (key_compromise)" in out
    table = rows(out)
    assert table[current][3].startswith("revoked (key_compromise, ")
    assert table[other][3] == "current"
    assert rows(ok(home, "show"))[current][3].startswith("revoked")
    assert_no_secret(home, out)


def test_revoke_refuses_an_unknown_reason_before_asking_anything(home: Path) -> None:
    kid = next(iter(rows(ok(home, "show"))))
    result = invoke(home, "revoke", kid, "--reason", "bored", passphrase=None)
    assert result.exit_code == 2
    assert "passphrase" not in result.output.lower()


def test_command_line_reasons_are_the_trust_list_reasons() -> None:
    assert set(get_args(Reason)) == REVOCATION_REASONS


@pytest.mark.parametrize(
    ("args", "error", "says"),
    [
        (["init", "--country", "KHM"], KeyStoreError, "already exists"),
        (["revoke", "nokid", "--reason", "retired"], KeyStoreError, "not in this key store"),
    ],
)
def test_user_errors_are_epibridge_errors(
    home: Path, args: list[str], error: type[Exception], says: str
) -> None:
    result = invoke(home, *args)
    assert isinstance(result.exception, error)
    assert says in str(result.exception)


def test_missing_store_and_short_passphrase(tmp_path: Path) -> None:
    missing = invoke(tmp_path, "show")
    assert isinstance(missing.exception, KeyStoreError)
    assert "keys init" in str(missing.exception)
    short = invoke(tmp_path, "init", "--country", "KHM", passphrase="too short")
    assert isinstance(short.exception, KeyStoreError)
    assert "shorter than 12" in str(short.exception)
    assert "too short" not in str(short.exception) + short.output
    assert not (tmp_path / "keys").exists()


def test_wrong_passphrase_is_a_clear_error_without_the_passphrase(home: Path) -> None:
    wrong = "not the passphrase at all"
    result = invoke(home, "show", passphrase=wrong)
    assert isinstance(result.exception, WrongPassphraseError)
    assert "passphrase is wrong" in str(result.exception)
    assert wrong not in str(result.exception) + result.output


def test_root_offline_blocks_rotate_but_not_show(home: Path) -> None:
    (home / "keys" / "root.pem").rename(home / "root.pem")
    result = invoke(home, "rotate", "--use", "sig")
    assert isinstance(result.exception, RootKeyOfflineError)
    assert "offline" in ok(home, "show")
    (home / "root.pem").rename(home / "keys" / "root.pem")
    assert len(rows(ok(home, "rotate", "--use", "sig"))) == 3


def test_home_option_wins_over_the_environment(tmp_path: Path) -> None:
    other = tmp_path / "other"
    ok(tmp_path, "init", "--country", "KHM", "--home", str(other))
    assert (other / "keys" / "store.json").exists()
    assert not (tmp_path / "keys").exists()


def _main(home: Path, *args: str, passphrase: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COLUMNS": "200",
        "EPIBRIDGE_HOME": str(home),
        "EPIBRIDGE_KEY_PASSPHRASE": passphrase,
    }
    return subprocess.run(
        [sys.executable, "-c", MAIN, "keys", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def test_main_entry_turns_a_wrong_passphrase_into_one_message_and_exit_2(home: Path) -> None:
    wrong = "not the passphrase at all"
    result = _main(home, "show", passphrase=wrong)
    assert result.returncode == 2
    assert "error:" in result.stderr
    assert "passphrase is wrong" in result.stderr
    both = result.stdout + result.stderr
    assert "Traceback" not in both
    assert wrong not in both
    fine = _main(home, "show", passphrase=PASSPHRASE)
    assert fine.returncode == 0, fine.stderr
    assert len(rows(fine.stdout)) == 2
    assert_no_secret(home, fine.stdout + fine.stderr)


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _key(kid: str, start_days: int, revoked_days: int | None = None, use: str = "sig") -> KeyInfo:
    start = T0 + timedelta(days=start_days)
    revoked = (
        None
        if revoked_days is None
        else Revocation(kid, T0 + timedelta(days=revoked_days), "superseded")
    )
    return KeyInfo(
        kid, "sig" if use == "sig" else "enc", start, start + timedelta(days=90), revoked
    )


def test_status_words_over_time() -> None:
    old, new, gone = _key("old", 0), _key("new", 30), _key("gone", 40, revoked_days=50)
    enc = _key("e", 0, use="enc")
    info = KeyStoreInfo("KHM", "root", (old, new, gone, enc))

    def status(at: datetime) -> dict[str, str]:
        current = current_kids(info, at)
        return {k.kid: key_status(k, current, at) for k in info.keys}

    assert status(T0 + timedelta(days=10)) == {
        "old": "current",
        "new": "not yet valid",
        "gone": "not yet valid",
        "e": "current",
    }
    assert status(T0 + timedelta(days=45)) == {
        "old": "valid",
        "new": "valid",
        "gone": "current",
        "e": "current",
    }
    assert status(T0 + timedelta(days=60)) == {
        "old": "valid",
        "new": "current",
        "gone": "revoked",
        "e": "current",
    }
    assert status(T0 + timedelta(days=100)) == {
        "old": "expired",
        "new": "current",
        "gone": "revoked",
        "e": "expired",
    }


def test_a_node_with_keys_only_has_an_empty_outbox_and_no_keys_is_said_first(
    tmp_path: Path,
) -> None:
    from epibridge.cli import app

    env = {"COLUMNS": "200", "EPIBRIDGE_KEY_PASSPHRASE": PASSPHRASE}
    home = tmp_path / "node"
    assert invoke(home, "init", "--country", "KHM").exit_code == 0
    status = CliRunner().invoke(app, ["node", "status", "--home", str(home)], env=env)
    assert status.exit_code == 0, status.output
    # no key store: said before any passphrase is asked for (nothing typed, none set)
    empty = tmp_path / "empty"
    empty.mkdir()
    seal = ["node", "seal", str(tmp_path), "--home", str(empty)]
    refused = CliRunner().invoke(app, seal, env={"EPIBRIDGE_KEY_PASSPHRASE": ""}, input="")
    assert isinstance(refused.exception, KeyStoreError)
    assert "no key store here" in str(refused.exception)
    assert "passphrase" not in refused.output.lower()
