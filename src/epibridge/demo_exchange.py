"""The demo's third stage: every country seals its release and pushes it to a real hub.

Sets up, under the workspace, what operators set up by hand (docs/exchange.md): a hub
folder (``WORKSPACE/hub``: SQLite, keys, trust list), each country's keys in its node
home, enrolment, each node joining the hub, each agreement signed by both parties and
registered. ``running_hub`` seals each release into its node's outbox and runs
``epibridge hub serve`` as a separate process (on the dashboard's port, or a free local
one) for the rest of the demo; ``exchange_all`` pushes each outbox over HTTP; each node
checks the hub's signed receipt, then audits the hub's transparency log (its submission
is included, the head extends what it saw) and countersigns the head; the whole log is
verified against the store.

Passphrases are random, made for this run and held only in memory (the hub process gets
its own through its environment): the demo's keys are not meant to be used again. The
hub folder and the node homes are reset on every run.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from epibridge.agreements import load_agreement
from epibridge.agreements.signing import save_signatures, sign_agreement, signatures_path
from epibridge.files import write_private
from epibridge.hub.audit import audit_verify
from epibridge.hub.home import HubHome
from epibridge.hub.quality import completeness_basis, scorecards
from epibridge.hub.serve import free_local_port
from epibridge.model.errors import EpibridgeError
from epibridge.node import hub_link
from epibridge.node.exchange import push_over_http
from epibridge.node.log_check import check_log
from epibridge.node.outbox import Outbox
from epibridge.node.state import NodeState
from epibridge.node.submit import seal_release
from epibridge.protect import ProtectResult, state_path
from epibridge.transport.bundle import bundle_of, exported_bundle, write_bundle
from epibridge.transport.keystore import KeyStore
from epibridge.transport.trust import HUB

START_TIMEOUT = 60.0  # seconds for the hub process to answer

#: The demo's one key passphrase, in an owner-only file of the workspace.
PASSPHRASE_FILE = "demo-passphrase.txt"


class DemoHubError(EpibridgeError):
    """The demo's hub process did not start or stopped early."""


@dataclass(frozen=True)
class Delivered:
    country: str
    submission_id: str
    size: int
    state: str
    detail: str


