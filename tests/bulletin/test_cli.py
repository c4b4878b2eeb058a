"""``epibridge bulletin`` on a hub folder whose store is SQLite."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from epibridge.cli import app
from tests.hub.test_intake import Hub

AS_OF = "2026-01-07T14:00:00+00:00"


@pytest.fixture
def home(loaded: Hub, url: str, tmp_path: Path) -> Path:
    folder = tmp_path / "hub-home"
    (folder / "agreements").mkdir(parents=True)
    (folder / "hub.toml").write_text(
        f'[hub]\ndatabase = "{url}"\nname = "Mekong test hub"\n', encoding="utf-8"
    )
    return folder


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, ["bulletin", *args])


def _said(result: Result) -> str:
    return " ".join((result.output + (result.stderr or "")).split())


def test_writes_html_and_pdf(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    done = _run("--week", "2026-W02", "--as-of", AS_OF, "--home", str(home))
    assert done.exit_code == 0, _said(done)
    page = tmp_path / "bulletin-2026-W02.html"  # the default name, in the current folder
    digest = hashlib.sha256(page.read_bytes()).hexdigest()
    assert f"SHA-256 {digest}" in _said(done) and "logged as release leaf" in _said(done)
    assert "Mekong test hub" in page.read_text(encoding="utf-8")
    again = _run("--week", "2026-W02", "--as-of", AS_OF, "--home", str(home))
    assert again.exit_code == 0 and "already in the log" in _said(again)
    out = tmp_path / "out" / "b.pdf"
    out.parent.mkdir()
    pdf = _run(
        "--week", "2026-W02", "--format", "pdf", "--disease", "DENGUE",
        "--out", str(out), "--as-of", AS_OF, "--home", str(home),
    )  # fmt: skip
    assert pdf.exit_code == 0, _said(pdf)
    assert out.read_bytes().startswith(b"%PDF-")
    assert f"{out.stat().st_size:,} bytes" in _said(pdf)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--week", "2026-47"], "'2026-47' is not an ISO week"),
        (["--week", "2026-W02", "--as-of", "yesterday"], "--as-of 'yesterday' is not a time"),
        (["--week", "2026-W30", "--as-of", AS_OF], "no counts for 2026-W30"),
        (["--week", "2026-W02", "--disease", "CHOLERA", "--as-of", AS_OF], "no CHOLERA counts"),
    ],
)
def test_clear_errors(home: Path, args: list[str], message: str) -> None:
    result = _run(*args, "--home", str(home))
    assert result.exit_code == 1, _said(result)
    assert message in _said(result) and "Traceback" not in _said(result)


def test_unwritable_out_and_no_hub(home: Path, tmp_path: Path) -> None:
    result = _run(
        "--week", "2026-W02", "--as-of", AS_OF, "--home", str(home), "--out", str(tmp_path)
    )
    assert result.exit_code == 1 and "cannot write the bulletin" in _said(result)
    result = _run("--week", "2026-W02", "--home", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and "no hub here" in _said(result)
