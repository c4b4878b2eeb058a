"""Languages: which one a request gets, its gettext catalog, and locale-aware numbers.

Standard gettext: UI strings are marked with ``_()`` (templates and code) or ``N_()``
(labels defined before a language is known), extracted with babel by
``scripts/i18n.py`` into ``locale/messages.pot``, translated in
``locale/<lang>/LC_MESSAGES/messages.po`` and compiled to ``messages.mo`` (shipped).
The language is ``?lang=``, then the ``epibridge_lang`` cookie, then the browser's
``Accept-Language``, then English.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
DEFAULT = "en"
#: Language code -> its own name (shown in the switcher, untranslated on purpose).
LANGUAGES: dict[str, str] = {"en": "English", "vi": "Tiếng Việt", "km": "ភាសាខ្មែរ"}
LANG_COOKIE = "epibridge_lang"
#: What a missing number shows, and what joins an interval's ends (an en dash).
DASH = "\u2013"


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark a string for extraction without translating it yet."""
    return message


def negotiate(query: str | None, cookie: str | None, accept: str | None) -> str:
    """The language of a request: ``?lang=``, the cookie, Accept-Language, English."""
    for choice in (query, cookie):
        if choice in LANGUAGES:
            return choice
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT


@functools.cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalog of ``lang`` (none for English: the source strings are English)."""
    if lang == DEFAULT:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [lang], DOMAIN)


class Formatter:
    """Numbers and dates in a language's conventions (babel's CLDR data)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def number(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return DASH
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.lang)

    def rate(self, value: float | None) -> str:
        """An incidence per 100,000: three significant figures, at most two decimals."""
        if value is None:
            return DASH
        if value == 0:
            return self.number(0)
        digits = 0 if value >= 100 else 1 if value >= 10 else 2
        return self.number(value, digits)

    def date(self, value: date | None) -> str:
        return DASH if value is None else format_date(value, format="medium", locale=self.lang)

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return DASH
        return format_datetime(value, format="medium", locale=self.lang, tzinfo=value.tzinfo)

    def percent(self, value: float | None) -> str:
        return DASH if value is None else self.number(100 * value, 0) + " %"


def gettext_of(lang: str) -> Callable[[str], str]:
    return translations(lang).gettext
