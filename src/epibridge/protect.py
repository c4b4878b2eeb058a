"""Protect: apply a data-sharing agreement to harmonized data and write a release.

The imperative shell around the protect stages (``pipeline/policy``, ``release_counts``,
``release_cases``, ``suppress``, ``noise``, ``kanon``, ``pseudonym``): it reads the node's
harmonized tables, the node's state (stops, privacy ledger, transfer register) and its
pseudonym key, runs the stages, and writes the release with its policy receipt. Every
refusal happens before anything is written; a release is written to a temporary folder
and moved into place only when complete. See docs/sharing-agreements.md.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from epibridge import __version__
from epibridge.backend import Backend, open_backend
from epibridge.engines import Engine
from epibridge.files import sha256_file
from epibridge.model.agreement import Agreement, Refusal, Withheld
from epibridge.model.errors import SourceError
from epibridge.node.ledger import PrivacyLedger
from epibridge.node.register import Transfer, TransferRegister
from epibridge.node.secrets import pseudonym_master_key
from epibridge.node.state import NodeState
from epibridge.node.stops import AgreementStops
from epibridge.pipeline import policy
from epibridge.pipeline.release_cases import protect_cases
from epibridge.pipeline.release_counts import (
    Blocks,
    cells_from_cases,
    cells_from_counts,
    dense_blocks,
    dimensions,
    generalized,
    observed,
    period_columns,
    to_blocks,
)
from epibridge.pipeline.release_denominators import denominator_cells, denominators_release
from epibridge.pipeline.release_reporting import covered, reporting_cells, reporting_release
from epibridge.pipeline.release_table import budget_period_of, noised_release, suppressed_release
from epibridge.registry import geography
from epibridge.registry.calendars import period_containing

Progress = Callable[[str, float | None], None]


@dataclass
class ProtectResult:
    release_id: str
    out: Path
    receipt: dict[str, Any]
    withheld: list[Withheld] = field(default_factory=list)


def state_path(home: Path) -> Path:
    return home / "state.sqlite"


#: Columns every harmonized table of a dataset has; a file without them was not written
#: by ingest.
_AREA = frozenset({"country", "admin1", "area", "area_level"})
_PERIOD = frozenset({"period_type", "calendar", "period_start", "period_end"})
_NEEDED = {
    "cases": _AREA | _PERIOD | {"disease"},
    "counts": _AREA | _PERIOD | {"disease"},
    "reporting": _AREA | _PERIOD | {"disease", "reports_expected", "reports_received"},
    "denominators": _AREA | {"year", "population", "source"},
}
#: The datasets ``epibridge ingest`` writes, each as ``<name>.parquet``.
INPUTS = tuple(_NEEDED)


def _read(backend: Backend, path: Path, dataset: str = "counts") -> ir.Table:
    """A harmonized table written by ``epibridge ingest``, or one clear error naming it."""
    try:
        # Checked here (the footer, not the rows) so that every engine refuses alike.
        pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise SourceError(
            path,
            f"not a readable Parquet file ({str(exc).splitlines()[0]})",
            "point --in at the output folder of 'epibridge ingest', and run ingest again if "
            "the file was damaged",
        ) from None
    table = backend.read_parquet(path)
    missing = sorted(_NEEDED[dataset] - set(table.columns))
    if missing:
        raise SourceError(
            path,
            f"not a harmonized table: no column {', '.join(missing)}",
            "point --in at the output folder of 'epibridge ingest'",
        )
    return table


def _inputs(in_dirs: Sequence[Path]) -> dict[str, Path]:
    """Each dataset's harmonized table among the folders; one folder per dataset."""
    found: dict[str, Path] = {}
    for in_dir in in_dirs:
        if not in_dir.is_dir():
            raise SourceError(
                in_dir,
                "no such folder",
                "point --in at the output folder of 'epibridge ingest'",
            )
        for name in INPUTS:
            path = in_dir / f"{name}.parquet"
            if not path.is_file():
                continue
            if name in found:
                raise Refusal(
                    f"two input folders hold {name}.parquet ({found[name].parent} and {in_dir})",
                    "give each dataset once: one --in folder per ingest run",
                )
            found[name] = path
    return found


