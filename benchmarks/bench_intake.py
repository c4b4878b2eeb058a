"""Hub intake under load: many nodes pushing sealed submissions at once to a hub process.

Sets up a hub (``epibridge hub serve``, one uvicorn process, on PostgreSQL by default) and
N nodes, each a country with its own keys, signed agreement and outbox; each node seals
S submissions (a counts table of about --kib KiB and its receipt). Then every node pushes at the
same moment, each from its own thread with its own HTTP client, through the real
``HttpTransport`` (token, upload, verified receipt). Measured:

* wall time from the start signal until every node is done: submissions per second;
* latency of each send (token included for a node's first), p50 / p99 / max;
* the baseline in the same run: ``intake.receive`` on the same files in one thread of
  this process (no HTTP, no concurrency): what the checks and the store cost alone.

Afterwards it checks that nothing was lost or duplicated: the hub holds exactly N x S
submissions, each byte-identical to what its node sealed, and every outbox item is
acknowledged with a receipt. No test asserts on time.

    uv run python -m benchmarks.bench_intake                     # 50 nodes x 10, updates docs
    uv run python -m benchmarks.bench_intake --nodes 4 --per-node 2 --database sqlite --no-docs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow.parquet as pq
import pycountry
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.hub.payloads import counts_table

from benchmarks.common import DOCS, OUT, ROOT, machine, update_docs
from epibridge.hub.serve import free_local_port

if TYPE_CHECKING:
    from epibridge.node.http_transport import HttpTransport

MARKERS = ("<!-- intake:start -->", "<!-- intake:end -->")
POSTGRES = os.environ.get(
    "EPIBRIDGE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEMPLATE = ROOT / "src" / "epibridge" / "examples" / "agreements" / "khm-hub-counts.toml"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Node:
    country: str
    home: Path
    keys: Any  # KeyStore
    latencies: list[float]


def _database(kind: str, work: Path) -> tuple[str, str | None]:
    """The hub's database URL, and the PostgreSQL database to drop afterwards."""
    if kind == "sqlite":
        return f"sqlite:///{work / 'hub.sqlite'}", None
    name = f"epibridge_bench_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return make_url(POSTGRES).set(database=name).render_as_string(hide_password=False), name


def _drop(name: str | None) -> None:
    if name is None:
        return
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def _countries(n: int) -> list[str]:
    codes = sorted(c.alpha_3 for c in pycountry.countries if c.alpha_3 != "HUB")
    if n > len(codes):
        raise SystemExit(f"at most {len(codes)} nodes (one per ISO 3166 country)")
    return codes[:n]


def _set_up(
    work: Path, database: str, countries: list[str], url: str
) -> tuple[Any, str, list[Node]]:
    from epibridge.agreements import load_agreement
    from epibridge.agreements.signing import save_signatures, sign_agreement, signatures_path
    from epibridge.hub.home import HubHome
    from epibridge.node import hub_link
    from epibridge.transport.bundle import bundle_of, exported_bundle, write_bundle
    from epibridge.transport.keystore import KeyStore
    from epibridge.transport.trust import HUB

    now = _now()
    passphrase = secrets.token_urlsafe(18)
    hub = HubHome.init(work / "hub", passphrase, now, database)
    hub_keys = hub.keys(passphrase)
    nodes = []
    for country in countries:
        home = work / "nodes" / country
        nodes.append(Node(country, home, KeyStore.init(home, country, passphrase, now), []))
    hub.enrol_all([bundle_of(n.keys) for n in nodes], hub_keys, now)
    write_bundle(exported_bundle(hub.folder), work / "hub-keys.json")
    token = hub.trust(hub_keys, now).token
    template = TEMPLATE.read_text(encoding="utf-8")
    for node in nodes:
        hub_link.join(node.home, work / "hub-keys.json", token, now, url)
        path = work / "agreements" / f"{node.country}.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(template.replace("KHM", node.country), encoding="utf-8")
        agreement = load_agreement(path)
        sf = sign_agreement(agreement, node.keys.signing_key(now), node.country, now)
        sf = sign_agreement(agreement, hub_keys.signing_key(now), HUB, now, sf)
        save_signatures(signatures_path(path), sf)
        hub.add_agreement(path, hub_keys, now)
    return hub, passphrase, nodes


