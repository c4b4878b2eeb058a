"""The demo's fourth stage: the hub looks for outbreaks in what the countries sent.

On the hub's current regional counts of dengue (every country's released weekly cells,
whatever border they lie on) it runs, as an analyst would with ``epibridge hub detect``
and ``epibridge hub scan``:

* the Noufaily detector over the last 4 weeks of every (country, area) series;
* Kulldorff's prospective space-time permutation scan over the last 26 weeks (clusters
  up to 4 weeks long, 999 replicates), zones connected through shared borders, national
  borders included;
* the burden table (reported and corrected incidence, ``hub burden``).

Then it sets what was found beside the outbreaks planted in the synthetic Mekong scenario
(docs/scenario.md): each is *found* when the detector alarms in one of its areas during
its weeks, or when a significant cluster (p <= 0.05) holds one of its areas. Alarms
outside the planted outbreaks are counted and shown too: they are what a real analyst
would have to review (chance, or the scenario's own year-to-year variation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from epibridge.algorithms.scan import Cluster
from epibridge.hub.burden import burden
from epibridge.hub.home import HubHome
from epibridge.hub.picture_expr import Filters
from epibridge.hub.regional import counts_as_of
from epibridge.hub.regional_context import burden_inputs
from epibridge.hub.signals import RegionalScan, regional_scan
from epibridge.hub.temporal import RegionalDetection, regional_detect
from epibridge.registry.expansion import expansion_factors
from epibridge.registry.geography import to_current
from epibridge.scenario.mekong import PlantedOutbreak, Scenario

DISEASE = "DENGUE"
METHOD = "noufaily"
MONITORED_WEEKS = 4
SCAN_WEEKS = 26
SCAN_MAX_WEEKS = 4
SIGNIFICANT = 0.05
SEED = 2026


@dataclass(frozen=True)
class Finding:
    outbreak: PlantedOutbreak
    areas: tuple[str, ...]  # the outbreak's areas as the hub's current units
    alarms: tuple[tuple[str, date], ...]  # (area, week) alarms inside the outbreak
    cluster: Cluster | None  # the strongest significant cluster holding one of its areas

    @property
    def found(self) -> bool:
        return bool(self.alarms) or self.cluster is not None


@dataclass(frozen=True)
class DemoDetection:
    temporal: RegionalDetection
    scan: RegionalScan
    burden: pa.Table
    findings: tuple[Finding, ...]
    other_alarms: int  # alarms outside every planted outbreak

    @property
    def cross_border(self) -> tuple[Cluster, ...]:
        return tuple(
            c for c in self.scan.result.clusters if c.cross_border and c.p_value <= SIGNIFICANT
        )


def _current(area: str, on: date) -> tuple[str, ...]:
    try:
        return tuple(code for code, _ in to_current(area, on)) or (area,)
    except KeyError:
        return (area,)


def _cluster_weeks(scan: RegionalScan, cluster: Cluster) -> tuple[date, date]:
    return scan.weeks[cluster.start], scan.weeks[cluster.end]


def _findings(
    scenario: Scenario, temporal: RegionalDetection, scan: RegionalScan
) -> tuple[tuple[Finding, ...], int]:
    alarms = [
        (r["area"], r["week_start"])
        for r in temporal.alarms.select(["area", "week_start"]).to_pylist()
    ]
    last = scenario.weeks[-1]
    findings = []
    explained: set[tuple[str, date]] = set()
    for outbreak in scenario.outbreaks:
        areas = tuple(sorted({c for a in outbreak.areas for c in _current(a, last)}))
        hits = tuple(
            (area, week)
            for area, week in alarms
            if area in areas and outbreak.first_week <= week <= outbreak.last_week
        )
        explained.update(hits)
        holding = [
            c
            for c in scan.result.clusters
            if c.p_value <= SIGNIFICANT and set(c.areas) & set(areas)
        ]
        findings.append(
            Finding(outbreak, areas, hits, max(holding, key=lambda c: c.llr, default=None))
        )
    return tuple(findings), len(set(alarms) - explained)


def detect_all(
    workspace: Path, scenario: Scenario, console: Console, now: datetime | None = None
) -> DemoDetection:
    """Detect in the hub's current dengue counts and compare with the planted outbreaks."""
    hub = HubHome(workspace / "hub")
    at = now or datetime.now(UTC)
    with hub.open_store() as store:
        cells = counts_as_of(store.engine, at, Filters(diseases=(DISEASE,)))
        extra = burden_inputs(store.engine, at, cells)
    temporal = regional_detect(cells, DISEASE, method=METHOD, weeks=MONITORED_WEEKS)
    scan = regional_scan(
        cells,
        DISEASE,
        np.random.default_rng(SEED),
        weeks=SCAN_WEEKS,
        max_weeks=SCAN_MAX_WEEKS,
    )
    table = burden(cells, expansion_factors(hub.folder), **extra)
    findings, other = _findings(scenario, temporal, scan)
    result = DemoDetection(temporal, scan, table, findings, other)
    _show(result, console)
    return result


