"""Turn source text into typed values with Ibis expressions that never raise.

Every parser returns NULL for text it cannot read, so that a bad value becomes a
quarantined record (the caller compares "had text" with "parsed to something") instead of
an aborted query. Only portable Ibis operations are used (regex extraction, ``try_cast``,
``substitute``), so the same expressions compile for DuckDB and for Spark.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir

MONTHS = {
    "jan": 1,
    "january": 1,
    "feb": 2,
    "february": 2,
    "mar": 3,
    "march": 3,
    "apr": 4,
    "april": 4,
    "may": 5,
    "jun": 6,
    "june": 6,
    "jul": 7,
    "july": 7,
    "aug": 8,
    "august": 8,
    "sep": 9,
    "sept": 9,
    "september": 9,
    "oct": 10,
    "october": 10,
    "nov": 11,
    "november": 11,
    "dec": 12,
    "december": 12,
}
#: What strftime directives become in a regular expression, and which date part they hold.
_DIRECTIVES: dict[str, tuple[str, str | None]] = {
    "Y": (r"(\d{4})", "year"),
    "y": (r"(\d{2})", "year2"),
    "m": (r"(\d{1,2})", "month"),
    "d": (r"(\d{1,2})", "day"),
    "b": (r"([A-Za-z]{3,9})", "month_name"),
    "B": (r"([A-Za-z]{3,9})", "month_name"),
    "H": (r"\d{1,2}", None),
    "M": (r"\d{1,2}", None),
    "S": (r"\d{1,2}(?:\.\d+)?", None),
}
ISO_FORMATS = ("%Y-%m-%d",)
#: Prefix of source columns in a prepared table (``harmonize.prepare``).
SOURCE_PREFIX = "in:"


def source(t: ir.Table, column: str) -> ir.StringValue:
    """A source column of a prepared table (trimmed text, see ``harmonize.prepare``)."""
    return t[SOURCE_PREFIX + column]


@ibis.udf.scalar.builtin(name="trim")  # type: ignore[untyped-decorator]
def trim(value: str) -> str:  # type: ignore[empty-body]
    """The engine's own ``trim`` (spaces): ``StringValue.strip`` passes an explicit set of
    whitespace characters, which DuckDB runs six times slower on every value."""


def blank_to_null(value: ir.StringValue, missing: Sequence[str] = ()) -> ir.StringValue:
    """Empty text and the profile's "no value" spellings become NULL.

    ``value`` is a source column, trimmed once when the table was prepared (trimming
    here would trim a column again for every field and look-up that reads it).
    """
    tokens = ["", *missing]
    return ibis.ifelse(value.isin(tokens), ibis.null(), value).cast("string")


def _format_regex(fmt: str) -> tuple[str, list[str]]:
    pattern, parts, i = "^", [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            directive = fmt[i + 1]
            if directive not in _DIRECTIVES:
                raise ValueError(
                    f"date format '{fmt}': %{directive} is not supported; use "
                    f"{', '.join('%' + d for d in _DIRECTIVES)}"
                )
            regex, part = _DIRECTIVES[directive]
            pattern += regex
            if part:
                parts.append(part)
            i += 2
        else:
            pattern += re.escape(fmt[i])
            i += 1
    # A trailing time of day (or timezone) after a date-only format is tolerated.
    return pattern + r"(?:[T ].*)?$", parts


def check_date_format(fmt: str) -> None:
    """Raise ValueError for a format the parser cannot handle (profiles check this early)."""
    _format_regex(fmt)


def _one_format(text: ir.StringValue, fmt: str) -> ir.DateValue:
    # Each part is extracted on its own: a single rewrite to Y-M-D (``re_replace``) would
    # be cheaper, but engines spell a group in the replacement differently (``\1`` in
    # DuckDB, ``$1`` in Spark) and Ibis passes it through as written.
    pattern, parts = _format_regex(fmt)
    groups = {part: text.re_extract(pattern, i + 1) for i, part in enumerate(parts)}
    if "year" in groups:
        year = groups["year"]
    elif "year2" in groups:
        yy = groups["year2"].try_cast("int32")
        year = ibis.ifelse(yy < 50, yy + 2000, yy + 1900).cast("string")
    else:
        raise ValueError(f"date format '{fmt}' has no year (%Y or %y)")
    if "month" in groups:
        month = groups["month"]
    elif "month_name" in groups:
        month = (
            groups["month_name"]
            .lower()
            .substitute({k: str(v) for k, v in MONTHS.items()}, else_=ibis.literal("x"))
        )
    else:
        raise ValueError(f"date format '{fmt}' has no month (%m, %b or %B)")
    day = groups.get("day", ibis.literal("1"))
    iso = year.concat("-", month.lpad(2, "0"), "-", day.lpad(2, "0"))
    return iso.try_cast("date")


_ISO = r"^\d{4}-\d{2}-\d{2}(?:[T ].*)?$"


def _iso(text: ir.StringValue) -> ir.DateValue:
    # The common case, kept cheap: one regex test, then the engine's own date cast on the
    # first ten characters (the cast alone would also accept 2025/03/05 or BC years).
    return ibis.ifelse(text.re_search(_ISO), text.left(10).try_cast("date"), ibis.null()).cast(
        "date"
    )


def parse_date(text: ir.StringValue, formats: Sequence[str] = ()) -> ir.DateValue:
    """First format that reads ``text`` as a real calendar date, else NULL."""
    candidates = [
        _iso(text) if fmt in ISO_FORMATS else _one_format(text, fmt)
        for fmt in (formats or ISO_FORMATS)
    ]
    return ibis.coalesce(*candidates) if len(candidates) > 1 else candidates[0]


def parse_number(text: ir.StringValue) -> ir.FloatingValue:
    """Decimal number (a comma decimal separator is accepted), else NULL."""
    return text.replace(",", ".").try_cast("float64")


#: Counts beyond this are not counts (and ``inf`` or ``1e309`` would not fit an integer).
MAX_COUNT = 2**53


def parse_count(text: ir.StringValue) -> ir.IntegerValue:
    """Whole number (``12`` or ``12.0``), else NULL; negatives are kept for the rule.
    Infinite or absurdly large numbers are NULL too (quarantined as not a number)."""
    number = parse_number(text)
    # Out-of-range values become NULL first: FLOOR casts to an integer and would fail.
    bounded = ibis.ifelse(number.abs() < MAX_COUNT, number, ibis.null())
    whole = ibis.ifelse(bounded == bounded.floor(), bounded, ibis.null())
    return whole.cast("int64")


def map_codes(
    text: ir.StringValue, codes: Mapping[str, str], case_sensitive: bool | None = False
) -> ir.StringValue:
    """Source value -> code through ``codes``; values not in the map become NULL.

    ``case_sensitive=None`` means the keys are already folded to upper case.
    """
    if not codes:
        return text
    if case_sensitive:
        return text.substitute(dict(codes), else_=ibis.null()).cast("string")
    folded = codes if case_sensitive is None else {k.strip().upper(): v for k, v in codes.items()}
    return text.upper().substitute(dict(folded), else_=ibis.null()).cast("string")
