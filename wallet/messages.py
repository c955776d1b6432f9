"""The SMS texts of 1414, in Kazakh, Russian and English.

Every text is short (an SMS or two), names what it is about and the amount, says how to reply
where a reply is wanted (with the offer's reply code, docs/consent.md), and carries no link: a genuine message from 1414 never asks anyone
to follow a link, so a message with one is a fraud, and the offer says so. A person whose
language is none of kk, ru and en gets Russian; a sender we cannot identify gets Russian and
Kazakh. The texts are the catalogue's `sms.*` messages (familymap/locales, docs/i18n.md), and
money and dates in them are written by the one formatter of the reader's locale.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any

from familymap.i18n import LANGUAGES, language_of, money, numeric_day, translate
from wallet.i18n import programme_title

SMS_LANGUAGES = LANGUAGES
# Where an offer's reply code goes in its text (see with_reply_code).
REPLY_CODE_SLOT = "{code}"

# The SMS texts are the catalogue's `sms.<template>` messages (familymap/locales): an offer,
# its answers, the answers to replies that changed nothing, and the notices.
TEMPLATES = (
    "offer",
    # The next period of an entitlement the family had (wallet.offered): it says it is a
    # renewal and names the period.
    "renewal",
    # The same two for a programme with a standing consent (wallet.offered.STANDING): they
    # say that consent stands for each next period while the person is entitled.
    "offer_standing",
    "renewal_standing",
    # A standing consent's next period funded without asking (wallet.offers).
    "standing_renewed",
    "assigned",
    "voucher_assigned",
    "needs_bank_account",
    # A payment the bank returned (wallet/reconcile.py): the amount, and where to check.
    "payment_returned",
    "declined",
    # A decline without a reason: the reasons' numbers (DECLINE_REASONS, counted from 1) for
    # the take-up funnel (docs/funnel.md); answering is optional.
    "declined_why",
    "decline_reason",
    "withdrawn",
    "no_open_offer",
    "unparseable",
    # A reply without a code while the phone has several questions: nothing was changed.
    "ambiguous",
    # A reply whose code names none of the phone's open offers: nothing was changed.
    "unknown_code",
    # A reply whose code names an offer answered before or past its deadline.
    "closed_offer",
    # Nothing here learns that a pension was assigned, so the notice promises no later SMS:
    # it says the date and where to apply (docs/consent.md).
    "PENSION_AGE_NOTICE",
    "KANDAS_STATUS_NOTICE",
    # The same notice when the term of a status already notified changes (an extension).
    "KANDAS_STATUS_CHANGED",
    "KANDAS_EXPIRY_NOTICE",
    "EMPLOYMENT_MEASURES_NOTICE",
)

NOTICE_TEMPLATES = (
    "PENSION_AGE_NOTICE",
    "KANDAS_EXPIRY_NOTICE",
    "KANDAS_STATUS_NOTICE",
    "KANDAS_STATUS_CHANGED",
    "EMPLOYMENT_MEASURES_NOTICE",
)


def sms_language(language: str | None) -> str:
    """The person's language if an SMS is written in it (kk, ru, en); Russian otherwise."""
    return language_of(language)


# Babel takes about 0.2 ms an amount; a campaign's texts differ by amount (each family's
# ASP, each month's sum) more than the texts' cache can hold, but amounts repeat.
@lru_cache(maxsize=65536)
def tenge(amount_tiyn: int, language: str) -> str:
    """An amount as the reader's locale writes tenge, e.g. '46 787,10 ₸'."""
    return money(amount_tiyn, language)


def _date(on: date | None, language: str) -> str:
    return numeric_day(on, language) if on else ""


def _months(first: date, last: date) -> str:
    if first == last:
        return f"{first:%m.%Y}"
    if first.year == last.year:
        return f"{first:%m}–{last:%m.%Y}"
    return f"{first:%m.%Y}–{last:%m.%Y}"


def money_text(amount_tiyn: int, months: tuple[tuple[date, int], ...], language: str) -> str:
    """The sum of a one-off (no months), or what each run of months pays, briefly
    ("46 787,10 ₸ в месяц за 10–11.2026")."""
    if not months:
        return tenge(amount_tiyn, language)
    runs: list[list[Any]] = []
    for month, amount in months:
        if runs and runs[-1][2] == amount:
            runs[-1][1] = month
        else:
            runs.append([month, month, amount])
    return ", ".join(
        translate(
            "sms.per_month",
            language,
            amount=tenge(amount, language),
            months=_months(first, last),
        )
        for first, last, amount in runs
    )


# The same few texts recur by the hundred thousand after a national run (one benefit, one
# amount, one deadline): Babel's formatting is the costly part, so texts are remembered.
@lru_cache(maxsize=4096)
def sms_text(
    template: str,
    *,
    language: str | None,
    programme: str = "",
    amount_tiyn: int = 0,
    until: date | None = None,
    about: date | None = None,
    months: tuple[tuple[date, int], ...] = (),
    start: date | None = None,
    end: date | None = None,
) -> str:
    """The text of an SMS from 1414 in the person's language; `months` ((first day, tiyn),
    in order) says what a monthly benefit pays for which month; `start` and `end` are the
    period a renewal names."""
    lang = sms_language(language)
    # Only a renewal's text has a period: each value given costs the formatter microseconds,
    # and a national run writes hundreds of thousands of texts.
    period = {} if start is None else {"start": _date(start, lang), "end": _date(end, lang)}
    return translate(
        f"sms.{template}",
        lang,
        title=programme_title(programme, lang),
        amount=tenge(amount_tiyn, lang),
        money=money_text(amount_tiyn, months, lang),
        until=_date(until, lang),
        about=_date(about, lang),
        **period,
        # Kept as a slot: each offer's code differs, and a text that held it could not be
        # remembered; with_reply_code fills it.
        code=REPLY_CODE_SLOT,
        choices="",
    )


def with_reply_code(text: str, code: str) -> str:
    """The text with the offer's reply code in its slot."""
    return text.replace(REPLY_CODE_SLOT, code)


def reply_text(
    template: str,
    *,
    language: str | None,
    code: str = "",
    programme: str = "",
    choices: Sequence[tuple[str, str]] = (),
) -> str:
    """An answer to a reply that changed nothing, naming codes and the offers they answer."""
    lang = sms_language(language)
    listed = "; ".join(
        f"{choice_code} ({programme_title(choice_programme, lang)})"
        for choice_code, choice_programme in choices
    )
    return translate(
        f"sms.{template}",
        lang,
        title=programme_title(programme, lang),
        amount="",
        money="",
        until="",
        about="",
        code=code,
        choices=listed,
    )


def unknown_sender_text() -> str:
    """The answer to a reply from a number no offer was sent to: we do not know the person, so
    Russian and Kazakh, and nothing about whether the number is in the registry."""
    kazakh = translate("sms.unknown_sender", "kk").removeprefix("1414: ")
    return f"{translate('sms.unknown_sender', 'ru')} / {kazakh}"
