"""The validation rules: identifiers, what they catch, and their order of precedence.

A record that breaks several rules is quarantined once, under the first rule in this
order, with the others listed in ``other_rules``. ``docs/validation.md`` is generated
from this table (a test keeps them in step).
"""

from __future__ import annotations

RULES: dict[str, str] = {
    "unreadable_record": "The record could not be split into fields (wrong number of "
    "fields, broken JSON value, invalid FHIR resource).",
    "deleted_in_source": "The value is marked deleted in the source system (a DHIS2 export "
    "made with includeDeleted); it is held back, not counted.",
    "missing_required": "A required field is empty.",
    "unknown_code": "A code (disease, sex, classification, outcome, country, measure, "
    "stratum) is not in the profile's code map or the registry; the nearest "
    "known codes are suggested.",
    "unknown_area": "The place does not match any unit of the geography registry; the "
    "nearest known names are suggested.",
    "bad_date": "A date cannot be read in any of the profile's date formats, or is "
    "impossible (2023-02-30).",
    "bad_period": "The reporting period cannot be read (week 54, month 13, unknown DHIS2 "
    "period string).",
    "bad_number": "A count or age is not a number (or a count is not whole).",
    "future_date": "A date lies after the day of the ingest run.",
    "date_order": "Dates are out of order: onset after report or after diagnosis.",
    "implausible_age": "The age is below the minimum or above the maximum plausible age "
    "([rules] min_age, max_age; default 0 and 120).",
    "negative_count": "A count (cases, deaths, reports, population) is negative.",
    "deaths_exceed_cases": "More deaths than cases in one cell.",
    "received_exceeds_expected": "Reporting: more reports received than expected "
    "(`reports_received` > `reports_expected`) for one area, disease and period.",
    "on_time_exceeds_received": "Reporting: more reports on time than received "
    "(`reports_on_time` > `reports_received`).",
    "unit_not_valid": "The place is a unit that did not exist on the period's dates (an "
    "abolished or not-yet-created unit); with [area] crosswalk = true, "
    "whole-unit mergers are followed instead.",
    "duplicate_id": "The case id already appeared in an earlier record of the run (this "
    "input or an earlier one given to the same ingest).",
    "duplicate_cell": "The same (area, disease, period, stratum) cell appears twice; for "
    "reporting the same (area, disease, period) and, in long formats, measure; for "
    "denominators the same (area, year, age band, sex). Counts and reporting given in "
    "several inputs of one ingest are compared across them too: the first input given "
    "keeps the cell, and every record of the cell in a later input is held back.",
}
