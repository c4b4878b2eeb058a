"""Command-line commands for the regional hub: ``epibridge hub ...``.

``init`` creates the hub's folder, keys and database; ``enrol`` adds a country's public
keys; ``trust-list`` re-issues the signed trust list; ``agreements`` registers the
agreements both parties signed; ``serve`` runs the HTTP service; ``import`` takes a sealed
file that came on a USB stick through the same checks; ``submissions`` lists what was
received and refused. Registered on the main app by ``cli.py``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from epibridge.cli_engine import (
    EngineOption,
    HubEngineOption,
    SnapshotOption,
    SparkMasterOption,
    hub_cells,
)
from epibridge.cli_hub_options import DEFAULT_HUB_HOME, HUB_HOME_ENV, AsOfOption, HubHomeOption
from epibridge.detection import Method

if TYPE_CHECKING:
    import pyarrow as pa

    from epibridge.hub.home import HubHome
    from epibridge.transport.keystore import KeyStore


hub_app = typer.Typer(
    help="Run the regional hub: set it up, enrol countries, serve, import files.",
    no_args_is_help=True,
)
hub_agreements_app = typer.Typer(
    help="The agreements the hub receives data under.", no_args_is_help=True
)


def _hub_home(home: Path | None) -> Path:
    if home is not None:
        return home
    env = os.environ.get(HUB_HOME_ENV)
    return Path(env) if env else DEFAULT_HUB_HOME


def _console() -> Console:
    return Console(highlight=False)


def _now() -> datetime:
    return datetime.now(UTC)


def _open(home: Path | None) -> tuple[HubHome, KeyStore]:
    from epibridge.cli_keys import _passphrase
    from epibridge.hub.home import HubHome

    hub = HubHome(_hub_home(home))
    return hub, hub.keys(_passphrase(confirm=False))


@hub_app.command("init")
def init(
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="SQLAlchemy URL of the hub database (default: SQLite in the hub's folder), "
            "e.g. postgresql+psycopg://user@host/db.",
        ),
    ] = None,
    trust_list_days: Annotated[
        int, typer.Option("--trust-list-days", min=1, help="How long each trust list is valid.")
    ] = 7,
    home: HubHomeOption = None,
) -> None:
    """Create the hub: its folder, keys (country HUB), database schema and first trust list."""
    from epibridge.cli_keys import _passphrase
    from epibridge.hub.home import HubHome
    from epibridge.transport.bundle import exported_bundle

    where = _hub_home(home)
    hub = HubHome.init(where, _passphrase(confirm=True), _now(), database, trust_list_days)
    bundle = exported_bundle(where)
    console = _console()
    console.print(f"[green]created[/] the hub in {escape(str(where))}", soft_wrap=True)
    console.print(f"  database: {_redacted(hub.config.database)}", soft_wrap=True)
    console.print(f"  hub root kid: {bundle.root_kid}", soft_wrap=True)
    console.print(
        "  next: 'epibridge keys export --home HUB --out hub-keys.json' for the nodes, "
        "'epibridge hub enrol' for each country's keys",
        soft_wrap=True,
    )


def _redacted(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@hub_app.command("enrol")
def enrol(
    bundle: Annotated[Path, typer.Argument(help="A country's key bundle ('keys export').")],
    home: HubHomeOption = None,
) -> None:
    """Add or update a country's public keys and publish a new trust list."""
    from epibridge.transport.bundle import read_bundle

    hub, keys = _open(home)
    offered = read_bundle(bundle)
    merged = hub.enrol(offered, keys, _now())
    trust = hub.trust(keys, _now())
    _console().print(
        f"enrolled {merged.country} (root {merged.root_kid}, {len(merged.certificates)} "
        f"certificates, {len(merged.revoked)} revoked); trust list #{trust.serial} published",
        soft_wrap=True,
    )


@hub_app.command("trust-list")
def trust_list(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write a copy here (for a USB stick).")
    ] = None,
    home: HubHomeOption = None,
) -> None:
    """Re-issue the signed trust list of every enrolled country's keys."""
    hub, keys = _open(home)
    trust = hub.publish_trust_list(keys, _now())
    if out is not None:
        out.write_text(trust.token + "\n", encoding="utf-8")
    _console().print(
        f"trust list #{trust.serial}: {', '.join(sorted(trust.roots))}; valid until "
        f"{trust.next_update:%Y-%m-%d %H:%M} UTC" + (f"; copy in {out}" if out else ""),
        soft_wrap=True,
    )


