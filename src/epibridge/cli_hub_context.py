"""``epibridge hub reporting`` and ``epibridge hub denominators``: the regional reporting
and population tables as the hub knew them at a moment, with each row's lineage.

Registered on ``hub_app`` at the end of ``cli_hub.py``; imports of ``cli_hub`` are made
inside the commands, so either module can be imported first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from epibridge.cli_hub_options import AsOfOption as AsOf
from epibridge.cli_hub_options import HubHomeOption as HomeOption

CountryOption = Annotated[
    list[str] | None, typer.Option("--country", help="Only this country (repeatable).")
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Write every row with its lineage (.csv or .parquet)."),
]


def _rate(received: int, expected: int) -> str:
    return f"{received / expected:.0%}" if expected else "-"


def reporting(
    as_of: AsOf = None,
    country: CountryOption = None,
    disease: Annotated[
        list[str] | None,
        typer.Option(
            "--disease",
            help="Only this disease (repeatable); reports covering every disease are kept.",
        ),
    ] = None,
    out: OutOption = None,
    home: HomeOption = None,
) -> None:
    """Reports expected and received (completeness) as the hub knew them, with lineage."""
    from epibridge.cli_hub import _as_of, _console, _hub_home, _write_table
    from epibridge.hub.home import HubHome
    from epibridge.hub.picture_expr import Filters
    from epibridge.hub.regional_context import reporting_as_of

    at = _as_of(as_of)
    with HubHome(_hub_home(home)).open_store() as store:
        table = reporting_as_of(store.engine, at, Filters(country or (), disease or ()))
    summary = Table(title=f"regional reporting as of {at:%Y-%m-%d %H:%M} UTC")
    for col in (
        "country",
        "disease",
        "rows",
        "expected",
        "received",
        "completeness",
        "on time",
        "periods",
    ):
        summary.add_column(col, justify="left" if col in ("country", "disease") else "right")
    keyed = table.set_column(
        table.schema.get_field_index("disease"),
        "disease",
        table.column("disease").fill_null("(all diseases)"),
    )
    groups = keyed.group_by(["country", "disease"]).aggregate(
        [
            ([], "count_all"),
            ("reports_expected", "sum"),
            ("reports_received", "sum"),
            ("reports_on_time", "sum"),
            ("period_start", "min"),
            ("period_end", "max"),
        ]
    )
    for row in groups.sort_by([("country", "ascending"), ("disease", "ascending")]).to_pylist():
        expected, received = row["reports_expected_sum"] or 0, row["reports_received_sum"] or 0
        on_time = row["reports_on_time_sum"]
        summary.add_row(
            row["country"],
            row["disease"],
            f"{row['count_all']:,}",
            f"{expected:,}",
            f"{received:,}",
            _rate(received, expected),
            "-" if on_time is None else _rate(on_time, received),
            f"{row['period_start_min']} to {row['period_end_max']}",
        )
    console = _console()
    console.print(summary)
    if table.num_rows == 0:
        console.print(
            "no reporting held: nodes send it when their agreements allow "
            '"reporting" (docs/sharing-agreements.md)'
        )
    if out is not None:
        _write_table(table, out)
        console.print(f"wrote {table.num_rows:,} rows with their lineage to {escape(str(out))}")


def denominators(
    as_of: AsOf = None,
    country: CountryOption = None,
    out: OutOption = None,
    home: HomeOption = None,
) -> None:
    """Population figures the countries sent, as the hub knew them, with lineage."""
    import pyarrow.compute as pc

    from epibridge.cli_hub import _as_of, _console, _hub_home, _write_table
    from epibridge.hub.home import HubHome
    from epibridge.hub.picture_expr import Filters
    from epibridge.hub.regional_context import denominators_as_of

    at = _as_of(as_of)
    with HubHome(_hub_home(home)).open_store() as store:
        table = denominators_as_of(store.engine, at, Filters(country or ()))
    summary = Table(title=f"regional denominators as of {at:%Y-%m-%d %H:%M} UTC")
    for col in ("country", "year", "areas", "population", "sources"):
        summary.add_column(col, justify="right" if col in ("areas", "population") else "left")
    totals = table.filter(
        pc.and_(pc.is_null(table.column("age_band")), pc.is_null(table.column("sex")))
    )
    groups = totals.group_by(["country", "year"]).aggregate(
        [("area", "count_distinct"), ("population", "sum"), ("source", "distinct")]
    )
    for row in groups.sort_by([("country", "ascending"), ("year", "ascending")]).to_pylist():
        summary.add_row(
            row["country"],
            str(row["year"]),
            f"{row['area_count_distinct']:,}",
            f"{row['population_sum']:,}",
            "; ".join(sorted(row["source_distinct"])),
        )
    console = _console()
    console.print(summary)
    if table.num_rows == 0:
        console.print(
            "no denominators held: the hub uses the geography registry's "
            "population until a country sends its own"
        )
    if out is not None:
        _write_table(table, out)
        console.print(f"wrote {table.num_rows:,} rows with their lineage to {escape(str(out))}")


def register(hub_app: typer.Typer) -> None:
    hub_app.command("reporting")(reporting)
    hub_app.command("denominators")(denominators)