def _datasets(
    agreement: Agreement, inputs: dict[str, Path], asked: Sequence[str] | None
) -> list[str]:
    if asked:
        policy.check_request(agreement, asked, None)
        wanted = list(asked)
    else:
        wanted = [
            d for d in agreement.datasets if d in inputs or (d == "counts" and "cases" in inputs)
        ]
    for ds in wanted:
        # counts are built from the line list when there is one
        found = ("cases", "counts") if ds == "counts" else (ds,)
        if not any(name in inputs for name in found):
            names = " or ".join(f"{name}.parquet" for name in found)
            raise Refusal(
                f"{ds} was asked for but no input folder has {names}",
                f"add --in with the output folder of 'epibridge ingest' for a {ds} profile",
            )
    if not wanted:
        raise Refusal(
            "the input folder holds nothing this agreement lets leave "
            f"(it allows {', '.join(agreement.datasets)}; found {', '.join(inputs) or 'nothing'})",
            "point --in at the output folder of 'epibridge ingest' "
            "(cases.parquet, counts.parquet, reporting.parquet or denominators.parquet)",
        )
    return wanted


def _select(
    t: ir.Table, agreement: Agreement, period_from: date | None, period_to: date | None
) -> tuple[ir.Table, list[Withheld], int]:
    """Rows of the agreement's diseases and the asked periods; counts of the others."""
    n_all = _rows(t)
    _own_country(t, agreement)
    withheld = []
    keep = t["disease"].isin(list(agreement.diseases))
    n_disease = _rows(t.filter(~keep))
    if n_disease:
        withheld.append(Withheld("records", "disease not covered by the agreement", n_disease))
    t, n_out = _in_window(t.filter(keep), period_from, period_to)
    if n_out:
        withheld.append(Withheld("records", "period outside --from/--to", n_out))
    return t, withheld, n_all


def protect(
    agreement: Agreement,
    in_dir: Path | Sequence[Path],
    out: Path,
    home: Path,
    today: date,
    now: datetime,
    *,
    datasets: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    period_from: date | None = None,
    period_to: date | None = None,
    published_through: date | None = None,
    progress: Progress | None = None,
    engine: Engine = "duckdb",
    spark: Any = None,
) -> ProtectResult:
    """Apply ``agreement`` to the harmonized tables in ``in_dir`` (one folder, or several:
    each dataset in one of them); write the release to ``out``. ``engine="spark"`` runs
    the selection and aggregation on ``spark`` (a session from ``engines.spark_session``)."""
    report = progress or (lambda step, done: None)
    if (out / "receipt.json").exists():
        raise Refusal(
            f"{out} already holds a release (receipt.json)",
            "write each release to a new folder; releases are never overwritten",
        )
    in_dirs = [in_dir] if isinstance(in_dir, Path) else list(in_dir)
    inputs = _inputs(in_dirs)
    with (
        NodeState(state_path(home)) as state,
        tempfile.TemporaryDirectory(prefix="epibridge-protect-") as work,
        open_backend(engine, Path(work), spark) as backend,
    ):
        stop = AgreementStops(state).stopped(agreement.id, agreement.version)
        policy.check_in_force(agreement, today, stop.reason if stop else None)
        wanted = _datasets(agreement, inputs, datasets)
        policy.check_request(agreement, wanted, fields)
        cutoff = policy.embargo_cutoff(agreement, today, published_through)
        if agreement.privacy is not None and "counts" in wanted:
            policy.check_private_window(agreement, period_from, period_to)
        release_id = str(uuid.uuid4())
        receipt = _receipt_head(agreement, release_id, now)
        parts = _Parts()
        source = "cases" if "cases" in inputs else "counts"
        if "counts" in wanted:
            report("aggregating", None)
            t = parts.select(backend, inputs[source], agreement, period_from, period_to)
            table, section, w, spend = _counts_release(
                agreement, t, source, fields, (period_from, period_to), cutoff, today, report
            )
            parts.add("counts", table, section, w)
        if "cases" in wanted:
            report("protecting the line list", None)
            t = parts.select(backend, inputs["cases"], agreement, period_from, period_to)
            key = pseudonym_master_key(home) if "case_id" in agreement.case_fields else None
            table, section, w = protect_cases(t, agreement, fields, key, cutoff, today)
            parts.add("cases", table, section, w)
        window = (period_from, period_to)
        _context(parts, backend, inputs, wanted, agreement, window, cutoff, today, report)
        _check_combination(state, agreement, list(parts.tables), parts.spans)
        receipt["datasets"] = parts.sections
        tables, withheld = parts.tables, parts.withheld
        spans = parts.spans + parts.report_spans
        receipt["withheld"] = [w.__dict__ for w in withheld]
        receipt["period"] = _period(spans)
        people = inputs.get("cases", inputs.get("counts"))
        receipt["source_quality"] = None if people is None else _source_quality(people.parent)
        if "counts" in wanted and spend is not None:
            _spend(state, agreement, spend, release_id, now, receipt)
        report("writing", None)
        staged = _stage(out, tables, receipt)
        try:
            _register(state, agreement, receipt, tables, withheld, spans, staged, out, now)
            _publish(staged, out)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    return ProtectResult(release_id, out, receipt, withheld)


