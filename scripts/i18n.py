"""Extract, update and compile the dashboard's translations (standard gettext, via babel).

1. **extract**: every string marked ``_()`` or ``N_()`` in ``src/epibridge/web`` (Python
   and Jinja2 templates) into ``locale/messages.pot``;
2. **update**: merge the template into each ``locale/<lang>/LC_MESSAGES/messages.po``
   (a new language: ``--add <lang>``); new strings arrive untranslated, changed ones
   fuzzy;
3. **compile**: each ``.po`` into the ``.mo`` the dashboard loads (shipped in the package).

Run ``uv run python scripts/i18n.py`` (all three), or name steps:
``uv run python scripts/i18n.py extract update``. ``--check`` fails when a catalog is
stale, a string is untranslated or fuzzy, or a ``.mo`` differs from its ``.po``.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

WEB = Path(__file__).resolve().parents[1] / "src" / "epibridge" / "web"
LOCALE = WEB / "locale"
POT = LOCALE / "messages.pot"
PROJECT = "epibridge dashboard"
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
STEPS = ("extract", "update", "compile")
_PLACEHOLDER = re.compile(r"%(?:\([a-z_]+\))?[sd%]")
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}


HEADER = (
    "# Translations of the epibridge dashboard (see docs/dashboard.md).\n"
    "# A first draft, not by a native speaker: corrections by native speakers are welcome."
)


def extract() -> Catalog:
    """A catalog of every marked string in the web package."""
    catalog = Catalog(project=PROJECT, charset="utf-8", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(WEB),
        METHODS,
        OPTIONS,
        KEYWORDS,
        comment_tags=("TRANSLATORS:",),
        strip_comment_tags=True,
    ):
        catalog.add(
            message,
            None,
            [(f"web/{filename}", lineno)],
            auto_comments=comments,
            context=context,
        )
    return catalog


def _po_bytes(catalog: Catalog, **options: bool) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=100, omit_header=False, sort_output=True, **options)
    return out.getvalue()


def languages() -> list[str]:
    return sorted(p.name for p in LOCALE.iterdir() if (p / "LC_MESSAGES").is_dir())


def _po(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "messages.po"


def read(lang: str) -> Catalog:
    with _po(lang).open("rb") as f:
        return read_po(f, locale=lang)


def update(template: Catalog, lang: str) -> Catalog:
    path = _po(lang)
    if path.exists():
        catalog = read(lang)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(
            locale=lang,
            project=PROJECT,
            charset="utf-8",
            fuzzy=False,
            copyright_holder="the epibridge authors",
            last_translator="first draft, not by a native speaker: review welcome",
            header_comment=HEADER,
        )
    catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
    catalog.obsolete.clear()
    return catalog


def mo_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def problems(lang: str) -> list[str]:
    """What is wrong with ``lang``'s catalog and compiled file (empty: nothing)."""
    found = []
    catalog = read(lang)
    wanted = {m.id for m in extract() if m.id}
    have = {m.id for m in catalog if m.id}
    found += [f"{lang}: not in the .po (run update): {m!r}" for m in sorted(wanted - have, key=str)]
    for m in catalog:
        if not m.id:
            continue
        if not m.string or (isinstance(m.string, tuple) and not all(m.string)):
            found.append(f"{lang}: untranslated: {m.id!r}")
        elif m.fuzzy:
            found.append(f"{lang}: fuzzy (check the translation): {m.id!r}")
        elif sorted(_PLACEHOLDER.findall(str(m.id))) != sorted(_PLACEHOLDER.findall(str(m.string))):
            found.append(f"{lang}: placeholders differ from the original: {m.id!r}")
    mo = _po(lang).with_suffix(".mo")
    if not mo.exists():
        found.append(f"{lang}: no messages.mo (run compile)")
    else:
        with mo.open("rb") as f:
            compiled = {m.id: m.string for m in read_mo(f) if m.id}
        expected = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
        if compiled != expected:
            found.append(f"{lang}: messages.mo differs from messages.po (run compile)")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("steps", nargs="*", help="extract, update and/or compile (default: all)")
    parser.add_argument("--add", action="append", default=[], help="start a new language")
    parser.add_argument("--check", action="store_true", help="only check, change nothing")
    args = parser.parse_args()
    if args.check:
        issues = [issue for lang in languages() for issue in problems(lang)]
        print("\n".join(issues) or "translations are complete and compiled")
        return 1 if issues else 0
    steps = args.steps or list(STEPS)
    if unknown := set(steps) - set(STEPS):
        parser.error(f"unknown steps {sorted(unknown)}: choose from {', '.join(STEPS)}")
    template = extract()
    if "extract" in steps:
        POT.parent.mkdir(parents=True, exist_ok=True)
        POT.write_bytes(_po_bytes(template, no_location=False))
        print(f"{POT}: {len(template)} strings")
    for lang in sorted({*languages(), *args.add}):
        if "update" in steps:
            _po(lang).parent.mkdir(parents=True, exist_ok=True)
            catalog = update(template, lang)
            _po(lang).write_bytes(_po_bytes(catalog))
            missing = sum(1 for m in catalog if m.id and not m.string)
            print(f"{_po(lang)}: {missing} untranslated")
        if "compile" in steps:
            _po(lang).with_suffix(".mo").write_bytes(mo_bytes(read(lang)))
            print(f"{_po(lang).with_suffix('.mo')}: compiled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
