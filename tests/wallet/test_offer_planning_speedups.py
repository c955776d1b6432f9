"""The offer job's faster planning decides what the plain rules decide (issue 18).

Each family's recipients are sorted out once (`family_recipients`, adults found by a birth-day
cutoff rather than an age per member), and SMS dates use the skeleton Babel would match on
every call, matched once: each is compared here with the rule written the plain way.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from types import SimpleNamespace

from babel.dates import format_skeleton

from familymap.i18n import LOCALES, numeric_day
from wallet.offers import ADULT_YEARS, adult_born_by, choose_recipient, family_recipients


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _recipient_by_the_plain_rule(members, beneficiary_id, on):
    """The rule as first written: the beneficiary if a living adult, else the head, else the
    spouse, else the eldest living adult."""
    adults = [m for m in members if m.date_of_death is None and _age(m.birth_date, on) >= 18]
    for member in adults:
        if member.id == beneficiary_id:
            return member
    for role in ("head", "spouse"):
        for member in adults:
            if member.role == role:
                return member
    return min(adults, key=lambda m: (m.birth_date, m.id), default=None)


def test_adult_born_by_is_the_age_rule_on_every_day_including_29_february():
    for on in (date(2028, 2, 29), date(2028, 2, 28), date(2028, 3, 1), date(2026, 12, 31)):
        cutoff = adult_born_by(on)
        birth = date(on.year - ADULT_YEARS - 2, 1, 1)
        while birth <= date(on.year - ADULT_YEARS + 1, 12, 31):
            assert (birth <= cutoff) == (_age(birth, on) >= ADULT_YEARS), (on, birth)
            birth += timedelta(days=1)


def test_family_recipients_choose_as_the_plain_rule_on_random_families():
    chooser = random.Random(18)
    roles = ("head", "spouse", "child", "other")
    for family in range(3000):
        on = chooser.choice((date(2028, 2, 29), date(2026, 11, 22), date(2027, 3, 1)))
        members = [
            SimpleNamespace(
                id=family * 10 + n,
                role=chooser.choice(roles),
                birth_date=on.replace(day=1) - timedelta(days=chooser.randrange(0, 80 * 365)),
                date_of_death=chooser.choice((None, None, None, date(2025, 1, 1))),
            )
            for n in range(chooser.randrange(1, 7))
        ]
        chosen = family_recipients(members, on=on)
        for beneficiary in (None, *(m.id for m in members), -1):
            expected = _recipient_by_the_plain_rule(members, beneficiary, on)
            assert chosen.recipient(beneficiary) is expected
            assert choose_recipient(members, beneficiary, on=on) is expected


def test_numeric_day_is_babels_nearest_skeleton_in_every_language():
    day = date(2025, 1, 1)
    for _ in range(800):
        for language, locale in LOCALES.items():
            assert numeric_day(day, language) == format_skeleton("yMMdd", day, locale=locale)
        day += timedelta(days=3)