@hub_agreements_app.command("add")
def agreements_add(
    file: Annotated[
        Path, typer.Argument(help="The agreement (TOML), its .signatures.json beside it.")
    ],
    home: HubHomeOption = None,
) -> None:
    """Register an agreement both parties signed; intake accepts data under it from now on."""
    hub, keys = _open(home)
    agreement = hub.add_agreement(file, keys, _now())
    _console().print(
        f"registered {agreement.id} v{agreement.version} ({agreement.sender} -> hub, "
        f"{agreement.valid_from} to {agreement.valid_to})"
    )


@hub_agreements_app.command("list")
def agreements_list(home: HubHomeOption = None) -> None:
    """List the registered agreements."""
    from epibridge.hub.home import HubHome

    hub = HubHome(_hub_home(home))
    table = Table(title="agreements the hub receives data under")
    for col in ("id", "version", "sender", "valid", "sha256", "stopped"):
        table.add_column(col)
    stopped = hub.stops()
    for agreement, _ in hub.agreements().values():
        stop = stopped.get(agreement.id)
        table.add_row(
            agreement.id,
            agreement.version,
            agreement.sender,
            f"{agreement.valid_from} to {agreement.valid_to}",
            agreement.sha256[:12],
            "" if stop is None else f"{stop['stopped_at']}: {stop['reason']}",
        )
    _console().print(table)


@hub_agreements_app.command("stop")
def agreements_stop(
    agreement_id: Annotated[str, typer.Argument(help="The agreement id to stop.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the hub's folder).")],
    home: HubHomeOption = None,
) -> None:
    """Stop intake under an agreement at once (every version)."""
    from epibridge.hub.home import HubHome

    HubHome(_hub_home(home)).stop_agreement(agreement_id, reason, _now())
    _console().print(f"stopped {agreement_id}: the hub refuses data under it from now on")


@hub_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A sealed submission file ('node export').")],
    receipt_out: Annotated[
        Path | None,
        typer.Option(
            "--receipt-out", help="Where to write the receipt (default: FILE.receipt.jws)."
        ),
    ] = None,
    home: HubHomeOption = None,
) -> None:
    """Take a sealed file through the same checks as an upload; write the signed receipt."""
    from epibridge.hub.intake import receive

    hub, keys = _open(home)
    if not file.is_file():
        raise typer.BadParameter(f"{file}: no such file", param_hint="FILE")
    now = _now()
    with hub.open_store() as store:
        receipt = receive(file, hub.context(keys, now, store), now)
    target = receipt_out or file.with_name(file.name + ".receipt.jws")
    target.write_text(receipt.token + "\n", encoding="utf-8")
    _console().print(
        f"{receipt.status} submission {receipt.submission_id}; receipt in {escape(str(target))} "
        "(give it back to the node: 'epibridge node receipt FILE')",
        soft_wrap=True,
    )


@hub_app.command("submissions")
def submissions(
    rejections: Annotated[
        bool, typer.Option("--rejections", help="List refused attempts instead.")
    ] = False,
    home: HubHomeOption = None,
) -> None:
    """List the submissions the hub holds (or the attempts it refused, with reasons)."""
    from epibridge.hub.home import HubHome

    hub = HubHome(_hub_home(home))
    console = _console()
    with hub.open_store() as store:
        if rejections:
            table = Table(title="refused attempts")
            for col in ("when", "submission", "from", "reason", "message"):
                table.add_column(col, overflow="fold")
            for r in store.rejections():
                table.add_row(
                    f"{r.received_at:%Y-%m-%d %H:%M:%S}",
                    r.submission_id or "",
                    r.origin_country or "",
                    r.reason,
                    r.message,
                )
        else:
            table = Table(title="submissions held")
            for col in ("received", "submission", "from", "agreement", "period", "bytes"):
                table.add_column(col, overflow="fold")
            for s in store.submissions():
                period = f"{s.period_from or ''} to {s.period_to or ''}"
                table.add_row(
                    f"{s.received_at:%Y-%m-%d %H:%M:%S}",
                    s.submission_id,
                    s.origin_country,
                    s.agreement_id,
                    period,
                    f"{s.size_bytes:,}",
                )
    console.print(table)


