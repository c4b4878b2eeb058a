"""A real hub process killed in the middle of an upload, and restarted.

The node's push is cut by SIGKILL on the hub after two chunks have been confirmed; the
next push, after the hub is back, resumes from the hub's offset (not from zero), and the
hub ends with exactly one copy. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from epibridge.hub.home import HubHome
from epibridge.hub.serve import free_local_port
from epibridge.node.exchange import push_over_http
from epibridge.node.outbox import Outbox
from epibridge.node.state import NodeState
from epibridge.protect import state_path
from tests.exchange_setup import PASSPHRASE, Parties, ok, seal, set_up
from tests.hub import test_store
from tests.hub.payloads import counts_table

url = test_store.url  # an empty SQLite file, or an empty PostgreSQL schema

CHUNK = 256 * 1024


class HubProcess:
    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.base = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "EPIBRIDGE_KEY_PASSPHRASE": PASSPHRASE}
        command = [sys.executable, "-m", "epibridge.cli", "hub", "serve"]
        command += ["--home", str(self.home), "--port", str(self.port)]
        with (self.home / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.home / "serve.log").read_text()
            try:
                if httpx.get(f"{self.base}/v1/versions", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("the hub did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown handler runs
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


@pytest.fixture
def setup(tmp_path: Path, url: str) -> Iterator[tuple[Parties, HubProcess]]:
    port = free_local_port()
    parties = set_up(tmp_path, database=url, url=f"http://127.0.0.1:{port}")
    hub = HubProcess(parties.hub, port)
    yield parties, hub
    hub.stop()


def _bulk_release(p: Parties, rows: int) -> None:
    """Replace the release's counts by a large table, so that it needs several chunks."""
    counts = p.release / "counts.parquet"
    pq.write_table(counts_table(rows), counts)
    receipt = json.loads((p.release / "receipt.json").read_text())
    receipt["files"]["counts.parquet"] = {
        "rows": rows,
        "sha256": hashlib.sha256(counts.read_bytes()).hexdigest(),
    }
    (p.release / "receipt.json").write_text(json.dumps(receipt))


def _now() -> datetime:
    return datetime.now(UTC)


def test_hub_killed_mid_upload_resumes_and_keeps_one_copy(
    setup: tuple[Parties, HubProcess],
) -> None:
    p, hub = setup
    _bulk_release(p, 60_000)  # about 1.2 MB: several 256 KiB chunks
    sid = seal(p)
    hub.start()

    offsets: list[int] = []

    def kill_after_two(offset: int) -> None:
        offsets.append(offset)
        if len(offsets) == 2:
            hub.kill()

    first = push_over_http(
        p.node,
        PASSPHRASE,
        hub.base,
        _now,
        random.Random(1),
        chunk_size=CHUNK,
        chunk_threshold=CHUNK,
        on_chunk=kill_after_two,
    )
    assert first.push.retrying == (sid,) and not first.push.acknowledged
    assert offsets == [CHUNK, 2 * CHUNK]
    with HubHome(p.hub).open_store() as store:
        assert store.submissions() == []

    hub.start()
    time.sleep(2.1)  # the first retry is due within the backoff base (2 s)
    resumed: list[int] = []
    second = push_over_http(
        p.node,
        PASSPHRASE,
        hub.base,
        _now,
        random.Random(2),
        chunk_size=CHUNK,
        chunk_threshold=CHUNK,
        on_chunk=resumed.append,
    )
    assert second.push.acknowledged == (sid,), second
    assert resumed and resumed[0] == 3 * CHUNK  # resumed after the two confirmed chunks
    with HubHome(p.hub).open_store() as store:
        held = store.submissions()
    assert [s.submission_id for s in held] == [sid]
    kept = Path(held[0].stored_path)
    sealed = p.node / "outbox" / f"{sid}.zip"
    assert kept.read_bytes() == sealed.read_bytes()
    assert [f.name for f in (p.hub / "spool").glob(f"{sid}*.zip")] == [kept.name]
    assert not list((p.hub / "spool" / "uploads").glob("*"))  # the finished upload is gone
    with NodeState(state_path(p.node)) as state:
        item = Outbox(state).item(sid)
    assert item is not None and item.state == "acknowledged"

    # Sent once more (an answer lost, a second node operator): still one copy.
    with NodeState(state_path(p.node)) as state, state.write() as con:
        con.execute(
            "UPDATE outbox SET state = 'queued', next_attempt_at = created_at"
            " WHERE submission_id = ?",
            (sid,),
        )
    third = push_over_http(p.node, PASSPHRASE, hub.base, _now, random.Random(3))
    assert third.push.duplicates == (sid,)
    assert ok("hub", "submissions", *p.hub_opt).count(sid) == 1
    with HubHome(p.hub).open_store() as store:
        assert [s.submission_id for s in store.submissions()] == [sid]
