"""Soak: many nodes push for minutes while the hub process is killed and restarted at random.

N nodes (threads, each with its own outbox, HTTP client and keys) keep sealing small
releases and pushing them to a real ``epibridge hub serve`` process. A chaos thread
kills the hub with SIGKILL at random moments (no shutdown handler runs: uploads,
requests and transactions are cut wherever they are) and restarts it after a moment.
When the time is up, the hub is left running and every node pushes until its outbox is
empty or a deadline passes. Then it checks:

* every acknowledged submission is stored exactly once, byte-identical to what its node
  sealed, and nothing is stored that no node sealed;
* no node holds an item it believes delivered (acknowledged) that the hub does not hold,
  and after the drain no item is left unacknowledged;
* the transparency log verifies against the store (``audit verify``).

    uv run python -m benchmarks.soak_hub                        # 50 nodes, 5 minutes, PostgreSQL
    uv run python -m benchmarks.soak_hub --nodes 8 --seconds 40 --database sqlite --no-docs

``tests/test_soak.py`` runs a short version on every test run.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_intake import (
    Node,
    _countries,
    _database,
    _drop,
    _now,
    _set_up,
    _start_hub,
    node_transport,
    seal_new,
)
from benchmarks.common import DOCS, OUT, machine, update_docs
from epibridge.hub.serve import free_local_port

MARKERS = ("<!-- soak:start -->", "<!-- soak:end -->")


class Hub:
    """The hub process, restartable on the same port."""

    def __init__(self, hub: Any, passphrase: str, port: int, log: Path) -> None:
        self.hub, self.passphrase, self.port, self.log = hub, passphrase, port, log
        self.process: Any = None
        self.kills = 0
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            self.process = _start_hub(self.hub, self.passphrase, self.port, self.log)

    def kill(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
                self.process.wait()
                self.kills += 1

    def stop(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                self.process.wait(timeout=30)


def _node_loop(
    node: Node,
    work: Path,
    url: str,
    until: float,
    drain_until: float,
    stats: dict[str, Any],
    rng: random.Random,
) -> None:
    from epibridge.node import hub_link
    from epibridge.node.outbox import Backoff, Outbox
    from epibridge.node.state import NodeState
    from epibridge.protect import state_path

    trust = hub_link.trust(node.home, _now())
    sealed: dict[str, str] = {}
    with NodeState(state_path(node.home)) as state, httpx.Client(timeout=30) as client:
        outbox = Outbox(
            state,
            backoff=Backoff(base=timedelta(milliseconds=200), cap=timedelta(seconds=3)),
            lease=timedelta(seconds=20),
        )
        transport = node_transport(node, outbox, url, client)
        i = 0
        while time.monotonic() < until:
            item = seal_new(node, work, outbox, trust, rng.randint(5, 200), f"soak-{i}")
            sealed[item.submission_id] = hashlib.sha256(item.path.read_bytes()).hexdigest()
            i += 1
            outbox.push(transport, _now(), rng)
            time.sleep(rng.uniform(0, 0.5))
        while time.monotonic() < drain_until:
            left = [x for x in outbox.status() if x.state not in ("acknowledged", "rejected")]
            if not left:
                break
            outbox.push(transport, _now() + timedelta(seconds=60), rng)  # all due now
            time.sleep(0.2)
        items = outbox.status()
    stats[node.country] = {"sealed": sealed, "items": items}


def _chaos(
    hub: Hub, until: float, rng: random.Random, every: tuple[float, float], min_kills: int = 0
) -> None:
    """Kill and restart the hub at random until ``until``, and on (into the drain) until it
    has been killed ``min_kills`` times: a slow restart on a busy machine must not leave
    the soak with fewer kills than asked."""
    while True:
        time.sleep(rng.uniform(*every))
        if time.monotonic() >= until and hub.kills >= min_kills:
            return
        hub.kill()
        time.sleep(rng.uniform(0.2, 2.0))
        hub.start()


def _check(hub: Any, passphrase: str, stats: dict[str, Any]) -> dict[str, Any]:
    from epibridge.hub.audit import audit_verify

    sealed = {sid: sha for s in stats.values() for sid, sha in s["sealed"].items()}
    items = [i for s in stats.values() for i in s["items"]]
    with hub.open_store() as store:
        held = store.submissions()
        report = audit_verify(store.engine, hub.trust(hub.keys(passphrase), _now()), lambda s: None)
    ids = [s.submission_id for s in held]
    by_id = {s.submission_id: s for s in held}
    acknowledged = [i for i in items if i.state == "acknowledged"]
    return {
        "sealed": len(sealed),
        "held": len(held),
        "duplicated": len(ids) - len(set(ids)),
        "unknown_held": len(set(ids) - set(sealed)),
        "not_identical": sum(
            1
            for s in held
            if hashlib.sha256(Path(s.stored_path).read_bytes()).hexdigest()
            != sealed.get(s.submission_id)
        ),
        "acknowledged": len(acknowledged),
        "believed_delivered_not_held": sum(1 for i in acknowledged if i.submission_id not in by_id),
        "left_unacknowledged": sum(1 for i in items if i.state != "acknowledged"),
        "log_problems": report.problems,
        "log_leaves": report.leaves,
    }


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--kill-every", type=float, nargs=2, default=(5.0, 20.0))
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--drain-seconds", type=float, default=180)
    parser.add_argument(
        "--min-kills", type=int, default=0, help="kill at least this often (into the drain)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=OUT)
    parser.add_argument("--no-docs", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _arguments(argv)
    work: Path = args.out_dir / f"soak-{args.nodes}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    database, dropped = _database(args.database, work)
    hub_process = None
    try:
        port = free_local_port()
        url = f"http://127.0.0.1:{port}"
        print(f"setting up a hub and {args.nodes} nodes ...", flush=True)
        hub, passphrase, nodes = _set_up(work, database, _countries(args.nodes), url)
        hub_process = Hub(hub, passphrase, port, work / "serve.log")
        hub_process.start()
        print(f"soaking for {args.seconds:g} s with random kills ...", flush=True)
        start = time.monotonic()
        until, drain_until = start + args.seconds, start + args.seconds + args.drain_seconds
        stats: dict[str, Any] = {}
        rng = random.Random(args.seed)
        threads = [
            threading.Thread(
                target=_node_loop,
                args=(n, work, url, until, drain_until, stats, random.Random(rng.random())),
            )
            for n in nodes
        ]
        chaos = threading.Thread(
            target=_chaos,
            args=(
                hub_process,
                until,
                random.Random(rng.random()),
                args.kill_every,
                args.min_kills,
            ),
        )
        for t in [*threads, chaos]:
            t.start()
        chaos.join()
        for t in threads:
            t.join()
        seconds = time.monotonic() - start
        result = _check(hub, passphrase, stats)
    finally:
        if hub_process is not None:
            hub_process.stop()
        _drop(dropped)
    result["kills"] = hub_process.kills if hub_process is not None else 0
    result["seconds"] = round(seconds, 1)
    lines = [
        f"{args.nodes} nodes for {args.seconds:g} s on {args.database}, hub killed (SIGKILL) "
        f"{result['kills']} times at random and restarted; then drained.",
        "",
        "| measure | value |",
        "|---|---:|",
        *[f"| {k} | {v if not isinstance(v, list) else len(v)} |" for k, v in result.items()],
    ]
    text = "\n".join(lines)
    print()
    print(text)
    bad = (
        result["duplicated"]
        or result["unknown_held"]
        or result["not_identical"]
        or result["believed_delivered_not_held"]
        or result["left_unacknowledged"]
        or result["log_problems"]
        or result["held"] != result["sealed"]
    )
    if bad:
        raise SystemExit(f"the soak found a problem: {result}")
    if not args.no_docs:
        update_docs(text, machine(), DOCS, MARKERS, "## Hub soak with random kills")
    return result


if __name__ == "__main__":
    main()
