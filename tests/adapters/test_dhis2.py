"""DHIS2 data value set adapter: documented examples, broken files, random input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epibridge.adapters.base import RECORD, RawTable
from epibridge.adapters.dhis2 import COLUMNS, read_dhis2_csv, read_dhis2_json
from epibridge.model.errors import SourceError

DATA = Path(__file__).parent.parent / "data" / "dhis2"


def rows(raw: RawTable) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = raw.table.to_pyarrow().to_pylist()
    return result


def test_json_header_level_fields_apply_to_values() -> None:
    raw = read_dhis2_json(DATA / "datavalueset_docs.json", {})
    got = rows(raw)
    assert [r["data_element"] for r in got] == ["f7n9E0hX8qk", "Ix2HsbDMLea", "eY5ehpbEsB7"]
    assert {r["period"] for r in got} == {"201401"}
    assert {r["org_unit"] for r in got} == {"DiszpKrYNg8"}
    assert {r["data_set"] for r in got} == {"pBOMPrpg1QX"}
    assert {r["complete_date"] for r in got} == {"2014-02-03"}
    assert [r[RECORD] for r in got] == [1, 2, 3]
    assert raw.unreadable == ()


def test_json_columns_are_all_strings_plus_record() -> None:
    table = read_dhis2_json(DATA / "datavalueset_docs.json", {}).table.to_pyarrow()
    assert table.column_names == [*COLUMNS, RECORD]
    assert all(str(table.schema.field(c).type) == "string" for c in COLUMNS)
    assert str(table.schema.field(RECORD).type) == "int64"


def test_json_bulk_values_keep_their_own_period_and_org_unit() -> None:
    got = rows(read_dhis2_json(DATA / "datavalueset_bulk_docs.json", {}))
    assert [(r["period"], r["org_unit"], r["value"]) for r in got] == [
        ("201401", "DiszpKrYNg8", "12"),
        ("201401", "FNnj3jKGS7i", "14"),
        ("201402", "DiszpKrYNg8", "16"),
        ("201402", "Jkhdsf8sdf4", "18"),
    ]
    assert {r["data_set"] for r in got} == {None}


def test_json_export_example() -> None:
    got = rows(read_dhis2_json(DATA / "datavalueset_export_docs.json", {}))
    assert [r["value"] for r in got] == ["10003", "10002", "10001"]
    assert {r["category_option_combo"] for r in got} == {"bRowv6yZOF2"}


def test_json_code_scheme_types_and_bad_values() -> None:
    raw = read_dhis2_json(DATA / "datavalueset_code_scheme.json", {})
    got = rows(raw)
    assert [r[RECORD] for r in got] == [1, 2, 3]
    first, second, third = got
    assert first["data_element"] == "IDSR_DENGUE_CASES"
    assert first["org_unit"] == "LA_VTE_CHANTHABULY"
    assert first["attribute_option_combo"] == "default"
    assert first["followup"] == "false"
    assert second["value"] == "5"  # a JSON number becomes its JSON spelling
    assert second["followup"] == "true"
    assert second["comment"].startswith("two cases")
    # value-level period/orgUnit/attributeOptionCombo override the set's
    assert (third["period"], third["org_unit"], third["attribute_option_combo"]) == (
        "2024W09",
        "LA_VTE_SISATTANAK",
        "MOH_LAO",
    )
    assert third["deleted"] == "true"
    assert [u.record for u in raw.unreadable] == [4, 5]
    assert "not an object" in raw.unreadable[0].message
    assert raw.unreadable[1].field == "dataValues[4].value"
    assert "object" in raw.unreadable[1].message


def test_csv_export_example_with_abbreviated_header() -> None:
    got = rows(read_dhis2_csv(DATA / "datavalueset_export_docs.csv", {}))
    assert len(got) == 4
    assert got[0] == {
        "data_element": "f7n9E0hX8qk",
        "period": "201401",
        "org_unit": "DiszpKrYNg8",
        "category_option_combo": "bRowv6yZOF2",
        "attribute_option_combo": "bRowv6yZOF2",
        "value": "12",
        "stored_by": "system",
        "last_updated": "2015-04-05T19:58:12.000",
        "comment": "comment1",
        "followup": "false",
        "deleted": None,
        "data_set": None,
        "complete_date": None,
        RECORD: 1,
    }


def test_csv_without_header_reads_the_same() -> None:
    with_header = rows(read_dhis2_csv(DATA / "datavalueset_export_docs.csv", {}))
    without = rows(read_dhis2_csv(DATA / "datavalueset_export_noheader.csv", {}))
    assert with_header == without


def test_csv_import_example_empty_fields_are_null_and_data_set_option() -> None:
    raw = read_dhis2_csv(DATA / "datavalueset_import_docs.csv", {"data_set": "pBOMPrpg1QX"})
    got = rows(raw)
    assert [r["value"] for r in got] == ["7", "10", "9"]
    assert {r["attribute_option_combo"] for r in got} == {None}
    assert {r["last_updated"] for r in got} == {"2010-04-17", "2010-04-06"}
    assert {r["data_set"] for r in got} == {"pBOMPrpg1QX"}
    assert {r["comment"] for r in got} == {None}


def test_csv_six_column_bulk_example() -> None:
    got = rows(read_dhis2_csv(DATA / "datavalueset_bulk_docs.csv", {}))
    assert [r["value"] for r in got] == ["1", "2", "3"]
    assert [r[RECORD] for r in got] == [1, 2, 3]


def test_csv_header_option_forces_first_row_as_data(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("de1,2024W01,ou1,coc,aoc,5\n", encoding="utf-8")
    assert len(rows(read_dhis2_csv(path, {"header": False}))) == 1
    assert len(rows(read_dhis2_csv(path, {}))) == 1


def test_csv_short_and_long_rows_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value\n"
        "a,202401,o,c,d,1\n"
        "\n"
        "b,202401,o\n"
        "c,202401,o,c,d,1,extra\n"
        "d,202401,o,c,d,4\n",
        encoding="utf-8",
    )
    raw = read_dhis2_csv(path, {})
    assert [r[RECORD] for r in rows(raw)] == [1, 4]
    assert [u.record for u in raw.unreadable] == [2, 3]
    assert "3 fields" in raw.unreadable[0].message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b'{"dataValues": [', "line 1, column"),
        (b'{"dataValues": [}', "not valid JSON"),
        (b'{"dataValues": [{"a": "abc', "Unterminated string starting at line 1, column 23"),
        (b"[1, 2]", "not a DHIS2 data value set"),
        (b'{"dataSet": "x"}', "not a DHIS2 data value set"),
        (b'{"dataValues": {"a": 1}}', "not a DHIS2 data value set"),
        ('{"dataValues": [{"comment": "café"}]}'.encode("latin-1"), "not UTF-8"),
        ('{"dataValues": []}'.encode("utf-16"), "UTF-16"),
    ],
)
def test_json_unreadable_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "set.json"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=fragment):
        read_dhis2_json(path, {})


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"dataelement;period;orgunit;coc;aoc;value\nx;1;2;3;4;5\n", "separator"),
        (b"dataelement,period,orgunit\nx,1,2\n", "3 column"),
        (b"a,b,c,d,e,f,g,h,i,j,k,l\n", "12 column"),
        (b"dataelement,orgunit,period,coc,aoc,value\nx,1,2,3,4,5\n", "column 2"),
        ("de,202401,ou,c,a,1,Zoé\n".encode("latin-1"), "not UTF-8"),
        ("de,202401,ou,c,a,1\n".encode("utf-16"), "UTF-16"),
        (b'de,202401,ou,c,a,"1\n', "cannot be read as CSV"),
    ],
)
def test_csv_unreadable_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "set.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=fragment):
        read_dhis2_csv(path, {})


def test_csv_header_only_gives_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text("dataelement,period,orgunit,catoptcombo,attroptcombo,value\n")
    raw = read_dhis2_csv(path, {})
    assert rows(raw) == []
    assert raw.unreadable == ()


# --- property-based: malformed input never escapes as another exception --------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
field_names = st.sampled_from(
    ["dataElement", "period", "orgUnit", "categoryOptionCombo", "value", "comment", "followup"]
)
data_values = st.one_of(
    st.dictionaries(field_names, json_values, max_size=7),
    json_values,
)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(values=st.lists(data_values, max_size=8), period=json_values)
def test_json_every_value_is_a_row_or_unreadable(
    tmp_path: Path, values: list[object], period: object
) -> None:
    path = tmp_path / "random.json"
    path.write_text(json.dumps({"period": period, "dataValues": values}), encoding="utf-8")
    raw = read_dhis2_json(path, {})
    got = rows(raw)
    assert len(got) + len(raw.unreadable) == len(values)
    numbers = sorted([r[RECORD] for r in got] + [u.record for u in raw.unreadable])
    assert numbers == list(range(1, len(values) + 1))


@SETTINGS
@given(content=st.binary(max_size=300))
def test_json_garbage_bytes_raise_source_error_or_read(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.json"
    path.write_bytes(content)
    try:
        raw = read_dhis2_json(path, {})
    except SourceError:
        return
    rows(raw)


@SETTINGS
@given(cut=st.integers(min_value=0, max_value=2000))
def test_json_truncated_example(tmp_path: Path, cut: int) -> None:
    content = (DATA / "datavalueset_code_scheme.json").read_bytes()
    path = tmp_path / "cut.json"
    path.write_bytes(content[: cut % (len(content) + 1)])
    try:
        raw = read_dhis2_json(path, {})
    except SourceError:
        return
    assert len(rows(raw)) + len(raw.unreadable) == 5


csv_fields = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)


@SETTINGS
@given(
    header=st.booleans(),
    width=st.integers(min_value=6, max_value=11),
    body=st.lists(st.lists(csv_fields, max_size=13), max_size=10),
)
def test_csv_every_row_is_a_row_or_unreadable(
    tmp_path: Path, header: bool, width: int, body: list[list[str]]
) -> None:
    names = [
        "dataelement",
        "period",
        "orgunit",
        "catoptcombo",
        "attroptcombo",
        "value",
        "storedby",
        "lastupdated",
        "comment",
        "followup",
        "deleted",
    ][:width]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # quotes \r and \n
    if header:
        writer.writerow(names)
    for row in body:
        writer.writerow(row)
    path = tmp_path / "random.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    try:
        raw = read_dhis2_csv(path, {"header": header})
    except SourceError:
        # only when there is no header and the first data row is not 6-11 fields wide
        assert not header
        return
    # csv.writer writes an empty row as a blank line, which readers skip
    expected = len([r for r in body if r])
    assert len(rows(raw)) + len(raw.unreadable) == expected


@SETTINGS
@given(content=st.binary(max_size=300))
def test_csv_garbage_bytes_raise_source_error_or_read(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(content)
    try:
        raw = read_dhis2_csv(path, {})
    except SourceError:
        return
    got = rows(raw)
    numbers = sorted([r[RECORD] for r in got] + [u.record for u in raw.unreadable])
    assert numbers == list(range(1, len(numbers) + 1))
