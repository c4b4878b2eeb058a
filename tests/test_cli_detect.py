"""``epibridge detect`` end to end: the CLI's output equals R surveillance's on its data,
and bad input is one clear error naming the record and field."""

from __future__ import annotations

import csv
import math
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.test_cli import run

REFERENCE = Path(__file__).parent / "reference" / "surveillance"


def _long(wide: Path, out: Path) -> Path:
    with wide.open(newline="") as f, out.open("w", newline="") as g:
        rows = list(csv.DictReader(f))
        writer = csv.writer(g)
        writer.writerow(["series", "t", "observed"])
        for row in rows:
            for name, value in row.items():
                if name != "epoch":
                    writer.writerow([name, row["epoch"], value])
    return out


@pytest.mark.parametrize("method", ["C1", "C2", "C3"])
def test_detect_matches_r_on_hepatitis_a(tmp_path: Path, method: str) -> None:
    data = _long(REFERENCE / "ha.csv", tmp_path / "ha.csv")
    out = tmp_path / "out.csv"
    done = run("detect", str(data), "--method", f"ears-{method.lower()}", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as f:
        ours = {(r["series"], int(r["t"])): r for r in csv.DictReader(f)}
    with (REFERENCE / f"ref_ha_earsC{method[1]}.csv").open(newline="") as f:
        reference = list(csv.DictReader(f))
    assert len(ours) == len(reference)
    for r in reference:
        mine = ours[(r["series"], int(r["t"]))]
        assert mine["observed"] == r["observed"]
        if r["upperbound"] in ("NA", ""):
            assert mine["upperbound"] == "" and mine["alarm"] == ""
            continue
        want, got = float(r["upperbound"]), float(mine["upperbound"])
        assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-9), (r, mine)
        assert mine["alarm"] == r["alarm"]


def test_bad_input_names_the_record_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("series,t,observed\nA,1,3\nA,2,-1\n")
    done = run("detect", str(bad), "--method", "ears-c1")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "line 3 (record 2), field observed" in done.stderr
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("region,week,cases\nA,1,3\n")
    done = run("detect", str(wrong), "--method", "ears-c1")
    assert done.returncode == 2 and "series, t (or date), observed" in done.stderr


def test_dates_and_from(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    start = date(2025, 1, 6)
    rows = ["series,date,observed"] + [
        f"A,{start + timedelta(weeks=i)},{(i * 7) % 5}" for i in range(20)
    ]
    data.write_text("\n".join(rows) + "\n")
    done = run("detect", str(data), "--method", "ears-c1", "--from", "2025-04-07")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "date,series,observed,expected,upperbound,alarm,pvalue"
    assert lines[1].startswith("2025-04-07,A,")
    assert len(lines) == 1 + 20 - 13
    off = tmp_path / "off.csv"
    off.write_text("series,date,observed\nA,2025-01-06,1\nA,2025-01-08,2\n")
    done = run("detect", str(off), "--method", "ears-c1")
    assert done.returncode == 2 and "not a whole number of weeks" in done.stderr


@pytest.mark.parametrize(
    ("reference", "options"),
    [
        ("ref_salmonella_agona_farrington.csv", ["--method", "farrington"]),
        ("ref_salmonella_agona_noufaily.csv", ["--method", "noufaily"]),
        ("ref_salmonella_agona_noufaily_muan.csv", ["--method", "noufaily", "--threshold", "muan"]),
    ],
)
def test_farrington_matches_r(tmp_path: Path, reference: str, options: list[str]) -> None:
    data = _long(REFERENCE / "salmonella.agona.csv", tmp_path / "agona.csv")
    with (REFERENCE / reference).open(newline="") as f:
        expected = list(csv.DictReader(f))
    first, last = int(expected[0]["t"]), int(expected[-1]["t"])
    out = tmp_path / "out.csv"
    done = run("detect", str(data), *options, "--from", str(first), "--out", str(out))
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as f:
        ours = {int(r["t"]): r for r in csv.DictReader(f) if int(r["t"]) <= last}
    assert len(ours) == len(expected)
    for r in expected:
        mine = ours[int(r["t"])]
        for column in ("upperbound", "expected", "pvalue"):
            if r[column] in ("NA", ""):
                assert mine[column] == "", (column, r, mine)
            else:
                assert math.isclose(float(mine[column]), float(r[column]), rel_tol=1e-4), (
                    column,
                    r,
                    mine,
                )
        assert mine["alarm"] == ("" if r["alarm"] == "NA" else r["alarm"]), (r, mine)


def test_cusum_and_glrnb_match_r(tmp_path: Path) -> None:
    data = _long(REFERENCE / "salmonella.agona.csv", tmp_path / "agona.csv")
    with (REFERENCE / "ref_misc_algos_salmonella.agona.csv").open(newline="") as f:
        reference = {int(r["t"]): r for r in csv.DictReader(f)}
    for method in ("cusum", "glrnb"):
        out = tmp_path / f"{method}.csv"
        done = run("detect", str(data), "--method", method, "--from", "200", "--out", str(out))
        assert done.returncode == 0, done.stderr
        with out.open(newline="") as f:
            ours = {int(r["t"]): r for r in csv.DictReader(f)}
        assert sorted(ours) == sorted(reference)
        if method == "cusum":
            for t, r in reference.items():
                assert float(ours[t]["upperbound"]) == float(r["cusum_ub"]), t
                assert ours[t]["alarm"] == r["cusum_alarm"], t
        else:
            # R's chart alarms where its statistic reaches c.ARL = 5 (the reference keeps
            # the statistic, glrnb_val); the chart restarts after each alarm.
            alarms = sorted(t for t, r in ours.items() if r["alarm"] == "1")
            assert alarms == sorted(t for t, r in reference.items() if float(r["glrnb_val"]) >= 5)
            assert alarms
