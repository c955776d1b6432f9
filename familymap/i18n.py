"""One catalogue of every text a person reads, in Kazakh, Russian and English.

The texts are gettext catalogues, `familymap/locales/<lang>/LC_MESSAGES/socialwallet.po`,
read with Babel when first needed. A message's `msgid` is a stable id ("sms.offer",
"refusal.no_such_merchant"), not the English sentence: English is one translation among
three, so an English wording can change without touching code or the other two languages.
The .po files are read directly rather than compiled to .mo: they are the reviewed source,
nothing compiled has to be committed or kept in step, and reading them takes milliseconds.

Placeholders are `{name}`, filled by `translate` from keyword values; money (a `Tiyn`) and
dates are formatted for the reader's locale by Babel, so every text writes them one way.

This module is the bottom layer's: familymap, wallet and vouchers use it without the web
stack, and the GraphQL layer renders refusals with it in the request's language.
"""

from __future__ import annotations

import os
import re
import string
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_skeleton, match_skeleton
from babel.messages.pofile import read_po
from babel.numbers import (
    format_decimal,
    format_percent,
    get_decimal_symbol,
    get_group_symbol,
    get_minus_sign_symbol,
)

LANGUAGES = ("kk", "ru", "en")
DEFAULT_LANGUAGE = "ru"
DOMAIN = "socialwallet"
LOCALE_DIR = Path(__file__).parent / "locales"

# CLDR has no English locale for Kazakhstan: English takes the generic one's separators,
# currency pattern and dates ('₸12,345.50', 'November 18, 2026'), with the tenge sign (money).
LOCALES = {"kk": "kk_KZ", "ru": "ru_KZ", "en": "en"}

Catalogue = dict[str, str]


class Tiyn(int):
    """An amount of money in tiyn, so `translate` writes it as tenge in the reader's locale."""


class Term(str):
    """A value that is itself a message id ("meal.lunch"), shown in the reader's language."""


def language_of(value: str | None) -> str:
    """One of LANGUAGES for a stored or requested language code; the default otherwise."""
    code = (value or "").split("-")[0].split("_")[0].lower()
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def environment_language(fallback: str = "en") -> str:
    """The language the process's locale names (LANGUAGE, LC_ALL, LC_MESSAGES, LANG, read as
    gettext reads them), when it is one of LANGUAGES; else `fallback`. For the command line,
    whose own frame (headings, counts) is English: an operator whose terminal speaks kk or ru
    reads the reasons in it without asking."""
    # Not babel.default_locale: it also reads LC_CTYPE, which Python itself sets to C.UTF-8
    # when the named locale is not installed (PEP 538), hiding LANG.
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "").split(":")[0]
        if value:
            code = re.split(r"[_.@-]", value)[0].lower()
            return code if code in LANGUAGES else fallback
    return fallback