def _context(
    parts: _Parts,
    backend: Backend,
    inputs: dict[str, Path],
    wanted: list[str],
    agreement: Agreement,
    window: tuple[date | None, date | None],
    cutoff: date,
    today: date,
    report: Progress,
) -> None:
    """The datasets released beside the cases: reporting and denominators."""
    if "reporting" in wanted:
        report("summing reports", None)
        parts.reporting(backend, inputs["reporting"], agreement, window, cutoff, today)
    if "denominators" in wanted:
        report("placing population figures", None)
        parts.denominators(backend, inputs["denominators"], agreement)


def _grid(
    agreement: Agreement, blocks: Blocks, period_from: date | None, period_to: date | None
) -> Blocks:
    """Under differential privacy: every area of the level x every period x every disease."""
    assert period_from is not None and period_to is not None  # policy.check_private_window
    first, last = period_from, period_to
    typ = agreement.time_resolution
    periods: list[date] = []
    p = period_containing(first, typ, agreement.calendar)
    while p.end <= last:
        # Only periods wholly inside the window, as the data were selected.
        if p.start >= first:
            periods.append(p.start)
        p = period_containing(p.end + timedelta(days=1), typ, agreement.calendar)
    areas = [
        (u.code, u.level)
        for u in geography.units(agreement.sender)
        if u.level == agreement.area_level
        and (u.valid_from is None or u.valid_from <= last)
        and (u.valid_to is None or u.valid_to >= first)
    ]
    return dense_blocks(blocks, areas, periods, agreement.diseases)