def seal_new(node: Node, work: Path, outbox: Any, trust: Any, rows: int, name: str) -> Any:
    """Write a release of ``rows`` random counts cells for ``node`` and seal it into its
    outbox; the outbox item."""
    from epibridge.agreements import load_agreement
    from epibridge.node.submit import seal_release

    agreement = load_agreement(work / "agreements" / f"{node.country}.toml")
    release = work / "releases" / node.country / name
    release.mkdir(parents=True)
    part = release / "counts.parquet"
    pq.write_table(counts_table(rows, secrets.randbits(32), node.country), part)
    receipt = {
        "release_id": str(uuid.uuid4()),
        "agreement": {"id": agreement.id, "sha256": agreement.sha256},
        "sender": node.country,
        "period": {"from": "2026-01-05", "to": "2026-01-11"},
        "files": {
            part.name: {"rows": rows, "sha256": hashlib.sha256(part.read_bytes()).hexdigest()}
        },
    }
    (release / "receipt.json").write_text(json.dumps(receipt), encoding="utf-8")
    return seal_release(release, node.keys, trust, outbox, node.home / "outbox", _now()).item


def node_transport(node: Node, outbox: Any, url: str, client: httpx.Client) -> HttpTransport:
    """The real HTTP transport of a node, checking receipts against its trust list."""
    from epibridge.node import hub_link
    from epibridge.node.http_transport import HttpTransport
    from epibridge.node.receipts import verify_receipt

    signing = node.keys.signing_key(_now())
    trust = hub_link.trust(node.home, _now())

    def check(sid: str, token: str) -> None:
        item = outbox.item(sid)
        verify_receipt(token, trust, sid, item.manifest_sha256 if item else None, _now())

    return HttpTransport(
        base_url=url,
        country=node.country,
        signing_key=lambda: signing,
        clock=_now,
        verify_receipt=check,
        uploads=outbox,
        client=client,
    )


