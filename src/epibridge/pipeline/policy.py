"""The refusals: whether an agreement lets anything leave now, and what it lets leave.

Pure checks; the shell passes in today's date, the node's stop record and what the
operator asked for. Each refusal says what to change (``model.agreement.Refusal``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from epibridge.model.agreement import Agreement, Refusal


def check_in_force(agreement: Agreement, today: date, stopped_reason: str | None) -> None:
    """Refuse under an agreement that is stopped, not yet valid or expired."""
    name = f"agreement {agreement.id} version {agreement.version}"
    if stopped_reason is not None:
        raise Refusal(
            f"{name} was stopped on this node ({stopped_reason})",
            "agree a new version with the recipient and release under it",
        )
    if today < agreement.valid_from:
        raise Refusal(
            f"{name} is valid from {agreement.valid_from}; today is {today}",
            f"wait until {agreement.valid_from}, or agree an earlier start date",
        )
    if today > agreement.valid_to:
        raise Refusal(
            f"{name} expired on {agreement.valid_to}",
            "renew the agreement with the recipient (a new version with a later valid_to)",
        )


def check_request(
    agreement: Agreement, datasets: Sequence[str], fields: Sequence[str] | None
) -> None:
    """Refuse a dataset or field the operator asked for that the agreement does not allow."""
    for ds in datasets:
        if ds not in agreement.datasets:
            raise Refusal(
                f"agreement {agreement.id} does not allow releasing {ds} "
                f"(it allows: {', '.join(agreement.datasets)})",
                f"leave out --dataset {ds}, or agree a version that allows it",
            )
    allowed = set(agreement.case_fields if "cases" in datasets else ()) | set(
        agreement.count_fields if "counts" in datasets else ()
    )
    for f in fields or ():
        if f not in allowed:
            raise Refusal(
                f"the field '{f}' is not allowed by agreement {agreement.id} for "
                f"{' and '.join(datasets)} (allowed: {', '.join(sorted(allowed)) or 'none'})",
                f"leave out --field {f}, or agree a version of the agreement that allows it",
            )


def embargo_cutoff(agreement: Agreement, today: date, published_through: date | None) -> date:
    """The last period end date whose data may leave today.

    ``published_through``: the date up to which the country has published its data, for
    agreements that wait for national publication.
    """
    cutoff = today - timedelta(days=agreement.embargo.days)
    if agreement.embargo.after_publication:
        if published_through is None:
            raise Refusal(
                f"agreement {agreement.id} lets data leave only after national publication, "
                "and no publication date was given",
                "pass --published-through DATE: the last day covered by the national publication",
            )
        cutoff = min(cutoff, published_through)
    return cutoff


def check_embargo(agreement: Agreement, last_end: date, cutoff: date, today: date) -> None:
    """Refuse when the data include a period that ends after the embargo cutoff."""
    if last_end > cutoff:
        why = (
            f"{agreement.embargo.days} days after the period ends"
            if agreement.embargo.days
            else "after the period ends"
        )
        if agreement.embargo.after_publication:
            why += " and after national publication"
        raise Refusal(
            f"the data include a period ending {last_end}; agreement {agreement.id} lets a "
            f"period's data leave only {why}, so today ({today}) only periods ending by "
            f"{cutoff} may leave",
            f"pass --to {cutoff} to release only the periods that may leave now",
        )


def check_private_window(agreement: Agreement, first: date | None, last: date | None) -> None:
    """Refuse a differential-privacy release whose periods are not given by the operator.

    Which periods (and so which blocks) a noisy release covers must not depend on the
    data: taken from the data, the first and last week with a case would leak.
    """
    if first is None or last is None:
        raise Refusal(
            f"agreement {agreement.id} releases counts with differential privacy, which needs "
            "the periods to release given in advance",
            "pass --from and --to (one budget period at most, e.g. --from 2026-01-01 "
            "--to 2026-12-31)",
        )
