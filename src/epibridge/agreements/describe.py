"""An agreement in plain words: what ``epibridge agreements check`` prints."""

from __future__ import annotations

import itertools

from epibridge.model.agreement import Agreement

_LEVELS = {0: "country", 1: "first-level unit (province)", 2: "district", 3: "commune"}


def _bands(edges: tuple[int, ...]) -> str:
    if len(edges) == 1:
        return "no age breakdown"
    parts = [f"{a}-{b - 1}" for a, b in itertools.pairwise(edges)]
    return ", ".join([*parts, f"{edges[-1]}+"])


def describe(a: Agreement) -> list[str]:
    """One sentence per rule of the agreement, in the order a reader would ask."""
    to = "the regional hub" if a.recipient == "hub" else a.recipient
    lines = [
        f"Agreement {a.id}, version {a.version}: {a.title}",
        f"{a.sender} may send data to {to} from {a.valid_from} to {a.valid_to}.",
        f"Purposes: {'; '.join(a.purposes)}. Legal basis: {a.legal_basis}.",
        f"Diseases: {', '.join(a.diseases)}.",
        f"Places no finer than the {_LEVELS[a.area_level]} (admin level {a.area_level}); "
        f"time no finer than the {a.time_resolution}"
        + (f" ({a.calendar} weeks)." if a.time_resolution == "week" else "."),
    ]
    if "counts" in a.datasets:
        extra = [f for f in a.count_fields if f != "deaths"]
        breakdown = f", broken down by {' and '.join(extra)}" if extra else ", with no breakdown"
        lines.append(
            f"Aggregate counts by area, period and disease{breakdown}"
            + (", with deaths." if "deaths" in a.count_fields else ".")
        )
        if a.privacy is None:
            zeros = "zeros are shown" if a.show_zeros else "zeros are suppressed like small counts"
            lines.append(
                f"Counts from 1 to {a.k - 1} are suppressed, with complementary suppression so "
                f"that none can be worked out from the totals; {zeros}."
            )
        else:
            p = a.privacy
            lines.append(
                f"Counts are released with differential-privacy noise: epsilon {p.epsilon:g} per "
                f"release, at most {p.budget:g} per {p.budget_period} (then releases are refused)."
            )
    if "age_band" in a.count_fields or "age_band" in a.case_fields:
        lines.append(f"Age bands: {_bands(a.age_bands)}.")
    if "cases" in a.datasets:
        fields = [f for f in a.case_fields if f != "case_id"]
        lines.append(
            "A line list with the fields: "
            + (", ".join(fields) if fields else "none besides area, period and disease")
            + "."
        )
        if "case_id" in a.case_fields:
            scope = (
                "shared by every agreement of this node that allows record linkage"
                if a.record_linkage
                else "unique to this agreement, so records cannot be linked across agreements"
            )
            lines.append(f"Case ids are replaced by keyed pseudonyms (HMAC-SHA256), {scope}.")
        else:
            lines.append("Case ids are not released.")
        lines.append(
            f"Every combination of {', '.join(a.quasi_identifiers)} released is shared by at "
            f"least {a.k} records: values are generalized first, and at most "
            f"{a.max_withheld:.0%} of the records may be withheld."
        )
    wait = f"{a.embargo.days} days after the period ends" if a.embargo.days else "when it ends"
    if a.embargo.after_publication:
        wait += ", and only once the country has published it"
    lines.append(f"A period's data may leave {wait}.")
    lines.append(
        f"The recipient keeps the data for at most {a.retention_days} days and "
        + ("may share it onward." if a.onward_sharing else "may not share it with anyone else.")
    )
    lines.append(f"Agreement hash (SHA-256 of its canonical form): {a.sha256}")
    return lines
