"""The shipped catalogs: every UI string translated in vi and km, the .mo files current."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from epibridge.web.i18n import DEFAULT, LANGUAGES, LOCALE_DIR, translations

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "i18n.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("i18n_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("lang", ["vi", "km"])
def test_catalog_is_complete_and_compiled(lang: str) -> None:
    """Fails on a UI string missing from the .po (run scripts/i18n.py), an untranslated or
    fuzzy one, changed placeholders, or a .mo that does not match its .po."""
    assert _script().problems(lang) == []
    assert (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.mo").is_file()
    assert translations(lang).gettext("Log in") != "Log in"


def test_every_offered_language_has_a_catalog() -> None:
    offered = set(LANGUAGES) - {DEFAULT}
    shipped = {p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES").is_dir()}
    assert offered == shipped