def _counts_release(
    agreement: Agreement,
    t: ir.Table,
    source: str,
    fields: Sequence[str] | None,
    window: tuple[date | None, date | None],
    cutoff: date,
    today: date,
    report: Progress,
) -> tuple[pa.Table, dict[str, Any], list[Withheld], tuple[str, float] | None]:
    allowed = set(fields) if fields is not None else set(agreement.count_fields)
    cols = set(t.columns)
    has_sex = "sex" in cols and "sex" in allowed
    has_age = ("age_years" in cols or "age_band" in cols) and "age_band" in allowed
    dims = dimensions(agreement, has_sex, has_age)
    changed = generalized(t, agreement).to_pyarrow().to_pylist()[0]
    build = cells_from_cases if source == "cases" else cells_from_counts
    cells = build(t, agreement, dims).to_pyarrow()
    measures = ["cases"]
    if "deaths" in cells.column_names and "deaths" in allowed:
        measures.append("deaths")
    if agreement.privacy is None and agreement.show_zeros:
        # An unlisted category reads as zeros: only where zeros may be shown.
        dims = observed(dims, cells)
    blocks = to_blocks(cells, dims, measures)
    if agreement.privacy is not None:
        blocks = _grid(agreement, blocks, *window)
    if blocks.count:
        ends = period_columns(blocks.period_start, agreement)["period_end"]
        policy.check_embargo(agreement, max(ends.to_pylist()), cutoff, today)
    section: dict[str, Any] = {
        "source": f"{source}.parquet",
        "blocks": blocks.count,
        "breakdowns": list(dims.names),
        "measures": measures,
        "generalized": {
            "area": f"admin level {agreement.area_level}",
            "period": agreement.time_resolution,
            **({"age": f"bands {list(agreement.age_bands)}"} if "age_band" in dims.names else {}),
        },
        "fields_dropped": sorted(set(agreement.count_fields) - set(dims.names) - set(measures)),
        "records_generalized": {
            k: v for k, v in changed.items() if k != "age" or "age_band" in dims.names
        },
    }
    withheld: list[Withheld] = []
    spend = None
    if agreement.privacy is not None:
        report("adding noise", None)
        budget_period = budget_period_of(agreement, blocks)
        table, info = noised_release(blocks, agreement)
        section["privacy"] = info
        spend = (budget_period, agreement.privacy.epsilon)
    else:
        report("suppressing small cells", None)
        table, info = suppressed_release(blocks, agreement)
        section["suppression"] = info
        small = f"count from {0 if not agreement.show_zeros else 1} to {agreement.k - 1}"
        withheld.append(Withheld("cells", small, info["primary"]))
        withheld.append(Withheld("cells", "complementary suppression", info["secondary"]))
    section["rows"] = table.num_rows
    return table, section, withheld, spend


@dataclass
class _Parts:
    """What a release gathers: tables, receipt sections, withheld lines, periods covered."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    withheld: list[Withheld] = field(default_factory=list)
    spans: list[tuple[date | None, date | None]] = field(default_factory=list)
    #: Periods of the reporting released beside (kept apart from ``spans``: the line list
    #: vs counts check concerns cases only).
    report_spans: list[tuple[date | None, date | None]] = field(default_factory=list)
    _selected: dict[Path, tuple[ir.Table, int]] = field(default_factory=dict)

    def select(
        self,
        backend: Backend,
        path: Path,
        agreement: Agreement,
        period_from: date | None,
        period_to: date | None,
    ) -> ir.Table:
        """The input's rows the agreement covers (once per input file)."""
        if path not in self._selected:
            t, w, n_read = _select(_read(backend, path), agreement, period_from, period_to)
            self.withheld += w
            self.spans.append(_span(t))
            self._selected[path] = (t, n_read)
        return self._selected[path][0]

    def add(self, name: str, table: pa.Table, section: dict[str, Any], w: list[Withheld]) -> None:
        section["records_read"] = sum(n for _, n in self._selected.values())
        self.tables[name] = table
        self.sections[name] = section
        self.withheld += w

    def reporting(
        self,
        backend: Backend,
        path: Path,
        agreement: Agreement,
        window: tuple[date | None, date | None],
        cutoff: date,
        today: date,
    ) -> None:
        """Reports expected and received, of the agreement's diseases (and of all diseases),
        summed to its area level and time resolution; no suppression (module docstring of
        ``pipeline/release_reporting``)."""
        t = _read(backend, path, "reporting")
        n_read = _rows(t)
        _own_country(t, agreement)
        keep = covered(t, agreement)
        n_disease = _rows(t.filter(~keep))
        t = t.filter(keep)
        withheld = []
        if n_disease:
            withheld.append(Withheld("report records", "disease not covered", n_disease))
        t, n_out = _in_window(t, *window)
        if n_out:
            withheld.append(Withheld("report records", "period outside --from/--to", n_out))
        table = reporting_release(reporting_cells(t, agreement).to_pyarrow(), agreement)
        if table.num_rows:
            last = max(table.column("period_end").to_pylist())
            policy.check_embargo(agreement, last, cutoff, today)
            first = min(table.column("period_start").to_pylist())
            self.report_spans.append((first, last))
        self.tables["reporting"] = table
        self.sections["reporting"] = {
            "source": path.name,
            "records_read": n_read,
            "rows": table.num_rows,
            "generalized": {
                "area": f"admin level {agreement.area_level}",
                "period": agreement.time_resolution,
            },
            "protection": "none: counts of reports from reporting units, not of people",
        }
        self.withheld += withheld

    def denominators(self, backend: Backend, path: Path, agreement: Agreement) -> None:
        """Population per area and year at the agreement's area level (no period window:
        a population is not a period's data and no embargo applies)."""
        t = _read(backend, path, "denominators")
        _own_country(t, agreement)
        table = denominators_release(denominator_cells(t, agreement).to_pyarrow(), agreement)
        self.tables["denominators"] = table
        self.sections["denominators"] = {
            "source": path.name,
            "records_read": _rows(t),
            "rows": table.num_rows,
            "generalized": {"area": f"admin level {agreement.area_level}"},
            "breakdowns": [b for b in ("sex", "age_band") if b in agreement.count_fields],
            "protection": "none: population figures, not data about people",
        }


