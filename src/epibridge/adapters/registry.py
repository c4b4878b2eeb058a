"""The adapters by profile format. Built-in formats are registered like any other."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from epibridge.adapters import dhis2, fhir_bundle, fhir_measurereport
from epibridge.adapters.base import RawTable
from epibridge.adapters.delimited import read_delimited
from epibridge.adapters.excel import read_excel

#: format -> reader(path, options, connection, expected source columns)
Reader = Callable[[Path, Mapping[str, Any], Any, Collection[str]], RawTable]


def _plain(reader: Callable[[Path, Mapping[str, Any]], RawTable]) -> Reader:
    def read(
        path: Path, options: Mapping[str, Any], con: Any, expected: Collection[str]
    ) -> RawTable:
        return reader(path, options)

    return read


ADAPTERS: dict[str, Reader] = {
    "delimited": read_delimited,
    "excel": read_excel,
    "dhis2-json": _plain(dhis2.read_dhis2_json),
    "dhis2-csv": _plain(dhis2.read_dhis2_csv),
    "fhir-measurereport": _plain(fhir_measurereport.read_measure_reports),
    "fhir-bundle": _plain(fhir_bundle.read_case_bundle),
}
