"""``alerts.toml`` in the hub's folder: where alerts go besides the nodes' inboxes.

Every country concerned by an alert always gets it in its node's inbox. This file adds,
per country, a webhook (the signed document POSTed with httpx) and e-mail addresses (sent
through the SMTP host of ``[smtp]``), and the hub's own escalation contact, told when a
delivery stays unacknowledged too long::

    [smtp]
    host = "smtp.example.org"
    port = 587                      # default 25
    from = "alerts@hub.example.org"
    starttls = true                 # default false
    username = "alerts"             # optional; the password comes from the environment
    password_env = "EPIBRIDGE_SMTP_PASSWORD"

    [countries.KHM]
    webhook = "https://moh.example.kh/epibridge/alerts"
    email = ["ihr-focal-point@example.kh"]

    [escalation]
    webhook = "https://hub.example.org/escalations"
    email = ["duty-officer@hub.example.org"]

No file means nodes only. A password is never written in the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epibridge.model.errors import KeyedFileError

CONFIG = "alerts.toml"


@dataclass(frozen=True)
class Contact:
    webhook: str | None = None
    email: tuple[str, ...] = ()


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 25
    sender: str = "epibridge-hub@localhost"
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None


@dataclass(frozen=True)
class AlertConfig:
    countries: dict[str, Contact] = field(default_factory=dict)
    escalation: Contact = Contact()
    smtp: Smtp | None = None

    def channels(self, country: str) -> tuple[str, ...]:
        """The channels a country's alerts go by: always its node, then what is set."""
        contact = self.countries.get(country, Contact())
        found = ["node"]
        if contact.webhook:
            found.append("webhook")
        if contact.email:
            found.append("email")
        return tuple(found)


def _contact(path: Path, key: str, table: Any) -> Contact:
    if not isinstance(table, dict):
        raise KeyedFileError(path, key, "must be a table")
    unknown = sorted(set(table) - {"webhook", "email"})
    if unknown:
        raise KeyedFileError(path, key, f"unknown keys {', '.join(unknown)} (webhook, email)")
    webhook = table.get("webhook")
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
    ):
        raise KeyedFileError(path, key, f"webhook must be an http(s) URL, got {webhook!r}")
    email = table.get("email", [])
    if isinstance(email, str):
        email = [email]
    if not isinstance(email, list) or not all(isinstance(e, str) and "@" in e for e in email):
        raise KeyedFileError(path, key, "email must be an address or a list of addresses")
    return Contact(webhook, tuple(email))


def _smtp(path: Path, table: Any) -> Smtp:
    if not isinstance(table, dict) or not isinstance(table.get("host"), str):
        raise KeyedFileError(path, "smtp", 'needs host = "<SMTP host>"')
    try:
        return Smtp(
            host=table["host"],
            port=int(table.get("port", 25)),
            sender=str(table.get("from", "epibridge-hub@localhost")),
            starttls=bool(table.get("starttls", False)),
            username=table.get("username"),
            password_env=table.get("password_env"),
        )
    except (TypeError, ValueError) as exc:
        raise KeyedFileError(path, "smtp", f"cannot be read ({exc})") from None


def load_config(folder: Path | None) -> AlertConfig:
    """The hub's ``alerts.toml`` (none: every alert goes to the nodes' inboxes only)."""
    if folder is None or not (folder / CONFIG).exists():
        return AlertConfig()
    path = folder / CONFIG
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise KeyedFileError(path, "file", f"is not TOML ({exc})") from None
    unknown = sorted(set(doc) - {"smtp", "countries", "escalation"})
    if unknown:
        raise KeyedFileError(path, unknown[0], "unknown table (smtp, countries, escalation)")
    countries = doc.get("countries", {})
    if not isinstance(countries, dict):
        raise KeyedFileError(path, "countries", "must be a table of country tables")
    config = AlertConfig(
        countries={
            str(code).upper(): _contact(path, f"countries.{code}", table)
            for code, table in countries.items()
        },
        escalation=_contact(path, "escalation", doc.get("escalation", {})),
        smtp=_smtp(path, doc["smtp"]) if "smtp" in doc else None,
    )
    wants_mail = any(c.email for c in (*config.countries.values(), config.escalation))
    if wants_mail and config.smtp is None:
        raise KeyedFileError(path, "smtp", "e-mail addresses are set but no [smtp] host")
    return config