def _as_of(text: str | None) -> datetime:
    """``--as-of``: an ISO 8601 time (UTC when no offset is given) or a date (its midnight UTC)."""
    if text is None:
        return _now()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"'{text}' is not a date or time (write 2026-03-01 or 2026-03-01T12:00+07:00)",
            param_hint="--as-of",
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _write_table(table: pa.Table, out: Path) -> None:
    """``--out``: Parquet when the name ends in .parquet, else CSV."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)  # as ingest's --out: folders are made
    if out.suffix == ".parquet":
        pq.write_table(table, out)
    else:
        pcsv.write_csv(table, out)


@hub_app.command("counts")
def counts(
    as_of: AsOfOption = None,
    country: Annotated[
        list[str] | None, typer.Option("--country", help="Only this country (repeatable).")
    ] = None,
    disease: Annotated[
        list[str] | None, typer.Option("--disease", help="Only this disease (repeatable).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write every cell with its lineage (.csv or .parquet)."),
    ] = None,
    home: HubHomeOption = None,
) -> None:
    """The regional counts as the hub knew them at a moment, with each cell's lineage."""

    from epibridge.hub.area_counts import area_counts, whole_cases
    from epibridge.hub.home import HubHome
    from epibridge.hub.picture_expr import Filters
    from epibridge.hub.regional import counts_as_of

    at = _as_of(as_of)
    with HubHome(_hub_home(home)).open_store() as store:
        table = counts_as_of(store.engine, at, Filters(country or (), disease or ()))
    summary = Table(title=f"regional counts as of {at:%Y-%m-%d %H:%M} UTC")
    columns = ("country", "disease", "by", "cells", "cases", "suppressed")
    for col in (*columns, "submissions", "periods"):
        summary.add_column(col, justify="right" if col in (*columns[3:], "submissions") else "left")
    # Cases: one whole count per area and period (a total where sent, else its strata),
    # at the coarsest level sent; the cells themselves hold totals and strata side by side.
    cases = whole_cases(area_counts(table))
    keys = ["country", "disease", "period_type"]
    groups = table.group_by(keys).aggregate(
        [
            ([], "count_all"),
            ("cases_suppressed", "sum"),
            ("submission_id", "count_distinct"),
            ("period_start", "min"),
            ("period_end", "max"),
        ]
    )
    for row in groups.sort_by([(k, "ascending") for k in keys]).to_pylist():
        summary.add_row(
            row["country"],
            row["disease"],
            row["period_type"],
            f"{row['count_all']:,}",
            f"{cases.get((row['country'], row['disease'], row['period_type']), 0):,}",
            f"{row['cases_suppressed_sum'] or 0:,}",
            str(row["submission_id_count_distinct"]),
            f"{row['period_start_min']} to {row['period_end_max']}",
        )
    console = _console()
    console.print(summary)
    if out is not None:
        _write_table(table, out)
        console.print(f"wrote {table.num_rows:,} cells with their lineage to {escape(str(out))}")


