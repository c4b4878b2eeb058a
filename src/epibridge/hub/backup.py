"""Back up a hub to one file, and restore it into a new folder and database.

The backup is a tar archive (the sealed files inside are encrypted and do not compress):

    backup.json                     what is inside: versions, tables with row counts, and
                                    the SHA-256 of every other member
    home/hub.toml, home/keys/..., home/parties/..., home/agreements/...,
    home/trust-list.jws             the hub's folder (keys stay encrypted under the
                                    passphrase, which is not in the backup)
    spool/<file>.zip                every sealed submission as received
    tables/<table>.jsonl.gz         every row of every table, one JSON object per line

Tables are dumped row by row through SQLAlchemy, so a backup of a SQLite hub restores
into PostgreSQL and back. ``restore`` refuses an archive whose members do not match
``backup.json``, creates the schema with the migrations, loads the rows in dependency
order, points each submission at its file in the new spool, and moves PostgreSQL's
sequences past the restored keys. The restored log verifies (``audit verify``) because
nothing in a leaf depends on where the hub lives.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Date, Engine, Table, insert, select, text

from epibridge import __version__
from epibridge.files import sha256_file
from epibridge.hub.home import CONFIG, HubHome
from epibridge.hub.migrate import current_revision
from epibridge.hub.store import HubStore
from epibridge.hub.tables import (
    UTCDateTime,
    access_log_table,
    alert_deliveries_table,
    alert_events_table,
    alerts_table,
    countersignatures_table,
    hub_users_table,
    log_entries_table,
    regional_cases_table,
    regional_counts_table,
    regional_denominators_table,
    regional_reporting_table,
    rejections_table,
    submission_receipts_table,
    submissions_table,
    tree_heads_table,
)
from epibridge.model.errors import EpibridgeError

FORMAT = 1
#: Parents before children (foreign keys).
TABLES: tuple[Table, ...] = (
    submissions_table,
    submission_receipts_table,
    rejections_table,
    regional_counts_table,
    regional_cases_table,
    regional_reporting_table,
    regional_denominators_table,
    alerts_table,
    alert_events_table,
    alert_deliveries_table,
    log_entries_table,
    tree_heads_table,
    countersignatures_table,
    hub_users_table,
    access_log_table,
)
_HOME_ITEMS = (CONFIG, "keys", "parties", "agreements", "trust-list.jws")
_BATCH = 5_000


class BackupError(EpibridgeError):
    """A backup that cannot be written or restored as asked."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    rows: dict[str, int]
    files: int
    size_bytes: int


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _rows(engine: Engine, table: Table) -> Iterator[dict[str, Any]]:
    key = list(table.primary_key.columns)
    with engine.connect() as c:
        result = c.execution_options(stream_results=True).execute(select(table).order_by(*key))
        for row in result:
            yield {k: _jsonable(v) for k, v in row._mapping.items()}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> str:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(data).hexdigest()


