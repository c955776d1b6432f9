"""The one catalogue: complete in kk, ru and en, every id the code uses in it, values written in
the reader's locale; languages negotiated from Accept-Language."""

from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import pytest

from familymap.i18n import (
    LANGUAGES,
    MissingMessage,
    Refusal,
    Term,
    Tiyn,
    catalogues,
    has_message,
    load_catalogues,
    missing_translations,
    translate,
)
from familymap.rules import RULES
from graphql_schema.errors import refusal_text
from vouchers.errors import NotEligible
from vouchers.tables import MEAL_TYPES
from wallet.i18n import language_of, negotiate, programme_title
from wallet.idempotency import IdempotencyError
from wallet.ledger import LedgerError
from wallet.messages import NOTICE_TEMPLATES, TEMPLATES
from wallet.offers import FulfilmentRefused, InvalidIban, OfferError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("familymap", "wallet", "vouchers", "graphql_schema", "app", "bench")
# Modules whose exception classes take a catalogue message id as their first argument.
CATALOGUED_ERRORS = (
    "vouchers.errors",
    "graphql_schema.errors",
    "familymap.events",
    "familymap.importer",
    "app.auth",
)
MESSAGE_ID = re.compile(r"^[a-z_]+\.[A-Za-z_][\w.]*$")
# Strings that are message ids wherever they stand (log events use other words: "sms.sent").
ID_PREFIXES = re.compile(r"^(refusal|error|code|reason|meal)\.[A-Za-z_][\w.]*$")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "ru"),
        ("", "ru"),
        ("kk-KZ,kk;q=0.9,ru;q=0.8", "kk"),
        ("en-US,en;q=0.9", "en"),
        ("ru-RU", "ru"),
        ("de-DE,en;q=0.5", "en"),
        ("de-DE,fr", "ru"),
        ("en;q=0.2,kk;q=0.9", "kk"),
        ("kk;q=0,en", "en"),
        ("*", "ru"),
        ("en;q=abc,kk", "kk"),
    ],
)
def test_accept_language_picks_one_of_three(header, expected):
    assert negotiate(header) == expected


def test_stored_language_codes_fall_back_to_russian():
    assert language_of("KK") == "kk"
    assert language_of("xx") == "ru"
    assert language_of(None) == "ru"
    assert programme_title("ASP", "kk") == "атаулы әлеуметтік көмек"
    assert programme_title("NOT_A_PROGRAMME", "en") == "NOT_A_PROGRAMME"


def test_every_message_has_a_text_in_kk_ru_and_en_with_the_same_slots():
    # given the product's catalogues, as they are read at start-up
    found = catalogues()

    # then each language has one, and nothing is missing or differs in its slots
    assert set(found) == set(LANGUAGES)
    assert missing_translations(found) == []


def _write_po(root: Path, language: str, messages: dict[str, str]) -> None:
    folder = root / language / "LC_MESSAGES"
    folder.mkdir(parents=True)
    entries = "".join(f'\nmsgid "{key}"\nmsgstr "{text}"\n' for key, text in messages.items())
    (folder / "socialwallet.po").write_text(
        f'msgid ""\nmsgstr ""\n"Language: {language}\\n"\n{entries}', encoding="utf-8"
    )


def test_the_check_fails_when_a_translation_is_removed(tmp_path):
    # given a tiny catalogue, complete in three languages
    complete = tmp_path / "complete"
    _write_po(complete, "kk", {"greeting": "Сәлем, {name}", "bye": "Сау болыңыз"})
    _write_po(complete, "ru", {"greeting": "Привет, {name}", "bye": "До свидания"})
    _write_po(complete, "en", {"greeting": "Hello, {name}", "bye": "Goodbye"})
    assert missing_translations(load_catalogues(complete)) == []

    # when one translation is emptied, one removed and one loses its slot
    broken = tmp_path / "broken"
    _write_po(broken, "kk", {"greeting": "Сәлем, {name}", "bye": ""})
    _write_po(broken, "ru", {"greeting": "Привет"})
    _write_po(broken, "en", {"greeting": "Hello, {name}", "bye": "Goodbye"})

    # then the check names each
    problems = missing_translations(load_catalogues(broken))
    assert "kk: bye has no text" in problems
    assert "ru: bye has no text" in problems
    assert any(p.startswith("greeting: the languages differ in slots") for p in problems)
    assert len(problems) == 3


def test_the_check_fails_when_a_language_has_no_catalogue(tmp_path):
    _write_po(tmp_path, "ru", {"bye": "До свидания"})
    _write_po(tmp_path, "en", {"bye": "Goodbye"})
    assert missing_translations(load_catalogues(tmp_path)) == [
        "kk: no catalogue",
        "kk: bye has no text",
    ]


