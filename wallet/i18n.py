"""The languages the wallet speaks (Kazakh, Russian, English) and the names of programmes.

Russian is the default: it is what the state's own systems fall back to, and every person's
registry record has a language, `ru` unless they chose `kk`. A client's `Accept-Language`
picks among the three with Babel's negotiation (`negotiate`), so `kk-KZ` and `ru;q=0.8` work
as a browser sends them.

The texts themselves are in the one catalogue (familymap/i18n.py, docs/i18n.md); this module
keeps the wallet's names for it.
"""

from __future__ import annotations

from datetime import date

from familymap.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    has_message,
    language_of,
    negotiate,
    translate,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Texts",
    "language_of",
    "negotiate",
    "programme_title",
    "renewal_for",
    "translate",
]

Texts = dict[str, str]


def programme_title(programme: str, language: str) -> str:
    """The programme's name in `language` (its code if the catalogue lacks it)."""
    message_id = f"programme.{programme}"
    return translate(message_id, language) if has_message(message_id) else programme


def renewal_for(start: date, end: date, language: str) -> str:
    """What the app says of a renewal: the next period it is for ("Renewal for 1 January –
    31 March 2027"), dates in the reader's locale."""
    return translate("offer.renewal_for", language, start=start, end=end)
