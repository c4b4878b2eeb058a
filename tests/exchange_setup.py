"""A hub and a Cambodian node set up through the command line, as their operators would.

Shared by the offline-transfer tests and the tests against a real hub process: hub
``init``, ``keys init`` on the node, key bundles exchanged and enrolled, the node joined,
an agreement signed by both parties and registered, a release protected and sealed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from tests.test_cli_node import _agreement
from tests.test_protect import _cases

PASSPHRASE = "correct horse battery staple"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "200", "EPIBRIDGE_KEY_PASSPHRASE": PASSPHRASE, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "epibridge.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=full,
    )


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    done = run(*args, env=env)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


@dataclass(frozen=True)
class Parties:
    tmp: Path
    hub: Path  # the hub's folder
    node: Path  # the node's home
    release: Path  # a protected release, ready to seal

    @property
    def hub_opt(self) -> list[str]:
        return ["--home", str(self.hub)]

    @property
    def node_opt(self) -> list[str]:
        return ["--home", str(self.node)]


def set_up(tmp: Path, database: str | None = None, url: str | None = None) -> Parties:
    hub, node = tmp / "hub", tmp / "node"
    ok("hub", "init", "--home", str(hub), *(["--database", database] if database else []))
    ok("keys", "init", "--country", "KHM", "--home", str(node))
    ok("keys", "export", "--home", str(node), "--out", str(tmp / "khm-keys.json"))
    ok("keys", "export", "--home", str(hub), "--out", str(tmp / "hub-keys.json"))
    ok("hub", "enrol", str(tmp / "khm-keys.json"), "--home", str(hub))
    ok("hub", "trust-list", "--home", str(hub), "--out", str(tmp / "trust.jws"))
    join = ["--hub-keys", str(tmp / "hub-keys.json"), "--trust-list", str(tmp / "trust.jws")]
    ok("node", "join", *join, *(["--url", url] if url else []), "--home", str(node))
    agreement = _agreement(tmp)
    ok("agreements", "sign", str(agreement), "--home", str(node))
    ok("agreements", "sign", str(agreement), "--home", str(hub))
    ok("hub", "agreements", "add", str(agreement), "--home", str(hub))
    ingested = tmp / "in"
    ingested.mkdir()
    pq.write_table(_cases(), ingested / "cases.parquet")
    release = tmp / "release"
    ok(
        "protect",
        "-a",
        str(agreement),
        "--in",
        str(ingested),
        "--out",
        str(release),
        "--today",
        "2026-11-23",
        "--home",
        str(node),
    )
    return Parties(tmp, hub, node, release)


def seal(p: Parties) -> str:
    """Seal the release; the submission id the node printed."""
    out = ok("node", "seal", str(p.release), *p.node_opt)
    words = out.split()
    return words[words.index("submission") + 1]


def another_release(p: Parties, name: str, rows: int = 40, seed: int = 5) -> Path:
    """A second release under the same agreement (new id, other cells)."""
    import hashlib
    import json
    import shutil
    import uuid

    from tests.hub.payloads import counts_table

    folder = p.tmp / name
    shutil.copytree(p.release, folder)
    counts = folder / "counts.parquet"
    pq.write_table(counts_table(rows, seed), counts)
    receipt = json.loads((folder / "receipt.json").read_text())
    receipt["release_id"] = str(uuid.uuid4())
    receipt["files"] = {
        "counts.parquet": {"rows": rows, "sha256": hashlib.sha256(counts.read_bytes()).hexdigest()}
    }
    for other in folder.glob("*.parquet"):
        if other.name != "counts.parquet":
            other.unlink()
    (folder / "receipt.json").write_text(json.dumps(receipt))
    return folder