def _now() -> datetime:
    return datetime.now(UTC)


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoHubError(
                f"the hub process stopped (exit {process.returncode}); its log: {log}\n"
                + log.read_text(encoding="utf-8", errors="replace")[-2000:]
            )
        try:
            if httpx.get(f"{url}/v1/versions", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoHubError(f"the hub did not answer within {START_TIMEOUT:.0f} s; its log: {log}")


def _set_up(
    workspace: Path, results: list[ProtectResult], url: str, console: Console
) -> tuple[HubHome, str, dict[str, str]]:
    """Hub, keys, enrolment, joins and signed agreements; the passphrases made."""
    hub_dir = workspace / "hub"
    shutil.rmtree(hub_dir, ignore_errors=True)
    # One passphrase for every key store of the demo, kept in an owner-only file so that
    # the commands the demo suggests (node alerts, audit verify) can open them afterwards.
    hub_pass = secrets.token_urlsafe(24)
    write_private(workspace / PASSPHRASE_FILE, hub_pass + "\n")
    now = _now()
    hub = HubHome.init(hub_dir, hub_pass, now)
    hub_keys = hub.keys(hub_pass)
    passes: dict[str, str] = {}
    stores: dict[str, KeyStore] = {}
    for result in results:
        country = result.receipt["sender"]
        passes[country] = hub_pass
        store = KeyStore.init(workspace / "nodes" / country, country, passes[country], now)
        stores[country] = store
        hub.enrol(bundle_of(store), hub_keys, now)
    hub_bundle = workspace / "hub-keys.json"
    write_bundle(exported_bundle(hub_dir), hub_bundle)
    token = hub.trust(hub_keys, now).token
    signed_dir = workspace / "agreements"
    shutil.rmtree(signed_dir, ignore_errors=True)
    signed_dir.mkdir()
    for result in results:
        country = result.receipt["sender"]
        hub_link.join(workspace / "nodes" / country, hub_bundle, token, now, url)
        agreement_id = result.receipt["agreement"]["id"]
        source = _agreement_file(agreement_id)
        copy = signed_dir / source.name
        shutil.copyfile(source, copy)
        agreement = load_agreement(copy)
        sf = sign_agreement(agreement, stores[country].signing_key(now), country, now)
        sf = sign_agreement(agreement, hub_keys.signing_key(now), HUB, now, sf)
        save_signatures(signatures_path(copy), sf)
        hub.add_agreement(copy, hub_keys, now)
    console.print(
        f"hub set up in {hub_dir}: {len(results)} countries enrolled, their agreements signed "
        "by both parties and registered",
        soft_wrap=True,
    )
    return hub, hub_pass, passes


def _agreement_file(agreement_id: str) -> Path:
    from epibridge.demo_release import agreement_path

    folder = agreement_path("x").parent
    for path in sorted(folder.glob("*.toml")):
        if load_agreement(path).id == agreement_id:
            return path
    raise DemoHubError(f"no shipped example agreement has id {agreement_id}")


def _seal_all(workspace: Path, results: list[ProtectResult], passes: dict[str, str]) -> None:
    now = _now()
    for result in results:
        country = result.receipt["sender"]
        home = workspace / "nodes" / country
        store = KeyStore.open(home, passes[country])
        with NodeState(state_path(home)) as state:
            seal_release(
                result.out, store, hub_link.trust(home, now), Outbox(state), home / "outbox", now
            )


def _outcomes(workspace: Path, results: list[ProtectResult]) -> list[Delivered]:
    found = []
    for result in results:
        country = result.receipt["sender"]
        with NodeState(state_path(workspace / "nodes" / country)) as state:
            for item in Outbox(state).status():
                detail = (
                    "receipt verified"
                    if item.state == "acknowledged"
                    else f"{item.reason or ''} {item.last_error or ''}".strip()
                )
                found.append(Delivered(country, item.submission_id, item.size, item.state, detail))
    return found


@dataclass
class DemoHub:
    """The demo's hub process and what the demo keeps to talk to it as each party."""

    hub: HubHome
    hub_pass: str
    passes: dict[str, str]  # each country's key passphrase, made for this run
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def running_hub(
    workspace: Path, results: list[ProtectResult], console: Console, port: int | None = None
) -> Iterator[DemoHub]:
    """Set up the hub and the nodes, seal every release, and run ``epibridge hub serve``
    (on ``port``, else a free local port) until the block ends."""
    port = port or free_local_port()
    url = f"http://127.0.0.1:{port}"
    hub, hub_pass, passes = _set_up(workspace, results, url, console)
    _seal_all(workspace, results, passes)
    log = workspace / "hub" / "serve.log"
    env = {**os.environ, "EPIBRIDGE_KEY_PASSPHRASE": hub_pass}
    command = [sys.executable, "-m", "epibridge.cli", "hub", "serve"]
    command += ["--home", str(hub.folder), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_for(url, process, log)
        console.print(f"hub process {process.pid} serving at {url} (log: {log})", soft_wrap=True)
        yield DemoHub(hub, hub_pass, passes, url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def exchange_all(
    running: DemoHub, workspace: Path, results: list[ProtectResult], console: Console
) -> list[Delivered]:
    """Push every sealed release through its node's outbox to the running hub."""
    started = time.perf_counter()
    hub, hub_pass, passes, url = running.hub, running.hub_pass, running.passes, running.url
    rng = random.Random()
    for result in results:
        country = result.receipt["sender"]
        push_over_http(workspace / "nodes" / country, passes[country], url, _now, rng)
    audited = [
        check_log(workspace / "nodes" / r.receipt["sender"], passes[r.receipt["sender"]], url, _now)
        for r in results
    ]
    seconds = time.perf_counter() - started
    delivered = _outcomes(workspace, results)
    table = Table(title="sealed, pushed, received (node outbox -> hub intake, over HTTP)")
    for col in ("country", "submission", "bytes", "state", "detail"):
        table.add_column(col, justify="right" if col == "bytes" else "left")
    for d in delivered:
        table.add_row(d.country, d.submission_id, f"{d.size:,}", d.state, d.detail)
    console.print()
    console.print(table)
    with hub.open_store() as store:
        held = store.submissions()
        report = audit_verify(store.engine, hub.trust(hub.keys(hub_pass), _now()), lambda s: None)
    console.print(
        f"the hub holds {len(held)} submissions ({sum(s.size_bytes for s in held):,} bytes) "
        f"from {len({s.origin_country for s in held})} countries; exchange took {seconds:.1f} s",
        soft_wrap=True,
    )
    with hub.open_store() as store:
        cards = scorecards(store.engine, _now(), hub.folder)
    quality = Table(title="data quality at the hub (hub scorecards; docs/quality.md)")
    for col in ("country", "periods", "complete", "from", "quarantined at node", "suppressed",
                "jumps"):  # fmt: skip
        quality.add_column(col, justify="left" if col in ("country", "from") else "right")

    def pct(value: float | None) -> str:
        return "" if value is None else f"{value:.1%}"

    for name, score in sorted(cards.countries.items()):
        quality.add_row(
            name,
            str(score.periods),
            pct(score.completeness),
            completeness_basis(score),
            pct(score.quarantined_share),
            pct(score.suppressed_share),
            str(score.jumps),
        )
    median = cards.regional_median
    quality.add_row(
        "median",
        "",
        pct(median["completeness"]),
        "",
        pct(median["quarantined_share"]),
        pct(median["suppressed_share"]),
        "",
    )
    console.print(quality)
    console.print(
        "complete: reports received / expected where a country sends its reporting "
        "(from reports), else areas with data / areas expected (from areas)",
        soft_wrap=True,
    )
    last = audited[-1]
    console.print(
        f"transparency log: {last.tree_size} leaves; every node checked that it holds its "
        f"submission ({sum(a.included for a in audited)} inclusion proofs) and countersigned "
        f"the head; audit verify: "
        + ("the log and the store agree" if not report.problems else f"{report.problems}"),
        soft_wrap=True,
    )
    return delivered