@hub_app.command("scorecards")
def scorecards(
    as_of: AsOfOption = None,
    country: Annotated[
        list[str] | None, typer.Option("--country", help="Only this country (repeatable).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the scorecard per country, disease and period (.csv or .parquet) "
            "and the country summaries beside it (.json).",
        ),
    ] = None,
    home: HubHomeOption = None,
    engine: HubEngineOption = "database",
    spark_master: SparkMasterOption = None,
    snapshot: SnapshotOption = None,
) -> None:
    """Data quality per country: completeness, timeliness, validity, consistency."""
    import json

    from epibridge.hub.home import HubHome
    from epibridge.hub.quality import completeness_basis, score_json
    from epibridge.hub.quality import scorecards as run

    hub = HubHome(_hub_home(home))
    at = _as_of(as_of)
    with (
        hub.open_store() as store,
        hub_cells(engine, store.engine, hub.folder, snapshot, spark_master) as cells,
    ):
        cards = run(store.engine, at, hub.folder, country or (), cells=cells)
    table = Table(title=f"data quality as of {at:%Y-%m-%d %H:%M} UTC (regional median last)")
    for col in ("country", "periods", "complete", "from", "on time", "reports on time",
                "delay d", "quarantined", "suppressed", "jumps", "dupl.", "deaths>cases",
                "system"):  # fmt: skip
        left = col in ("country", "system", "from")
        table.add_column(col, justify="left" if left else "right")

    def pct(value: float | None) -> str:
        return "" if value is None else f"{value:.0%}"

    wanted = [c for c in sorted(cards.countries) if not country or c in country]
    for name in wanted:
        s = cards.countries[name]
        table.add_row(
            name,
            str(s.periods),
            pct(s.completeness),
            completeness_basis(s),
            pct(s.on_time_rate),
            pct(s.reports_on_time_rate),
            "" if s.median_delay_days is None else f"{s.median_delay_days:g}",
            pct(s.quarantined_share),
            pct(s.suppressed_share),
            str(s.jumps),
            str(s.duplicate_cells + s.repeated_cells),
            str(s.deaths_over_cases),
            "" if s.system is None else s.system.surveillance,
        )
    m = cards.regional_median
    table.add_row(
        "median",
        "",
        pct(m["completeness"]),
        "",
        pct(m["on_time_rate"]),
        pct(m["reports_on_time_rate"]),
        "" if m["median_delay_days"] is None else f"{m['median_delay_days']:g}",
        pct(m["quarantined_share"]),
        pct(m["suppressed_share"]),
        "",
        "",
        "",
        "",
    )
    console = _console()
    console.print(table)
    console.print(
        "complete: reports received / expected where the country sends its reporting "
        "(from reports), else areas with a cell / areas expected (from areas); on time: "
        "submitted within 7 days of the period's end; reports on time: as the country "
        "counted them"
    )
    if out is not None:
        _write_table(cards.periods, out)
        summary = out.with_suffix(".json")
        summary.write_text(
            json.dumps(
                {
                    "as_of": at.isoformat(),
                    "countries": [score_json(cards.countries[c]) for c in wanted],
                    "regional_median": cards.regional_median,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        console.print(f"wrote {escape(str(out))} and {escape(str(summary))}")


def _weeks(n: float) -> str:
    shown = f"{n:,.0f}"
    return f"{shown} week" if shown == "1" else f"{shown} weeks"


@hub_app.command("scan")
def scan(
    disease: Annotated[str, typer.Option("--disease", help="The regional disease code.")],
    weeks: Annotated[int, typer.Option("--weeks", min=2, help="Weeks of history scanned.")] = 26,
    max_weeks: Annotated[
        int, typer.Option("--max-weeks", min=1, help="Longest cluster, in weeks.")
    ] = 4,
    replicates: Annotated[
        int, typer.Option("--replicates", min=999, help="Monte Carlo replicates (>= 999).")
    ] = 999,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the Monte Carlo replicates.")] = 1,
    as_of: AsOfOption = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
    home: HubHomeOption = None,
) -> None:
    """Space-time clusters of a disease across borders (prospective permutation scan)."""
    import numpy as np

    from epibridge.cli_engine import engine_session
    from epibridge.engines import block_map
    from epibridge.hub.home import HubHome
    from epibridge.hub.picture_expr import Filters
    from epibridge.hub.regional import counts_as_of
    from epibridge.hub.signals import scan_grid, scan_of

    at = _as_of(as_of)
    with HubHome(_hub_home(home)).open_store() as store:
        cells = counts_as_of(store.engine, at, Filters(diseases=(disease,)))
    # Nothing to scan is said before a Spark session starts (that takes ~20 s).
    grid = scan_grid(cells, disease, weeks=weeks)
    with engine_session(engine, spark_master) as spark:
        found = scan_of(
            grid,
            np.random.default_rng(seed),
            max_weeks=max_weeks,
            replicates=replicates,
            map_blocks=block_map(engine, spark),
        )
    table = Table(
        title=f"{disease} space-time clusters, weeks {found.weeks[0]} to {found.weeks[-1]}"
    )
    for col in ("areas", "countries", "weeks", "observed", "expected", "RR", "p", "recurrence"):
        table.add_column(col, justify="left" if col in ("areas", "countries") else "right")
    for c in found.result.clusters:
        table.add_row(
            ", ".join(c.areas),
            ", ".join(c.countries) + (" (cross-border)" if c.cross_border else ""),
            f"{found.weeks[c.start]} +{c.length}",
            f"{c.observed:g}",
            f"{c.expected:.1f}",
            f"{c.relative_risk:.2f}",
            f"{c.p_value:.3f}",
            _weeks(c.recurrence_interval),
        )
    console = _console()
    console.print(table)
    if found.skipped_areas:
        console.print(
            f"left out (no coordinates in the registry): {', '.join(found.skipped_areas)}",
            soft_wrap=True,
        )


@hub_app.command("detect")
def detect(
    disease: Annotated[str, typer.Option("--disease", help="The regional disease code.")],
    method: Annotated[
        Method,
        typer.Option("--method", help="The detector, as for 'epibridge detect'."),
    ] = "noufaily",
    weeks: Annotated[
        int, typer.Option("--weeks", min=1, help="Weeks monitored, ending with the latest held.")
    ] = 8,
    as_of: AsOfOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write every monitored point (.csv or .parquet)."),
    ] = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
    home: HubHomeOption = None,
) -> None:
    """Outbreak detection over time in every country's and area's weekly counts."""
    from epibridge.cli_engine import engine_session
    from epibridge.hub.home import HubHome
    from epibridge.hub.picture_expr import Filters
    from epibridge.hub.regional import counts_as_of
    from epibridge.hub.temporal import detect_of, detection_input
    from epibridge.model.errors import EpibridgeError

    at = _as_of(as_of)
    with HubHome(_hub_home(home)).open_store() as store:
        cells = counts_as_of(store.engine, at, Filters(diseases=(disease,)))
    errors = Console(stderr=True, highlight=False)
    try:
        # The series are checked before a Spark session starts (that takes ~20 s).
        prepared = detection_input(cells, disease, method=method, weeks=weeks)
        if prepared.done is not None:
            found = prepared.done
        else:
            with engine_session(engine, spark_master) as spark:
                found = detect_of(prepared, engine=engine, spark=spark)
    except EpibridgeError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    if found.note is not None:
        errors.print(f"[bold red]error:[/] {escape(found.note)}", soft_wrap=True)
        raise typer.Exit(1)
    alarms = found.alarms
    span = f"weeks {found.weeks[0]} to {found.weeks[-1]}" if found.weeks else "no weeks"
    table = Table(title=f"{disease} alarms ({method}), {span}, as of {at:%Y-%m-%d %H:%M} UTC")
    for col in ("country", "area", "week", "starts", "observed", "expected", "upper", "p"):
        table.add_column(col, justify="left" if col in ("country", "area", "week") else "right")

    def number(value: float | None, form: str) -> str:
        return "" if value is None else format(value, form)

    for row in alarms.to_pylist():
        table.add_row(
            row["country"],
            row["area"],
            row["period"],
            str(row["week_start"]),
            number(row["observed"], "d"),
            number(row["expected"], ".1f"),
            number(row["upperbound"], ".1f"),
            number(row["pvalue"], ".3g"),
        )
    console = _console()
    console.print(table)
    console.print(
        f"{method}: {found.series} series, {found.points.num_rows:,} monitored points, "
        f"{alarms.num_rows:,} alarms",
        soft_wrap=True,
    )
    for s in found.skipped:
        console.print(f"not monitored: {s.country} {s.area}: {escape(s.reason)}", soft_wrap=True)
    if out is not None:
        _write_table(found.points, out)
        console.print(
            f"wrote {found.points.num_rows:,} monitored points to {escape(str(out))}",
            soft_wrap=True,
        )


@hub_app.command("burden")
def burden(
    disease: Annotated[str, typer.Option("--disease", help="The regional disease code.")],
    as_of: AsOfOption = None,
    country: Annotated[
        list[str] | None, typer.Option("--country", help="Only this country (repeatable).")
    ] = None,
    periods: Annotated[
        int, typer.Option("--periods", min=1, help="Latest periods shown per country.")
    ] = 4,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write every area and period (.csv or .parquet)."),
    ] = None,
    home: HubHomeOption = None,
    engine: HubEngineOption = "database",
    spark_master: SparkMasterOption = None,
    snapshot: SnapshotOption = None,
) -> None:
    """Incidence per 100,000 by area and period, reported and corrected for completeness
    and under-ascertainment, with 95% intervals (the map's table)."""
    import pyarrow.compute as pc

    from epibridge.hub.burden import burden as estimate
    from epibridge.hub.home import HubHome
    from epibridge.hub.picture_expr import Filters
    from epibridge.hub.regional import cells_for_burden
    from epibridge.hub.regional_context import burden_inputs
    from epibridge.registry.expansion import expansion_factors

    at = _as_of(as_of)
    hub = HubHome(_hub_home(home))
    factors = expansion_factors(hub.folder)
    with (
        hub.open_store() as store,
        hub_cells(engine, store.engine, hub.folder, snapshot, spark_master) as where,
    ):
        cells = cells_for_burden(where, at, Filters(country or (), (disease,)))
        extra = burden_inputs(store.engine, at, cells)
    if cells.num_rows == 0:
        errors = Console(stderr=True, highlight=False)
        errors.print(
            f"[bold red]error:[/] the hub held no counts of {escape(disease)} "
            f"as of {at:%Y-%m-%d %H:%M} UTC; 'epibridge hub counts' lists what it holds",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    table = estimate(cells, factors, **extra)
    totals = table.filter(pc.equal(table.column("status"), "total")).to_pylist()
    shown: list[dict[str, object]] = []
    for code in sorted({str(r["country"]) for r in totals}):
        mine = sorted(
            (r for r in totals if r["country"] == code), key=lambda r: str(r["period_start"])
        )
        shown += mine[-periods:]
    title = f"{disease} burden by country (latest {periods} periods), as of {at:%Y-%m-%d} UTC"
    summary = Table(title=title)
    for col in (
        "country",
        "period",
        "reported",
        "per 100k",
        "completeness",
        "factor",
        "corrected (95% interval)",
        "per 100k corrected",
    ):
        summary.add_column(col, justify="left" if col in ("country", "period") else "right")

    def num(value: object, form: str) -> str:
        return "" if value is None else format(value, form)

    for r in shown:
        summary.add_row(
            str(r["country"]),
            str(r["period"]),
            num(r["cases"], ",d")
            + (f" + {r['areas_withheld']} withheld" if r["areas_withheld"] else ""),
            num(r["incidence_per_100k"], ".1f"),
            num(r["completeness"], ".0%"),
            num(r["expansion_factor"], ".1f") or "none",
            f"{num(r['cases_corrected'], ',.0f')} "
            f"({num(r['cases_corrected_low'], ',.0f')}-{num(r['cases_corrected_high'], ',.0f')})",
            num(r["incidence_corrected"], ".1f"),
        )
    console = _console()
    console.print(summary)
    statuses = table.group_by("status").aggregate([([], "count_all")]).to_pylist()
    console.print(
        ", ".join(f"{s['count_all']:,} {s['status']}" for s in statuses)
        + " rows; factors: "
        + "; ".join(
            f"{f.country} {f.factor:g} ({f.low:g}-{f.high:g})"
            for (c, d), f in sorted(factors.items())
            if d == disease and c in {r["country"] for r in totals}
        ),
        soft_wrap=True,
    )
    if out is not None:
        _write_table(table, out)
        console.print(f"wrote {table.num_rows:,} rows to {escape(str(out))}", soft_wrap=True)


@hub_app.command("lineage")
def lineage(
    submission_id: Annotated[str, typer.Argument(help="The submission to trace.")],
    home: HubHomeOption = None,
) -> None:
    """What became of a submission: rows kept, revisions, cells in today's picture."""
    from epibridge.hub.home import HubHome
    from epibridge.hub.regional import lineage as trace

    hub = HubHome(_hub_home(home))
    with hub.open_store() as store:
        found = trace(store.engine, submission_id, _now())
        refused = [r for r in store.rejections() if r.submission_id == submission_id]
    console = _console()
    if found is None:
        if refused:
            console.print(f"submission {submission_id} was refused:")
            for r in refused:
                console.print(f"  {r.received_at:%Y-%m-%d %H:%M:%S} {r.reason}: {r.message}")
        else:
            console.print(f"the hub holds no submission {submission_id} and refused none")
        raise typer.Exit(1)
    console.print(
        f"submission {found.submission_id} from {found.origin_country} under "
        f"{found.agreement_id}, received {found.received_at:%Y-%m-%d %H:%M:%S} UTC",
        soft_wrap=True,
    )
    if found.revision_of:
        console.print(f"  corrects {found.revision_of}")
    kept = f"{found.counts_rows:,} count cells, {found.cases_rows:,} cases"
    if found.reporting_rows:
        kept += f", {found.reporting_rows:,} reporting rows"
    if found.denominators_rows:
        kept += f", {found.denominators_rows:,} population figures"
    console.print(f"  rows kept: {kept}")
    for sid, at in found.replaced_by:
        console.print(f"  replaced by {sid} at {at:%Y-%m-%d %H:%M:%S} UTC")
    console.print(
        f"  in today's regional picture: {found.counts_rows_current:,} of its "
        f"{found.counts_rows:,} count cells"
        + (
            " (the others were replaced by later submissions of the same cells)"
            if found.counts_rows_current < found.counts_rows and not found.replaced_by
            else ""
        )
    )


@hub_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The hub's address as nodes see it (behind a proxy); token audience.",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (about one per core).")
    ] = 1,
    home: HubHomeOption = None,
) -> None:
    """Run the hub's HTTP service (intake, tokens, trust list, API) until interrupted."""
    import logging

    import uvicorn

    from epibridge.cli_keys import _passphrase
    from epibridge.hub import serve as factory
    from epibridge.hub.home import HubHome

    hub = HubHome(_hub_home(home))
    passphrase = _passphrase(confirm=False)
    hub.keys(passphrase)  # a wrong passphrase fails here, before any worker starts
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema checks at start: noise
    console = _console()
    console.print(f"hub serving on http://{host}:{port} with {workers} worker(s) (Ctrl-C stops it)")
    if host not in ("127.0.0.1", "localhost", "::1") and not (public_url or "").startswith(
        "https://"
    ):
        console.print(
            "[yellow]warning[/]: this address is reachable from other machines over plain "
            "HTTP; put the hub behind a TLS reverse proxy and pass --public-url https://..."
        )
    if workers == 1:
        app = factory.build_app(hub, passphrase, public_url)
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    # Each worker process builds its own app from these (the passphrase is inherited by
    # the workers only; it is never written anywhere).
    os.environ[factory.HOME_ENV] = str(hub.folder.resolve())
    os.environ[factory.PASSPHRASE_ENV] = passphrase
    if public_url:
        os.environ[factory.PUBLIC_URL_ENV] = public_url
    uvicorn.run(
        "epibridge.hub.serve:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


@hub_app.command("backup")
def backup(
    out: Annotated[Path, typer.Option("--out", "-o", help="The backup file to write (new).")],
    home: HubHomeOption = None,
) -> None:
    """Write the whole hub (folder, sealed files, every table) to one file."""
    from epibridge.hub.backup import backup as run
    from epibridge.hub.home import HubHome

    console = _console()
    report = run(HubHome(_hub_home(home)), out, progress=lambda s: console.print(f"  {s}"))
    rows = ", ".join(f"{name} {n:,}" for name, n in report.rows.items() if n)
    console.print(
        f"wrote {escape(str(report.path))} ({report.size_bytes:,} bytes): {report.files} sealed "
        f"files; rows: {rows or 'none'}",
        soft_wrap=True,
    )
    console.print("the key passphrase is not in the backup: keep it apart")


@hub_app.command("restore")
def restore(
    archive: Annotated[
        Path, typer.Argument(metavar="FILE", help="A file written by 'hub backup'.")
    ],
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="SQLAlchemy URL of an empty database to restore into (default: SQLite in "
            "the new folder).",
        ),
    ] = None,
    home: HubHomeOption = None,
) -> None:
    """Restore a backup into a new hub folder and database; then run 'audit verify'."""
    from epibridge.hub.backup import restore as run

    console = _console()
    where = _hub_home(home)
    hub = run(archive, where, database, progress=lambda s: console.print(f"  {s}"))
    with hub.open_store() as store:
        held = len(store.submissions())
    console.print(
        f"restored {held} submissions into {escape(str(where))} "
        f"(database: {_redacted(hub.config.database)}); check it with "
        f"'epibridge audit verify --home {escape(str(where))}'",
        soft_wrap=True,
    )


