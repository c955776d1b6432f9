"""The wallet's catalog of reasons: complete in three languages, values formatted per locale."""

from __future__ import annotations

from datetime import date

import pytest

from familymap.i18n import has_message
from familymap.rules import RULES
from familymap.welfare import CRITERIA, LEVELS
from wallet import texts
from wallet.messages import money_text, sms_text, unknown_sender_text, with_reply_code
from wallet.spending import CATEGORIES
from wallet.view import EntitlementStatus


def _has(kind: str, key: str) -> bool:
    return has_message(f"{kind}.{key}")


def test_every_condition_of_every_rule_has_a_label():
    missing = [
        f"{rule.code}.{c.id}"
        for rule in RULES
        for c in rule.conditions
        if not _has(texts.CONDITION_LABELS, f"{rule.code}.{c.id}")
        and not _has(texts.CONDITION_LABELS, c.id)
    ]
    assert missing == []


def test_every_operator_criterion_level_status_and_category_has_words():
    kinds = {
        texts.OPERATORS: {c.op for r in RULES for c in r.conditions},
        texts.CRITERIA: set(CRITERIA),
        texts.LEVELS: set(LEVELS),
        texts.STATUSES: {s.value for s in EntitlementStatus},
        texts.CATEGORIES: set(CATEGORIES),
        texts.VERDICTS: {"passed", "failed"},
        texts.WORDS: {"yes", "no", "none"},
    }
    missing = [
        f"{kind}.{key}" for kind, keys in kinds.items() for key in keys if not _has(kind, key)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("language", "money", "day"),
    [
        ("ru", "12\xa0345,50\xa0₸", "5 марта 2026\u202fг."),
        ("en", "₸12,345.50", "March 5, 2026"),
        ("kk", "12\xa0345,50\xa0₸", "2026\u202fж. 5 наурыз"),
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
        "Среднедушевой месячный доход живых членов семьи: 50\xa0000\xa0₸ "
        "(требуется: меньше 35\xa0595,70\xa0₸) — не выполнено"
    )
    assert en.startswith("Per-capita monthly income of the living members: ₸50,000")
    assert en.endswith("(required: less than ₸35,595.70) — not met")


def test_one_condition_id_reads_differently_in_two_rules():
    assert (
        texts.condition_label("CHILDCARE_TO_1_5", "under_age", "en") == "Has not reached 1.5 years"
    )
    assert texts.condition_label("DISABLED_CHILD_CARER", "under_age", "en") == "Has not reached 18"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "kk",
            "1414: Сізге тиесілі: бала тууына байланысты біржолғы жәрдемақы, 142\xa0200\xa0₸. "
            "Рәсімдеу үшін 18.12.2026 дейін 1 4821 (келісемін) немесе 2 4821 "
            "(бас тартамын) деп жауап беріңіз; eGov Mobile арқылы да болады. Біз сілтеме "
            "жібермейміз: ресми SMS тек 1414 нөмірінен келеді.",
        ),
        (
            "ru",
            "1414: Вам положено: единовременное пособие на рождение ребёнка, 142\xa0200\xa0₸. "
            "Чтобы оформить, ответьте 1 4821 (согласен) или 2 4821 (отказ) до "
            "18.12.2026; можно и в eGov Mobile. Мы не присылаем ссылок: официальные "
            "SMS приходят только с номера 1414.",
        ),
        (
            "en",
            "1414: You are entitled to: one-time benefit at the birth of a child, ₸142,200. "
            "To apply, reply 1 4821 (agree) or 2 4821 (decline) by 12/18/2026; eGov Mobile "
            "works too. We never send links: official SMS come only from 1414.",
        ),
    ],
)
def test_an_offer_sms_is_written_in_the_persons_language(language, expected):
    # when the birth benefit is offered to a person speaking `language`
    text = sms_text(
        "offer",
        language=language,
        programme="BIRTH_BENEFIT",
        amount_tiyn=14_220_000,
        until=date(2026, 12, 18),
    )

    # then the whole text is in that language, its money and date as the locale writes them
    assert with_reply_code(text, "4821") == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("kk", "10–11.2026 үшін айына 46\xa0787,10\xa0₸, 12.2026 үшін айына 82\xa0382,80\xa0₸"),
        ("ru", "46\xa0787,10\xa0₸ в месяц за 10–11.2026, 82\xa0382,80\xa0₸ в месяц за 12.2026"),
        ("en", "₸46,787.10 a month for 10–11.2026, ₸82,382.80 a month for 12.2026"),
    ],
)
def test_an_sms_writes_money_with_the_one_formatter_of_the_reason_texts(language, expected):
    months = ((date(2026, 10, 1), 4_678_710), (date(2026, 11, 1), 4_678_710),
              (date(2026, 12, 1), 8_238_280))  # fmt: skip
    assert money_text(0, months, language) == expected
    assert money_text(4_678_710, (), language) == texts.money(4_678_710, language)


def test_a_person_of_another_language_gets_russian_and_a_stranger_both_registry_languages():
    assert sms_text("no_open_offer", language="de").startswith("1414: У вас нет предложений")
    assert unknown_sender_text() == (
        "1414: На этот номер предложений не отправлялось. Ответьте с номера, на который пришло "
        "SMS, или используйте eGov Mobile. / Бұл нөмірге ұсыныс жіберілмеген. SMS келген "
        "нөмірден жауап беріңіз немесе eGov Mobile-ды пайдаланыңыз."
    )


@pytest.mark.parametrize(
    ("language", "start"),
    [
        ("kk", "1414: «атаулы әлеуметтік көмек» төлемі, 46\xa0787,10\xa0₸, шотқа түспеді"),
        ("ru", "1414: Выплата «адресная социальная помощь», 46\xa0787,10\xa0₸, не зачислена"),
        ("en", "1414: The payment “targeted social assistance”, ₸46,787.10, was not credited"),
    ],
)
def test_a_returned_payment_is_told_in_the_persons_language(language, start):
    text = sms_text("payment_returned", language=language, programme="ASP", amount_tiyn=4_678_710)
    assert text.startswith(start)
