"""What the wallet says to a citizen about reasons: condition labels, welfare criteria and
their facts, status and category words, each in Kazakh, Russian and English.

The words are in the one catalogue (familymap/locales, docs/i18n.md), under a prefix per kind:
`condition.`, `operator.`, `date_operator.`, `verdict.`, `word.`, `status.`, `category.`,
`criterion.`, `level.`, `welfare_fact.`, and the sentences `reason.condition` and
`reason.criterion`. The engine's own labels (familymap.rules) are English and written for
reviewers of the law; these are the words a family reads in the app. A condition is looked up
as `condition.<PROGRAMME>.<condition id>` first and then as `condition.<condition id>`, so one
id that means the same in several rules (`alive`, `contributions`) is translated once, and an
id that reads differently in two rules (`under_age`) gets one entry per rule.

Values are formatted for the reader's language with Babel (familymap.i18n): money in tenge with
the locale's separators, dates in the locale's long form, percentages and counts likewise.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from familymap.i18n import LOCALES, day, has_message, language_of, money, number, percent, translate

__all__ = ["LOCALES", "money"]

# The catalogue's prefixes, passed to `text` as the kind of word wanted.
CONDITION_LABELS = "condition"
OPERATORS = "operator"
DATE_OPERATORS = "date_operator"
VERDICTS = "verdict"
WORDS = "word"
STATUSES = "status"
CATEGORIES = "category"
CRITERIA = "criterion"
LEVELS = "level"
WELFARE_FACTS = "welfare_fact"


def text(kind: str, key: str, language: str) -> str:
    """The word `key` of `kind` (a prefix above) in `language`; the key itself if the
    catalogue lacks it."""
    message_id = f"{kind}.{key}"
    return translate(message_id, language) if has_message(message_id) else key


def condition_label(programme: str, condition_id: str, language: str) -> str:
    """What a condition of a programme tests, in the reader's words."""
    for message_id in (f"condition.{programme}.{condition_id}", f"condition.{condition_id}"):
        if has_message(message_id):
            return translate(message_id, language)
    return condition_id


def format_value(value: Any, fmt: Any, language: str) -> str:
    """A condition's value or threshold as the reader expects it (see rules.base formats)."""
    try:
        return _format_cached(value, fmt, language_of(language))
    except TypeError:  # an unhashable value (a list): format it without the cache
        return _format(value, fmt, language_of(language))


# The same few values recur on every page (today's date, thresholds, small counts, yes/no),
# and Babel's formatting costs tens of microseconds a call: a bounded cache serves them.
# Typed, since 1 == True: a bool reads "yes" and an int "1", whichever came first.
@lru_cache(maxsize=65_536, typed=True)
def _format_cached(value: Any, fmt: Any, lang: str) -> str:
    return _format(value, fmt, lang)


def _format(value: Any, fmt: Any, lang: str) -> str:
    if value is None:
        return text(WORDS, "none", lang)
    if isinstance(value, tuple | list):
        return ", ".join(_format(item, fmt, lang) for item in value)
    if isinstance(value, bool):
        return text(WORDS, "yes" if value else "no", lang)
    if fmt == "tiyn":
        return money(int(value), lang)
    if isinstance(value, date):
        return day(value, lang)
    if fmt == "pct":
        return percent(Decimal(value), lang)
    if isinstance(value, str):
        return text(WORDS, value, lang)
    return number(value, lang)


def operator_words(op: str, fmt: Any, language: str) -> str:
    """How the value must compare with the threshold, in words."""
    if fmt == "date" and has_message(f"{DATE_OPERATORS}.{op}"):
        return text(DATE_OPERATORS, op, language)
    return text(OPERATORS, op, language)


@lru_cache(maxsize=65_536, typed=True)
def _reason_text(
    programme: str, condition_id: str, value: Any, op: str, threshold: Any, passed: bool,
    fmt: Any, lang: str,
) -> str:  # fmt: skip
    return translate(
        "reason.condition",
        lang,
        label=condition_label(programme, condition_id, lang),
        value=format_value(value, fmt, lang),
        op=operator_words(op, fmt, lang),
        threshold=format_value(threshold, fmt, lang),
        verdict=text(VERDICTS, "passed" if passed else "failed", lang),
    )


def reason_text(
    *,
    programme: str,
    condition_id: str,
    value: Any,
    op: str,
    threshold: Any,
    passed: bool,
    fmt: Any,
    language: str,
) -> str:
    """One condition of a decision in plain language, with its values."""
    args = (programme, condition_id, value, op, threshold, passed, fmt, language_of(language))
    try:
        return _reason_text(*args)
    except TypeError:  # an unhashable value: no cache
        return _reason_text.__wrapped__(*args)


def welfare_fact(name: str, value: Any, language: str) -> str:
    """One fact behind a welfare criterion: 'income per person: 45 000 ₸'."""
    lang = language_of(language)
    if name.endswith("_tiyn"):
        shown = money(int(value), lang)
    elif name.endswith("_pct"):
        shown = percent(int(value), lang)
    else:
        shown = format_value(value, "int", lang)
    return f"{text(WELFARE_FACTS, name, lang)}: {shown}"


def criterion_explanation(
    *, criterion: str, score: int, facts: dict[str, Any], language: str
) -> str:
    """A welfare criterion's score and the facts that produced it, in one sentence."""
    lang = language_of(language)
    return translate(
        "reason.criterion",
        lang,
        criterion=text(CRITERIA, criterion, lang).capitalize(),
        score=score,
        facts="; ".join(welfare_fact(name, value, lang) for name, value in facts.items()),
    )
