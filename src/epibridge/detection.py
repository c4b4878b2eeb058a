"""``epibridge detect``: read counts in long form, run a detector over every series, write
the result. The stable contract of the command is in docs/cli.md; the detectors are pure
functions in ``algorithms/`` that see a (series x time) matrix.

Input: a CSV with a header and the columns ``series``, a time column, ``observed``, and
optionally ``population``:

* ``t``: consecutive integer time points (R's integer epochs); a time point a series has
  no row for is a missing count;
* ``date``: the first day of each week (R's date epochs); every date must be a whole
  number of weeks from the first one.

``observed`` is a whole number >= 0, or empty for a missing count. Every problem names
the file, the line and record (record 1 is the first line after the header) and the
field, and says what to do.

Output: the time column, ``series``, ``observed``, ``expected``, ``upperbound``,
``alarm`` (0/1) and ``pvalue``, one row per series and monitored time point; an empty
cell where the detector gives no value (R's NA).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from epibridge.model.errors import SourceError

#: The detectors of ``epibridge detect`` and ``epibridge hub detect``.
Method = Literal["ears-c1", "ears-c2", "ears-c3", "farrington", "noufaily", "cusum", "glrnb"]
EARS: dict[str, Literal["C1", "C2", "C3"]] = {"ears-c1": "C1", "ears-c2": "C2", "ears-c3": "C3"}
TIME_COLUMNS = ("t", "date")


@dataclass(frozen=True)
class Series:
    """Counts as a matrix: one row per series (sorted by name), one column per time point."""

    names: tuple[str, ...]
    time_column: str  # "t" or "date"
    times: tuple[int | date, ...]  # the label of each column
    observed: np.ndarray  # float, NaN for missing
    population: np.ndarray | None  # float, NaN for missing; None when not given


def _problem(path: Path, line: int, field: str, message: str, hint: str) -> SourceError:
    # Records are numbered as ingest numbers them (record 1 is the first line after the
    # header); the line is given too, for an editor.
    return SourceError(path, f"line {line} (record {line - 1}), field {field}: {message}", hint)


def _count(path: Path, line: int, field: str, text: str) -> float:
    text = text.strip()
    if text == "" or text.upper() == "NA":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise _problem(
            path,
            line,
            field,
            f"{text!r} is not a number",
            "write a whole number, or leave it empty",
        ) from None
    if field == "observed" and (value < 0 or value != int(value)):
        raise _problem(
            path, line, field, f"{text!r} is not a whole number >= 0", "counts are whole numbers"
        )
    if field == "population" and value <= 0:
        raise _problem(path, line, field, f"{text!r} is not positive", "give the population")
    return value


def read_series(path: Path) -> Series:
    """Read and check the long-form CSV; every problem is a ``SourceError``."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SourceError(path, f"cannot be read ({exc.strerror})", "check the path") from None
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            time_column = next((c for c in TIME_COLUMNS if c in header), None)
            missing = [c for c in ("series", "observed") if c not in header]
            if time_column is None or missing:
                raise SourceError(
                    path,
                    f"the header is {', '.join(header) or 'empty'}",
                    "the columns must be series, t (or date), observed, and optionally population",
                )
            reader.fieldnames = header
            rows = list(reader)
        except UnicodeDecodeError:
            raise SourceError(path, "is not UTF-8 text", "save the file as UTF-8 CSV") from None
    if not rows:
        raise SourceError(path, "has a header but no rows", "add the counts")
    has_population = "population" in header
    keyed: dict[tuple[str, Any], tuple[float, float]] = {}
    for line, row in enumerate(rows, start=2):
        name = (row.get("series") or "").strip()
        if not name:
            raise _problem(path, line, "series", "is empty", "name the series of every row")
        raw = (row.get(time_column) or "").strip()
        when: Any
        if time_column == "t":
            try:
                when = int(raw)
            except ValueError:
                raise _problem(
                    path, line, "t", f"{raw!r} is not an integer", "number the weeks"
                ) from None
        else:
            try:
                when = date.fromisoformat(raw)
            except ValueError:
                raise _problem(
                    path, line, "date", f"{raw!r} is not a date", "write YYYY-MM-DD"
                ) from None
        if (name, when) in keyed:
            raise _problem(
                path, line, time_column, f"series {name!r} has {raw} twice", "keep one row"
            )
        observed = _count(path, line, "observed", row.get("observed") or "")
        population = (
            _count(path, line, "population", row.get("population") or "")
            if has_population
            else math.nan
        )
        keyed[(name, when)] = (observed, population)
    return _matrix(path, keyed, time_column, has_population)


def _matrix(
    path: Path,
    keyed: dict[tuple[str, Any], tuple[float, float]],
    time_column: str,
    population: bool,
) -> Series:
    names = tuple(sorted({name for name, _ in keyed}))
    moments = sorted({when for _, when in keyed})
    if time_column == "t":
        first, last = int(moments[0]), int(moments[-1])
        times: list[Any] = list(range(first, last + 1))
        index = {t: t - first for t in times}
    else:
        first_day: date = moments[0]
        for when in moments:
            if (when - first_day).days % 7:
                raise SourceError(
                    path,
                    f"the date {when} is not a whole number of weeks after {first_day}",
                    "give every week by the same weekday (the week's first day)",
                )
        weeks = (moments[-1] - first_day).days // 7
        times = [first_day + timedelta(weeks=i) for i in range(weeks + 1)]
        index = {d: i for i, d in enumerate(times)}
    observed = np.full((len(names), len(times)), np.nan)
    pop = np.full((len(names), len(times)), np.nan) if population else None
    row_of = {name: i for i, name in enumerate(names)}
    for (name, when), (count, people) in keyed.items():
        observed[row_of[name], index[when]] = count
        if pop is not None:
            pop[row_of[name], index[when]] = people
    return Series(names, time_column, tuple(times), observed, pop)


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.10g}"


def write_result(
    path: Path | None,
    series: Series,
    start: int,
    expected: np.ndarray,
    upperbound: np.ndarray,
    alarm: np.ndarray,
    defined: np.ndarray,
    pvalue: np.ndarray | None,
    out: Any = None,
) -> int:
    """Write one row per series and monitored time point (columns ``start``..); rows written."""
    header = [series.time_column, "series", "observed", "expected", "upperbound", "alarm", "pvalue"]
    handle = path.open("w", newline="", encoding="utf-8") if path is not None else out
    written = 0
    try:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for j in range(start, len(series.times)):
            when = series.times[j]
            label = when.isoformat() if isinstance(when, date) else str(when)
            for i, name in enumerate(series.names):
                writer.writerow(
                    [
                        label,
                        name,
                        _cell(float(series.observed[i, j])),
                        _cell(float(expected[i, j])),
                        _cell(float(upperbound[i, j])),
                        ("1" if alarm[i, j] else "0") if defined[i, j] else "",
                        "" if pvalue is None else _cell(float(pvalue[i, j])),
                    ]
                )
                written += 1
    finally:
        if path is not None:
            handle.close()
    return written


def time_index(series: Series, value: str, option: str) -> int:
    """The column of a ``--from`` value: an integer t or a date, as the input uses."""
    try:
        when: Any = int(value) if series.time_column == "t" else date.fromisoformat(value)
    except ValueError:
        kind = "an integer t" if series.time_column == "t" else "a date YYYY-MM-DD"
        raise SourceError(
            option, f"{value!r} is not {kind}", "use the input's time column"
        ) from None
    if when not in series.times:
        raise SourceError(
            option,
            f"{value} is outside the input ({series.times[0]} to {series.times[-1]})",
            "choose a time point the input covers",
        )
    return series.times.index(when)
