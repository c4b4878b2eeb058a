"""A check is one rule applied to one field, as Ibis expressions over the record.

``harmonize`` collects checks while it types each field, then folds them into five
quarantine columns: the first failing rule (in ``rules.RULES`` order), its field, value,
message and suggestion, plus the list of other rules the record failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from epibridge.pipeline.rules import RULES

Q_COLUMNS = ("_q_rule", "_q_field", "_q_value", "_q_message", "_q_suggestion", "_q_other")


@dataclass(frozen=True)
class Check:
    rule: str
    field: str
    failed: ir.BooleanValue
    value: ir.Value
    message: ir.StringValue
    suggestion: ir.StringValue | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule}")


def text(*parts: str | ir.Value) -> ir.StringValue:
    """Concatenate literal text and values into a message (NULL values show as empty)."""
    exprs = [
        ibis.literal(p) if isinstance(p, str) else p.cast("string").fill_null("") for p in parts
    ]
    head, *rest = exprs
    return head.concat(*rest) if rest else head


def _ranked(checks: Sequence[Check]) -> list[Check]:
    order = {rule: i for i, rule in enumerate(RULES)}
    return sorted(checks, key=lambda c: order[c.rule])


def first_failed(checks: Sequence[Check]) -> ir.StringValue:
    """The first rule (in ``RULES`` order) the record fails, NULL when it passes all."""
    ranked = _ranked(checks)
    if not ranked:
        return ibis.null().cast("string")
    return ibis.cases(
        *[(c.failed.fill_null(False), c.rule) for c in ranked], else_=ibis.null()
    ).cast("string")


def any_failed(checks: Sequence[Check]) -> ir.BooleanValue:
    """Whether the record fails any check: what the accepted rows are filtered on, cheaper
    than naming the first failed rule (a CASE that builds a string for every record)."""
    if not checks:
        return ibis.literal(False)
    return ibis.or_(*[c.failed.fill_null(False) for c in checks])


def fold(checks: Sequence[Check]) -> dict[str, ir.Value]:
    """The quarantine columns for a record, from all checks applied to it."""
    ranked = _ranked(checks)
    if not ranked:
        null = ibis.null().cast("string")
        return dict.fromkeys(Q_COLUMNS, null)
    flags = [c.failed.fill_null(False) for c in ranked]

    def first(pick: Sequence[ir.Value]) -> ir.Value:
        return ibis.cases(*zip(flags, pick, strict=True), else_=ibis.null()).cast("string")

    names = [
        ibis.ifelse(f, ibis.literal(c.rule + ";"), ibis.literal(""))
        for f, c in zip(flags, ranked, strict=True)
    ]
    joined = names[0].concat(*names[1:]) if len(names) > 1 else names[0]
    rule = first([ibis.literal(c.rule) for c in ranked])
    # Other rules: everything after the first rule's name, without the trailing ";".
    rest = joined.substr(rule.length() + 1).rstrip()
    other = ibis.ifelse(
        rest.length() > 0, rest.left(rest.length() - 1).cast("string"), ibis.null()
    ).cast("string")
    return {
        "_q_rule": rule,
        "_q_field": first([ibis.literal(c.field) for c in ranked]),
        "_q_value": first([c.value.cast("string") for c in ranked]),
        "_q_message": first([c.message for c in ranked]),
        "_q_suggestion": first(
            [
                c.suggestion if c.suggestion is not None else ibis.null().cast("string")
                for c in ranked
            ]
        ),
        "_q_other": other,
    }