def _catalogued_names(tree: ast.Module, module: str) -> set[str]:
    names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module in CATALOGUED_ERRORS
        for alias in node.names
    }
    if module in CATALOGUED_ERRORS:
        names |= {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    return names


def _uses_of_ids() -> tuple[set[str], list[str]]:
    """Every message id written in the code, and every refusal raised with words, not an id."""
    ids: set[str] = set()
    worded: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            refusals = _catalogued_names(tree, module)
            for node in ast.walk(tree):
                is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
                if is_text and ID_PREFIXES.match(node.value):
                    ids.add(node.value)
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                first = node.args[0]
                if name in {"translate", "has_message"} and isinstance(first, ast.Constant):
                    ids.add(first.value)
                if name in refusals:
                    if isinstance(first, ast.Constant):
                        ids.add(first.value)
                        if not MESSAGE_ID.match(first.value):
                            worded.append(f"{module}:{node.lineno}: {first.value!r}")
                    elif isinstance(first, ast.JoinedStr):
                        worded.append(f"{module}:{node.lineno}: an f-string")
    return ids, worded


def test_every_message_id_the_code_uses_is_in_the_catalogue():
    # given every id written in the code (refusals raised, texts translated)
    ids, worded = _uses_of_ids()

    # then each is in the catalogue, and no refusal is raised with English words instead
    assert len(ids) > 80
    assert sorted(i for i in ids if not has_message(i)) == []
    assert worded == []


def test_ids_the_code_builds_are_in_the_catalogue():
    # Ids made from data: a programme's title, an SMS template, a refusal's code, a meal.
    built = (
        [f"programme.{rule.code}" for rule in RULES]
        + [f"sms.{template}" for template in (*TEMPLATES, *NOTICE_TEMPLATES)]
        + [f"meal.{meal}" for meal in MEAL_TYPES]
        + [
            f"code.{cls.code}"
            for base in (LedgerError, OfferError, IdempotencyError)
            for cls in _subclasses(base)
        ]
    )
    assert [message_id for message_id in built if not has_message(message_id)] == []


def _subclasses(base: type) -> list[type]:
    found: list[type] = []
    for cls in base.__subclasses__():
        found += [cls, *_subclasses(cls)]
    return [cls for cls in found if isinstance(cls.__dict__.get("code"), str)]


def test_money_and_dates_in_a_message_are_written_in_the_readers_locale():
    values = {"left": Tiyn(12_800_000), "amount": Tiyn(20_000_000)}
    assert translate("refusal.medicines_voucher_spent", "en", **values).startswith(
        "the patient's medicines voucher has ₸128,000 left; this costs ₸200,000"
    )
    assert translate("refusal.medicines_voucher_spent", "ru", **values).startswith(
        "На лекарственном ваучере пациента осталось 128\xa0000\xa0₸; это стоит 200\xa0000\xa0₸"
    )
    on = date(2026, 11, 18)
    assert (
        translate("refusal.not_a_school_day", "en", day=on)
        == "November 18, 2026 is not a school day"
    )
    assert (
        translate("refusal.not_a_school_day", "kk", day=on)
        == "2026\u202fж. 18 қараша — оқу күні емес"
    )
    assert translate("refusal.already_redeemed", "en", meal=Term("meal.lunch"), day=on) == (
        "the child's lunch of November 18, 2026 was served already"
    )


def test_a_refusal_carries_its_id_and_is_said_in_each_language():
    refused = Refusal("refusal.not_a_school_day", day=date(2026, 11, 21))
    assert str(refused) == "November 21, 2026 is not a school day"
    assert refused.text("ru") == "21 ноября 2026\u202fг. — не учебный день"
    assert refused.text("kk") == "2026\u202fж. 21 қараша — оқу күні емес"


def test_an_unknown_id_or_words_instead_of_an_id_are_refused():
    with pytest.raises(MissingMessage):
        translate("refusal.no_such_thing", "en")
    with pytest.raises(ValueError, match="not a message id"):
        Refusal("no such merchant")


def test_a_refusal_returned_as_data_is_said_in_the_callers_language():
    # given a voucher refusal passed on by the offers, and a ledger refusal with only a code
    try:
        try:
            raise NotEligible("refusal.no_meals_entitlement")
        except NotEligible as refused:
            raise FulfilmentRefused(refused.code, str(refused)) from refused
    except FulfilmentRefused as passed_on:
        fulfilment = passed_on

    # then each reads in the caller's language
    assert refusal_text(fulfilment, "kk") == (
        "Баланың мектепте тамақтануға қолданыстағы құқығы жоқ"
    )
    assert refusal_text(InvalidIban("bad check digits"), "ru") == (
        "Это не действительный казахстанский IBAN."
    )
    assert refusal_text(ValueError("plain"), "kk") == "plain"