def _rows(t: ir.Table) -> int:
    return int(t.count().to_pyarrow().as_py())


def _own_country(t: ir.Table, agreement: Agreement) -> None:
    """Refuse data of another country than the agreement's sender."""
    countries = t.select("country").distinct().to_pyarrow().column("country").to_pylist()
    foreign = sorted(c for c in countries if c != agreement.sender)
    if foreign:
        raise Refusal(
            f"the input holds data of {', '.join(foreign)}, but agreement {agreement.id} is "
            f"for data of {agreement.sender}",
            "protect each country's data under that country's own agreement",
        )


def _in_window(
    t: ir.Table, period_from: date | None, period_to: date | None
) -> tuple[ir.Table, int]:
    """The rows whose period lies inside --from/--to, and how many fell outside."""
    if period_from is None and period_to is None:
        return t, 0
    inside = ibis.literal(True)
    if period_from is not None:
        inside &= t["period_start"] >= period_from
    if period_to is not None:
        inside &= t["period_end"] <= period_to
    return t.filter(inside), _rows(t.filter(~inside))


def _check_combination(
    state: NodeState,
    agreement: Agreement,
    datasets: list[str],
    spans: list[tuple[date | None, date | None]],
) -> None:
    """Refuse to send a line list where counts of the same cases went (or the reverse).

    Counting a line list's records adds equations across the blocks of a counts release
    and can undo its suppression, so one recipient gets each disease and period in one
    form only, whatever the agreements.
    """
    starts = [a for a, _ in spans if a is not None]
    ends = [b for _, b in spans if b is not None]
    if not starts:
        return
    first, last = min(starts), max(ends)
    other = {"cases": "counts", "counts": "cases"}
    for t in TransferRegister(state).transfers():
        kinds = set(t.datasets.split(",")) & {other[d] for d in datasets if d in other}
        diseases = set(t.diseases.split(";")) & set(agreement.diseases)
        if t.recipient != agreement.recipient or not kinds or not diseases:
            continue
        if t.period_from is None or t.period_to is None:
            continue
        if t.period_from <= last and first <= t.period_to:
            kind = kinds.pop()
            raise Refusal(
                f"{agreement.recipient} already received {kind} of {', '.join(sorted(diseases))} "
                f"for {t.period_from} to {t.period_to} (release {t.release_id} under "
                f"{t.agreement_id}); with this release it could combine the line list and the "
                "counts to work out suppressed counts",
                "release only periods or diseases it has not received in the other form "
                "(--from/--to), or send it the same form as before",
            )


def _receipt_head(agreement: Agreement, release_id: str, now: datetime) -> dict[str, Any]:
    return {
        "receipt_version": 1,
        "release_id": release_id,
        "created_at": now.isoformat(),
        "epibridge": __version__,
        "agreement": {
            "id": agreement.id,
            "version": agreement.version,
            "sha256": agreement.sha256,
        },
        "sender": agreement.sender,
        "recipient": agreement.recipient,
        "purposes": list(agreement.purposes),
        "legal_basis": agreement.legal_basis,
        "datasets": {},
    }