hub_users_app = typer.Typer(
    help="People who use the hub's API, with their roles.", no_args_is_help=True
)


@hub_users_app.command("add")
def users_add(
    name: Annotated[str, typer.Option("--name", help="A unique name (e.g. an e-mail).")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="hub_admin, hub_analyst, country_data_manager, country_epidemiologist or "
            "observer (docs/access.md).",
        ),
    ],
    country: Annotated[
        str | None, typer.Option("--country", help="The country a country role acts for.")
    ] = None,
    home: HubHomeOption = None,
) -> None:
    """Create a user and print its API token (once: it is not stored, only its hash)."""
    from epibridge.hub.home import HubHome
    from epibridge.hub.users import add_user

    with HubHome(_hub_home(home)).open_store() as store:
        user, token = add_user(store.engine, name, role, country, _now())
    console = _console()
    where = f" for {user.country}" if user.country else ""
    console.print(f"created {user.name}, {user.role}{where}")
    console.print(f"token (shown once; send it as 'Authorization: Bearer ...'): {token}")


@hub_users_app.command("list")
def users_list(home: HubHomeOption = None) -> None:
    """List the users: name, role, country, created, revoked."""
    from epibridge.hub.home import HubHome
    from epibridge.hub.users import users

    with HubHome(_hub_home(home)).open_store() as store:
        found = users(store.engine)
    table = Table(title="hub users")
    for col in ("name", "role", "country", "created", "revoked"):
        table.add_column(col)
    for u in found:
        table.add_row(
            u.name,
            u.role,
            u.country or "",
            f"{u.created_at:%Y-%m-%d %H:%M}",
            "" if u.revoked_at is None else f"{u.revoked_at:%Y-%m-%d %H:%M}",
        )
    _console().print(table)