def backup(
    home: HubHome, out: Path, progress: Callable[[str], None] = lambda s: None
) -> BackupReport:
    """Write the whole hub to ``out`` (a new file; written beside it, then renamed)."""
    if out.exists():
        raise BackupError(f"{out} exists; choose a new file name for the backup")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    members: dict[str, str] = {}
    counts: dict[str, int] = {}
    with HubStore.open(home.config.database) as store, tarfile.open(partial, "w") as tar:
        for item in _HOME_ITEMS:
            source = home.folder / item
            paths = (
                sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
            )
            for path in paths:
                if path.exists() and not path.name.endswith(".partial"):
                    name = f"home/{path.relative_to(home.folder).as_posix()}"
                    tar.add(path, arcname=name, recursive=False)
                    members[name] = sha256_file(path)
        progress("sealed files")
        for s in store.submissions():
            path = Path(s.stored_path)
            if not path.is_file():
                raise BackupError(
                    f"{path}: the sealed file of submission {s.submission_id} is missing; the "
                    "hub's spool is damaged (restore it from an older backup first)"
                )
            name = f"spool/{path.name}"
            tar.add(path, arcname=name, recursive=False)
            members[name] = sha256_file(path)
        for table in TABLES:
            progress(f"table {table.name}")
            buffer = io.BytesIO()
            n = 0
            with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
                for row in _rows(store.engine, table):
                    gz.write(json.dumps(row, sort_keys=True).encode() + b"\n")
                    n += 1
            counts[table.name] = n
            name = f"tables/{table.name}.jsonl.gz"
            members[name] = _add_bytes(tar, name, buffer.getvalue())
        manifest = {
            "format": FORMAT,
            "epibridge": __version__,
            "schema_revision": current_revision(store.engine),
            "tables": counts,
            "members": members,
        }
        _add_bytes(tar, "backup.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
    partial.replace(out)
    files = sum(1 for name in members if name.startswith("spool/"))
    return BackupReport(out, counts, files, out.stat().st_size)


def _convert(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    converted = {}
    for column in table.columns:
        value = row.get(column.name)
        if value is not None and isinstance(column.type, UTCDateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(column.type, Date):
            value = date.fromisoformat(value)
        converted[column.name] = value
    return converted


def _check_members(tar: tarfile.TarFile, manifest: dict[str, Any], work: Path) -> None:
    expected = dict(manifest["members"])
    for member in tar.getmembers():
        if member.name == "backup.json":
            continue
        if member.name not in expected or not member.isfile():
            raise BackupError(f"the backup holds {member.name!r}, which backup.json does not list")
        target = work / member.name
        if ".." in Path(member.name).parts or member.name.startswith("/"):
            raise BackupError(f"the backup member {member.name!r} points outside its folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None
        with target.open("wb") as f:
            shutil.copyfileobj(source, f)
        if sha256_file(target) != expected.pop(member.name):
            raise BackupError(f"the backup member {member.name} is damaged (its SHA-256 differs)")
    if expected:
        raise BackupError(f"the backup lacks {', '.join(sorted(expected))}")


def restore(
    archive: Path,
    folder: Path,
    database: str | None = None,
    progress: Callable[[str], None] = lambda s: None,
) -> HubHome:
    """Restore ``archive`` into a new hub folder (and a new, empty database)."""
    if (folder / CONFIG).exists():
        raise BackupError(f"{folder}: a hub already lives here; restore into a new folder")
    with tempfile.TemporaryDirectory(prefix="epibridge-restore-") as tmp:
        work = Path(tmp)
        try:
            with tarfile.open(archive, "r") as tar:
                raw = tar.extractfile("backup.json")
                if raw is None:
                    raise KeyError("backup.json")
                manifest = json.loads(raw.read())
                if manifest.get("format") != FORMAT:
                    raise BackupError(
                        f"{archive}: backup format {manifest.get('format')} is unknown"
                    )
                _check_members(tar, manifest, work)
        except (tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
            raise BackupError(f"{archive}: not an epibridge hub backup ({exc})") from None
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(work / "home", folder, dirs_exist_ok=True)
        (folder / "spool").mkdir(exist_ok=True)
        if (work / "spool").exists():
            for path in (work / "spool").iterdir():
                shutil.copyfile(path, folder / "spool" / path.name)
        for sub in ("keys",):
            (folder / sub).chmod(0o700)
            for path in (folder / sub).iterdir():
                path.chmod(0o600)
        url = database or f"sqlite:///{(folder / 'hub.sqlite').resolve()}"
        config = (folder / CONFIG).read_text(encoding="utf-8")
        lines = [
            f"database = {json.dumps(url)}" if line.startswith("database =") else line
            for line in config.splitlines()
        ]
        (folder / CONFIG).write_text("\n".join(lines) + "\n", encoding="utf-8")
        home = HubHome(folder)
        with HubStore.open(url) as store:
            if store.submissions() or store.rejections():
                raise BackupError(f"the database {url.split('@')[-1]} is not empty")
            for table in TABLES:
                progress(f"table {table.name}")
                _load(store.engine, table, work / "tables" / f"{table.name}.jsonl.gz", folder)
            _advance_sequences(store.engine)
    return home


def _load(engine: Engine, table: Table, path: Path, folder: Path) -> None:
    if not path.exists():
        # A backup written before the table existed (its manifest, checked above, does
        # not list it): the hub had no such rows.
        return
    batch: list[dict[str, Any]] = []
    with gzip.open(path, "rt", encoding="utf-8") as lines, engine.begin() as c:
        for line in lines:
            row = _convert(table, json.loads(line))
            if table is submissions_table:
                row["stored_path"] = str(
                    (folder / "spool" / Path(row["stored_path"]).name).resolve()
                )
            batch.append(row)
            if len(batch) >= _BATCH:
                c.execute(insert(table), batch)
                batch = []
        if batch:
            c.execute(insert(table), batch)


def _advance_sequences(engine: Engine) -> None:
    """PostgreSQL: move the auto-numbering of restored keys past the highest restored one."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as c:
        for table, column in (
            (rejections_table, "id"),
            (regional_counts_table, "row_id"),
            (regional_cases_table, "row_id"),
            (regional_reporting_table, "row_id"),
            (regional_denominators_table, "row_id"),
            (access_log_table, "id"),
        ):
            c.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "
                    f"COALESCE((SELECT max({column}) FROM {table.name}), 0) + 1, false)"
                )
            )