def _show(result: DemoDetection, console: Console) -> None:
    t = result.temporal
    console.print(
        f"\n[bold]outbreak detection at the hub[/] (hub detect: {METHOD}, last "
        f"{MONITORED_WEEKS} weeks of {t.series} series; hub scan: last {SCAN_WEEKS} weeks, "
        f"999 replicates)",
        soft_wrap=True,
    )
    table = Table(title="planted outbreaks (synthetic Mekong scenario) and what the hub found")
    for col in ("outbreak", "areas", "weeks", "detector alarms", "space-time cluster"):
        table.add_column(col)
    for f in result.findings:
        o = f.outbreak
        cluster = "none"
        if f.cluster is not None:
            first, last = _cluster_weeks(result.scan, f.cluster)
            cluster = (
                f"{', '.join(f.cluster.areas)} ({first} to {last}), p = "
                f"{f.cluster.p_value:.3f}"
                + (
                    ", CROSS-BORDER " + "+".join(f.cluster.countries)
                    if f.cluster.cross_border
                    else ""
                )
            )
        alarms = ", ".join(f"{a} {w}" for a, w in f.alarms) or "none"
        table.add_row(o.id, ", ".join(f.areas), f"{o.first_week} to {o.last_week}", alarms, cluster)
    console.print(table)
    found = sum(f.found for f in result.findings)
    console.print(
        f"found {found} of {len(result.findings)} planted outbreaks; "
        f"{len(result.cross_border)} cross-border cluster(s) at p <= {SIGNIFICANT}; "
        f"{result.other_alarms} other detector alarm(s) to review (chance, or the "
        "scenario's own variation)",
        soft_wrap=True,
    )
    _show_burden(result.burden, console)


def _show_burden(table: pa.Table, console: Console) -> None:
    totals = table.filter(pc.equal(table.column("status"), "total"))
    if totals.num_rows == 0:
        return
    weekly = totals.filter(pc.equal(totals.column("period_type"), "week"))
    last = pc.max(weekly.column("period_start")).as_py() if weekly.num_rows else None
    rows = [r for r in weekly.to_pylist() if r["period_start"] == last]
    out = Table(title=f"dengue burden, week of {last} (hub burden; reported and corrected)")
    for col in ("country", "reported", "per 100k", "complete", "corrected (95% interval)",
                "per 100k corrected"):  # fmt: skip
        out.add_column(col, justify="left" if col == "country" else "right")
    for r in sorted(rows, key=lambda r: str(r["country"])):
        out.add_row(
            r["country"],
            f"{r['cases']:,}"
            + (f" + {r['areas_withheld']} withheld" if r["areas_withheld"] else ""),
            "" if r["incidence_per_100k"] is None else f"{r['incidence_per_100k']:.1f}",
            f"{r['completeness']:.0%}",
            f"{r['cases_corrected']:,.0f} ({r['cases_corrected_low']:,.0f}-"
            f"{r['cases_corrected_high']:,.0f})",
            "" if r["incidence_corrected"] is None else f"{r['incidence_corrected']:.1f}",
        )
    console.print(out)
