"""The wallet's catalog of reasons: complete in three languages, values formatted per locale."""

from __future__ import annotations

from datetime import date

import pytest

from familymap.rules import RULES
from familymap.welfare import CRITERIA, LEVELS
from wallet import texts
from wallet.i18n import LANGUAGES
from wallet.spending import CATEGORIES
from wallet.view import EntitlementStatus

CATALOGS = {
    "CONDITION_LABELS": texts.CONDITION_LABELS, "OPERATORS": texts.OPERATORS,
    "DATE_OPERATORS": texts.DATE_OPERATORS, "VERDICTS": texts.VERDICTS, "WORDS": texts.WORDS,
    "STATUSES": texts.STATUSES, "CATEGORIES": texts.CATEGORIES, "CRITERIA": texts.CRITERIA,
    "LEVELS": texts.LEVELS, "WELFARE_FACTS": texts.WELFARE_FACTS,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_every_key_of_every_catalog_has_all_three_languages(name):
    for key, entry in CATALOGS[name].items():
        assert set(entry) == set(LANGUAGES), (name, key)
        assert all(value.strip() for value in entry.values()), (name, key)
    for template in (texts.REASON_TEMPLATE, texts.CRITERION_TEMPLATE):
        assert set(template) == set(LANGUAGES)


def test_every_condition_of_every_rule_has_a_label():
    missing = [
        f"{rule.code}.{c.id}"
        for rule in RULES
        for c in rule.conditions
        if f"{rule.code}.{c.id}" not in texts.CONDITION_LABELS
        and c.id not in texts.CONDITION_LABELS
    ]
    assert missing == []


def test_every_operator_criterion_level_status_and_category_has_words():
    assert {c.op for r in RULES for c in r.conditions} <= set(texts.OPERATORS)
    assert set(CRITERIA) == set(texts.CRITERIA)
    assert set(LEVELS) == set(texts.LEVELS)
    assert {s.value for s in EntitlementStatus} == set(texts.STATUSES)
    assert set(CATEGORIES) == set(texts.CATEGORIES)


@pytest.mark.parametrize(
    ("language", "money", "day"),
    [
        ("ru", "12\xa0345,50\xa0₸", "5 мар. 2026\u202fг."),
        ("en", "KZT12,345.50", "Mar 5, 2026"),
        ("kk", "12\xa0345,50\xa0₸", "2026\u202fж. 05 нау."),
    ],
)
def test_money_and_dates_read_as_the_locale_writes_them(language, money, day):
    assert texts.money(1_234_550, language) == money
    assert texts.format_value(date(2026, 3, 5), "date", language) == day


def test_a_reason_says_what_was_seen_what_was_asked_and_the_verdict():
    # when a failed income condition is told in Russian and English
    ru = texts.reason_text(programme="ASP", condition_id="per_capita_income", value=5_000_000,
                           op="<", threshold=3_559_570, passed=False, fmt="tiyn", language="ru")  # fmt: skip
    en = texts.reason_text(programme="ASP", condition_id="per_capita_income", value=5_000_000,
                           op="<", threshold=3_559_570, passed=False, fmt="tiyn", language="en")  # fmt: skip

    # then each has the label, both amounts in tenge, the comparison and the verdict
    assert ru == (
        "Среднедушевой месячный доход живых членов семьи: 50\xa0000,00\xa0₸ "
        "(требуется: меньше 35\xa0595,70\xa0₸) — не выполнено"
    )
    assert en.startswith("Per-capita monthly income of the living members: KZT50,000.00")
    assert en.endswith("(required: less than KZT35,595.70) — not met")


def test_one_condition_id_reads_differently_in_two_rules():
    assert (
        texts.condition_label("CHILDCARE_TO_1_5", "under_age", "en") == "Has not reached 1.5 years"
    )
    assert texts.condition_label("DISABLED_CHILD_CARER", "under_age", "en") == "Has not reached 18"