def negotiate(accept_language: str | None) -> str:
    """The best of LANGUAGES for an `Accept-Language` header, by Babel; default ru."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    preferred: list[tuple[float, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and weight > 0:
            # Stable order for equal weights: earlier in the header wins.
            preferred.append((-weight + position * 1e-6, tag.replace("-", "_")))
    tags = [tag for _, tag in sorted(preferred)]
    found = Locale.negotiate(tags, list(LANGUAGES), sep="_")
    return found.language if found is not None else DEFAULT_LANGUAGE


def load_catalogues(root: Path = LOCALE_DIR) -> dict[str, Catalogue]:
    """Every language's catalogue under `root`, as {language: {message id: text}}."""
    catalogues: dict[str, Catalogue] = {}
    for po in sorted(root.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        with po.open("rb") as handle:
            # No locale: plural rules are not used, and parsing one costs more than the file.
            parsed = read_po(handle, domain=DOMAIN)
        catalogues[po.parent.parent.name] = {
            str(message.id): str(message.string or "") for message in parsed if message.id
        }
    return catalogues


def placeholders(text: str) -> set[str]:
    """The `{name}` slots of a text."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def missing_translations(
    catalogues: dict[str, Catalogue], languages: tuple[str, ...] = LANGUAGES
) -> list[str]:
    """What keeps the catalogues from being complete: a language without a catalogue, a message
    without a text in some language, or texts of one message with different slots."""
    problems = [f"{lang}: no catalogue" for lang in languages if lang not in catalogues]
    ids = sorted({key for lang in languages for key in catalogues.get(lang, {})})
    for key in ids:
        texts = {lang: catalogues.get(lang, {}).get(key, "") for lang in languages}
        problems += [f"{lang}: {key} has no text" for lang, t in texts.items() if not t.strip()]
        slots = {lang: placeholders(t) for lang, t in texts.items() if t.strip()}
        if len({frozenset(s) for s in slots.values()}) > 1:
            problems.append(f"{key}: the languages differ in slots {slots}")
    return problems


@lru_cache(maxsize=1)
def catalogues() -> dict[str, Catalogue]:
    """The product's catalogues, read once."""
    return load_catalogues()


def has_message(message_id: str) -> bool:
    """True when the catalogue holds `message_id`."""
    return message_id in catalogues()[DEFAULT_LANGUAGE]


TENGE = "\u20b8"  # ₸


def money(tiyn: int, language: str) -> str:
    """An amount of tiyn as tenge in the locale's form: '128 000 ₸', '12 345,50 ₸' (kk, ru),
    '₸128,000', '₸12,345.50' (en).

    This is the definition the web client's `money()` (app/web/i18n.js) is tested against
    (tests/web/test_formatting_agreement.py), so a reader sees one form wherever the amount
    comes from: the locale's grouping, decimal sign, minus sign and currency pattern (CLDR,
    through Babel), the tenge sign in every language (CLDR's narrow symbol: the standard one
    of English is the code, KZT), no decimals for whole tenge and two otherwise.
    """
    return _money(int(tiyn), language_of(language))


@lru_cache(maxsize=65_536)
def _money(tiyn: int, lang: str) -> str:
    # Babel's formatting costs ~0.1 ms an amount, and a campaign's family amounts (ASP) are
    # each new: the locale's symbols and pattern are read from Babel once (`_money_form`) and
    # applied here. `money_by_babel` is the same rule through Babel, amount by amount; a test
    # holds the two equal over thousands of amounts in each language.
    prefix, suffix, group, decimal, minus = _money_form(lang)
    whole, cents = divmod(abs(tiyn), 100)
    number = f"{whole:,}".replace(",", group) + (f"{decimal}{cents:02d}" if cents else "")
    return f"{minus if tiyn < 0 else ''}{prefix}{number}{suffix}"


@lru_cache(maxsize=8)
def _money_form(lang: str) -> tuple[str, str, str, str, str]:
    """The locale's currency prefix and suffix (with the tenge sign), group and decimal
    separators and minus sign, as CLDR gives them through Babel."""
    locale = Locale.parse(LOCALES[lang])
    pattern = locale.currency_formats["standard"]
    prefix, suffix = (part[0].replace("¤", TENGE) for part in (pattern.prefix, pattern.suffix))
    return (
        prefix,
        suffix,
        get_group_symbol(locale),
        get_decimal_symbol(locale),
        get_minus_sign_symbol(locale),
    )


def money_by_babel(tiyn: int, language: str) -> str:
    """`money` computed by Babel for this one amount: the rule's reference (see `_money`)."""
    locale = Locale.parse(LOCALES[language_of(language)])
    pattern = locale.currency_formats["standard"]
    digits = "#,##0" if tiyn % 100 == 0 else "#,##0.00"
    number = format_decimal(Decimal(abs(tiyn)) / 100, format=digits, locale=locale)
    # The positive prefix and suffix of the pattern ("", "\xa0¤" or "¤", ""); a minus sign
    # goes before both, as CLDR's implicit negative pattern puts it.
    prefix, suffix = (part[0].replace("¤", TENGE) for part in (pattern.prefix, pattern.suffix))
    sign = get_minus_sign_symbol(locale) if tiyn < 0 else ""
    return f"{sign}{prefix}{number}{suffix}"


def day(value: date, language: str) -> str:
    """A date in the locale's long form: '18 ноября 2026 г.', '2026 ж. 18 қараша',
    'November 18, 2026'. The web client's `date()` is tested against it, like `money`: month
    names in full read more easily than abbreviations ('қар.') on a screen and in a sentence."""
    return _day(value, language_of(language))


@lru_cache(maxsize=4096)
def _day(value: date, lang: str) -> str:
    return format_date(value, format="long", locale=LOCALES[lang])


def numeric_day(value: date, language: str) -> str:
    """A date in the locale's numeric form with the full year, e.g. '18.12.2026' (kk, ru) or
    '12/18/2026' (en): short enough for an SMS, and no abbreviation ending a sentence."""
    return _numeric_day(value, language_of(language))


@lru_cache(maxsize=4096)
def _numeric_day(value: date, lang: str) -> str:
    return format_skeleton(_numeric_skeleton(lang), value, locale=LOCALES[lang])


# "yMMdd" is not among the locales' own skeletons: Babel would search for the nearest one
# (~2 ms) on every call. Found once per language, the same skeleton Babel would pick.
@lru_cache(maxsize=8)
def _numeric_skeleton(lang: str) -> str:
    return match_skeleton("yMMdd", Locale.parse(LOCALES[lang]).datetime_skeletons) or "yMMdd"


def number(value: int | float | Decimal, language: str) -> str:
    """A number with the locale's separators, e.g. '12 345,5'."""
    return format_decimal(value, locale=LOCALES[language_of(language)])


def percent(value: int | float | Decimal, language: str) -> str:
    """A share written as the locale writes percentages; `value` is in percent (45 -> 45 %)."""
    return format_percent(Decimal(value) / 100, locale=LOCALES[language_of(language)])


def _shown(value: Any, lang: str) -> str:
    if isinstance(value, Term):
        return translate(value, lang)
    if isinstance(value, Refusal):  # a refusal quoted inside another message ("...: {reason}")
        return value.text(lang)
    if isinstance(value, Tiyn):
        return money(value, lang)
    if isinstance(value, date):
        return day(value, lang)
    if isinstance(value, Decimal | float):
        return number(value, lang)
    return str(value)


class MissingMessage(KeyError):
    """A message id the catalogue does not hold: a bug, caught by tests/wallet/test_i18n.py."""


def translate(message_id: str, language: str | None, /, **values: Any) -> str:
    """The text of `message_id` in `language` (default ru), its slots filled with `values`;
    money (Tiyn) and dates are written in the reader's locale."""
    lang = language_of(language)
    try:
        template = catalogues()[lang][message_id]
    except KeyError:
        raise MissingMessage(message_id) from None
    if not values:
        return template
    return template.format(**{name: _shown(value, lang) for name, value in values.items()})


_ID = re.compile(r"^[a-z_]+(\.[A-Za-z0-9_<>=!. ]+)+$")


class Refusal(Exception):
    """An expected refusal whose words are a catalogue message: an id and its values.

    `str()` is the English text, for logs and operators; `text(language)` is what the person
    who was refused reads.
    """

    def __init__(self, message_id: str, /, **values: Any) -> None:
        if not _ID.match(message_id):
            raise ValueError(f"not a message id: {message_id!r}")
        self.message_id = message_id
        self.values = values
        super().__init__(translate(message_id, "en", **values))

    @property
    def message(self) -> str:
        return str(self)

    def text(self, language: str | None) -> str:
        """The refusal in `language`."""
        return translate(self.message_id, language, **self.values)