def _seal(work: Path, nodes: list[Node], per_node: int, kib: int) -> dict[str, str]:
    """Every node seals ``per_node`` releases; the SHA-256 of each sealed file by id."""
    from epibridge.node import hub_link
    from epibridge.node.outbox import Outbox
    from epibridge.node.state import NodeState
    from epibridge.protect import state_path

    sealed = {}
    for node in nodes:
        trust = hub_link.trust(node.home, _now())
        with NodeState(state_path(node.home)) as state:
            outbox = Outbox(state)
            for i in range(per_node):
                # About 20 bytes a row in Parquet: distinct random areas do not compress.
                item = seal_new(node, work, outbox, trust, max(1, kib * 1024 // 20), str(i))
                sealed[item.submission_id] = hashlib.sha256(item.path.read_bytes()).hexdigest()
    return sealed


def _baseline(work: Path, hub: Any, passphrase: str, nodes: list[Node]) -> float:
    """Seconds for ``intake.receive`` on every sealed file, one thread, no HTTP, into a
    throw-away SQLite store (the same checks, keys and agreements as the hub)."""
    from epibridge.hub.intake import receive
    from epibridge.hub.store import HubStore

    files = [f for n in nodes for f in sorted((n.home / "outbox").glob("*.zip"))]
    keys = hub.keys(passphrase)
    with HubStore.open(f"sqlite:///{work / 'baseline.sqlite'}") as store:
        context = hub.context(keys, _now(), store)
        spool = work / "baseline-spool"
        from dataclasses import replace

        context = replace(context, spool=spool)
        started = time.perf_counter()
        for f in files:
            receive(f, context, _now())
        return time.perf_counter() - started


def _start_hub(
    hub: Any, passphrase: str, port: int, log: Path, workers: int = 1
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EPIBRIDGE_KEY_PASSPHRASE": passphrase}
    command = [sys.executable, "-m", "epibridge.cli", "hub", "serve"]
    command += ["--home", str(hub.folder), "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the hub stopped: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/versions", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the hub did not start")


def _push_all(nodes: list[Node], url: str) -> tuple[float, list[str]]:
    """Every node pushes at once from its own thread; wall seconds and any failures."""
    from epibridge.node.outbox import Delivery, Outbox
    from epibridge.node.state import NodeState
    from epibridge.protect import state_path

    start = threading.Barrier(len(nodes) + 1)
    failures: list[str] = []

    def run(node: Node) -> None:
        with NodeState(state_path(node.home)) as state, httpx.Client(timeout=120) as client:
            outbox = Outbox(state)
            transport = node_transport(node, outbox, url, client)

            class Timed:
                def send(self, path: Path, submission_id: str) -> Delivery:
                    began = time.perf_counter()
                    try:
                        return transport.send(path, submission_id)
                    finally:
                        node.latencies.append(time.perf_counter() - began)

            start.wait()
            report = outbox.push(Timed(), _now(), random.Random())
            if report.rejected or report.retrying:
                failures.append(f"{node.country}: {report}")

    threads = [threading.Thread(target=run, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - began, failures


def _verify(hub: Any, nodes: list[Node], sealed: dict[str, str]) -> dict[str, int]:
    from epibridge.node.outbox import Outbox
    from epibridge.node.state import NodeState
    from epibridge.protect import state_path

    with hub.open_store() as store:
        held = store.submissions()
    ids = [s.submission_id for s in held]
    identical = sum(
        hashlib.sha256(Path(s.stored_path).read_bytes()).hexdigest() == sealed.get(s.submission_id)
        for s in held
    )
    acknowledged = 0
    for node in nodes:
        with NodeState(state_path(node.home)) as state:
            acknowledged += sum(
                i.state == "acknowledged" and i.receipt is not None for i in Outbox(state).status()
            )
    return {
        "sealed": len(sealed),
        "held": len(held),
        "distinct": len(set(ids)),
        "identical": identical,
        "lost": len(set(sealed) - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "acknowledged": acknowledged,
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(
    args: argparse.Namespace, wall: float, base: float, lat: list[float], check: dict[str, int]
) -> str:
    n = check["sealed"]
    return "\n".join(
        [
            f"{args.nodes} nodes x {args.per_node} submissions of {args.kib} KiB "
            f"({n} in all), one hub (uvicorn, {args.workers} worker processes) on {args.database}; "
            "nodes are threads of one process on the same machine.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| submissions per second, all nodes at once over HTTP | {n / wall:,.1f} |",
            f"| latency per submission p50 / p99 / max | {_quantile(lat, 0.5) * 1000:,.0f} / "
            f"{_quantile(lat, 0.99) * 1000:,.0f} / {max(lat) * 1000:,.0f} ms |",
            f"| baseline: `intake.receive` in one thread, no HTTP (SQLite) | "
            f"{n / base:,.1f} per second |",
            f"| ratio HTTP under load / baseline | {base / wall:.2f} |",
            f"| held / distinct / byte-identical / acknowledged | {check['held']} / "
            f"{check['distinct']} / {check['identical']} / {check['acknowledged']} |",
            f"| lost / duplicated | {check['lost']} / {check['duplicated']} |",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--per-node", type=int, default=10)
    parser.add_argument("--kib", type=int, default=256)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--workers", type=int, default=2, help="hub worker processes")
    parser.add_argument("--out-dir", type=Path, default=OUT)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    work: Path = args.out_dir / f"intake-{args.nodes}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    database, dropped = _database(args.database, work)
    process = None
    try:
        port = free_local_port()
        url = f"http://127.0.0.1:{port}"
        print(f"setting up a hub and {args.nodes} nodes ...", flush=True)
        hub, passphrase, nodes = _set_up(work, database, _countries(args.nodes), url)
        print("sealing ...", flush=True)
        sealed = _seal(work, nodes, args.per_node, args.kib)
        print("baseline: intake.receive in this process ...", flush=True)
        base = _baseline(work, hub, passphrase, nodes)
        process = _start_hub(hub, passphrase, port, work / "serve.log", args.workers)
        print(f"{args.nodes} nodes pushing at once ...", flush=True)
        wall, failures = _push_all(nodes, url)
        check = _verify(hub, nodes, sealed)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        _drop(dropped)
    latencies = [x for n in nodes for x in n.latencies]
    text = report(args, wall, base, latencies, check)
    print()
    print(text)
    if failures:
        print("FAILURES:\n" + "\n".join(failures))
    ok = (
        check["lost"] == 0 and check["duplicated"] == 0 and check["acknowledged"] == check["sealed"]
    )
    if not ok or failures:
        raise SystemExit("submissions were lost, duplicated or not acknowledged")
    if not args.no_docs:
        update_docs(text, machine(), DOCS, MARKERS, "## Hub intake under load")
        print(f"updated {DOCS}")
    return {"wall": wall, "baseline": base, "check": check}


if __name__ == "__main__":
    main()