def _spend(
    state: NodeState,
    agreement: Agreement,
    spend: tuple[str, float],
    release_id: str,
    now: datetime,
    receipt: dict[str, Any],
) -> None:
    """Charge the privacy ledger (atomic; refuses when the budget would be exceeded)."""
    assert agreement.privacy is not None
    budget_period, epsilon = spend
    remaining = PrivacyLedger(state).spend(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        budget_period=budget_period,
        epsilon=epsilon,
        budget=agreement.privacy.budget,
        release_id=release_id,
        at=now,
    )
    privacy = receipt["datasets"]["counts"]["privacy"]
    privacy["budget_period_label"] = budget_period
    privacy["budget_remaining"] = remaining


def _source_quality(in_dir: Path) -> dict[str, Any] | None:
    """What ingest read, accepted and quarantined (by rule), from its ``summary.json``:
    counts only, no values, so the hub can score validity without seeing a record."""
    path = in_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        return {
            "read": int(summary["read"]),
            "accepted": int(summary["accepted"]),
            "quarantined": int(summary["quarantined"]),
            "quarantined_by_rule": {
                str(k): int(v) for k, v in summary.get("quarantined_by_rule", {}).items()
            },
        }
    except (ValueError, KeyError, TypeError):
        return None


def _period(spans: list[tuple[date | None, date | None]]) -> dict[str, str | None]:
    """First and last day the release covers (the sealed manifest's ``period``)."""
    starts = [a for a, _ in spans if a is not None]
    ends = [b for _, b in spans if b is not None]
    return {
        "from": min(starts).isoformat() if starts else None,
        "to": max(ends).isoformat() if ends else None,
    }


def _span(t: ir.Table) -> tuple[date | None, date | None]:
    """First and last day of the periods a release covers (for the register)."""
    got = t.aggregate(a=t["period_start"].min(), b=t["period_end"].max()).to_pyarrow()
    return got.column("a")[0].as_py(), got.column("b")[0].as_py()


def _stage(out: Path, tables: dict[str, pa.Table], receipt: dict[str, Any]) -> Path:
    """Write the release into a hidden folder beside ``out`` (moved into place at the end)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".epibridge-release-", dir=out.parent))
    try:
        files = {}
        for name, table in tables.items():
            path = tmp / f"{name}.parquet"
            pq.write_table(table, path)
            files[path.name] = {"rows": table.num_rows, "sha256": sha256_file(path)}
        receipt["files"] = files
        text = json.dumps(receipt, indent=2, default=str)
        (tmp / "receipt.json").write_text(text, encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _publish(staged: Path, out: Path) -> None:
    if out.exists():
        for item in staged.iterdir():
            item.replace(out / item.name)
        staged.rmdir()
    else:
        staged.replace(out)


def _register(
    state: NodeState,
    agreement: Agreement,
    receipt: dict[str, Any],
    tables: dict[str, pa.Table],
    withheld: list[Withheld],
    spans: list[tuple[date | None, date | None]],
    staged: Path,
    out: Path,
    now: datetime,
) -> None:
    starts = [a for a, _ in spans if a is not None]
    ends = [b for _, b in spans if b is not None]
    counts = receipt["datasets"].get("counts", {})
    TransferRegister(state).append(
        Transfer(
            release_id=receipt["release_id"],
            created_at=now,
            sender=agreement.sender,
            recipient=agreement.recipient,
            agreement_id=agreement.id,
            agreement_version=agreement.version,
            agreement_sha256=agreement.sha256,
            purpose="; ".join(agreement.purposes),
            legal_basis=agreement.legal_basis,
            datasets=",".join(sorted(tables)),
            diseases=";".join(agreement.diseases),
            period_from=min(starts) if starts else None,
            period_to=max(ends) if ends else None,
            rows=sum(t.num_rows for t in tables.values()),
            suppressed_cells=sum(w.count for w in withheld if w.what == "cells"),
            withheld_records=receipt["datasets"]
            .get("cases", {})
            .get("k_anonymity", {})
            .get("records_withheld", 0),
            epsilon=counts.get("privacy", {}).get("epsilon"),
            receipt_sha256=sha256_file(staged / "receipt.json"),
            destination=str(out.resolve()),
        )
    )
