"""The languages of the portal and the staff pages: gettext catalogs (Babel), and
locale-aware dates, numbers and money.

Catalogs are the `.po` files under web/locale (edit them, or regenerate the template with
`pybabel extract -F babel.cfg -o web/locale/messages.pot .`); they are compiled in memory at
start-up, so there is no build step and no binary file in the repository.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from gettext import NullTranslations
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
# Language code as the member picks it → Babel locale for formatting.
LANGUAGES = {"en": "en", "zh": "zh_Hans_CN"}
NAMES = {"en": "English", "zh": "中文"}
DEFAULT = "en"


# Two catalogs: "messages" for the member portal, "staff" for the staff pages.
PORTAL, STAFF = "messages", "staff"


@cache
def translations(language: str, domain: str = PORTAL) -> NullTranslations:
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=LANGUAGES[language])
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


@cache
def currency_name(code: str, language: str = DEFAULT) -> str:
    """An ISO 4217 currency's name in `language` (a key of LANGUAGES), from Babel's CLDR
    data: "CLF" → "智利（UF）计价单位" in Chinese; the code itself where Babel has no name."""
    try:
        return str(numbers.get_currency_name(code, locale=LANGUAGES.get(language, DEFAULT)))
    except (ValueError, LookupError):
        return code


def from_accept_language(header: str | None) -> str:
    """The first language in the browser's list that we have ("zh-CN,zh;q=0.9,en;q=0.8")."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT


@dataclass(frozen=True, slots=True)
class Formatter:
    """One request's language: translate, and format for the locale in the display zone."""

    language: str
    zone: ZoneInfo

    @property
    def locale(self) -> Locale:
        return Locale.parse(LANGUAGES[self.language])

    def gettext(self, message: str) -> str:
        return translations(self.language).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return translations(self.language).ngettext(singular, plural, n)

    def points(self, value: int) -> str:
        return numbers.format_decimal(value, locale=self.locale)

    def money(self, amount: Decimal, currency: str) -> str:
        return numbers.format_currency(amount, currency, locale=self.locale)

    def date(self, value: datetime | date | None, form: str = "medium") -> str:
        if value is None:
            return "—"
        if isinstance(value, datetime):
            value = value.astimezone(self.zone).date()
        return dates.format_date(value, format=form, locale=self.locale)

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        return dates.format_datetime(value, format="medium", tzinfo=self.zone, locale=self.locale)