@hub_users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="The user to revoke.")],
    home: HubHomeOption = None,
) -> None:
    """Revoke a user's token at once."""
    from epibridge.hub.home import HubHome
    from epibridge.hub.users import revoke_user

    with HubHome(_hub_home(home)).open_store() as store:
        revoke_user(store.engine, name, _now())
    _console().print(f"revoked {name}: its token is refused from now on")


audit_app = typer.Typer(
    help="Check the hub's transparency log against its store.", no_args_is_help=True
)


@audit_app.command("verify")
def audit_verify(home: HubHomeOption = None) -> None:
    """Recompute every log leaf from the store and every signed head; fail on any mismatch."""
    from epibridge.hub.audit import AuditFailure
    from epibridge.hub.audit import audit_verify as run

    hub, keys = _open(home)
    console = _console()
    with hub.open_store() as store:
        report = run(store.engine, hub.trust(keys, _now()), progress=console.print)
    console.print(
        f"{report.leaves} leaves, {report.submissions} submissions, {report.heads} signed "
        f"heads, {report.countersignatures} countersignatures checked"
    )
    if report.problems:
        raise AuditFailure(
            f"the log does not match the store ({len(report.problems)} problems):\n"
            + "\n".join(f"  - {p}" for p in report.problems)
        )
    console.print("[green]the log and the store agree[/]")


def register(app: typer.Typer) -> None:
    hub_app.add_typer(hub_agreements_app, name="agreements")
    hub_app.add_typer(hub_users_app, name="users")
    app.add_typer(hub_app, name="hub")
    app.add_typer(audit_app, name="audit")


from epibridge import cli_hub_context  # noqa: E402 (registered last)
from epibridge.cli_alerts import alerts_app  # noqa: E402 (registered last)

cli_hub_context.register(hub_app)
hub_app.add_typer(alerts_app, name="alerts")
