"""Languages: negotiation from Accept-Language, and a complete catalog of programme titles."""

from __future__ import annotations

import pytest

from familymap.rules import RULES
from wallet.i18n import LANGUAGES, PROGRAMME_TITLES, language_of, negotiate, programme_title


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


def test_every_programme_has_a_title_in_every_language():
    codes = {rule.code for rule in RULES}
    assert set(PROGRAMME_TITLES) == codes
    for code, titles in PROGRAMME_TITLES.items():
        assert set(titles) == set(LANGUAGES), code
        assert all(text.strip() for text in titles.values()), code


def test_stored_language_codes_fall_back_to_russian():
    assert language_of("KK") == "kk"
    assert language_of("xx") == "ru"
    assert language_of(None) == "ru"
    assert programme_title("ASP", "kk") == "атаулы әлеуметтік көмек"
    assert programme_title("NOT_A_PROGRAMME", "en") == "NOT_A_PROGRAMME"
