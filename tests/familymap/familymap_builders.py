"""Small builders for test families: every fact defaults to "nothing special"."""

from __future__ import annotations

import itertools
from datetime import date

from familymap.situation import Family, Housing, Person

ON = date(2025, 7, 1)  # MRP 3,932 tenge, subsistence minimum 46,228 tenge
MRP = 393_200
PM = 4_622_800
HORIZON = (date(2025, 7, 1), date(2026, 6, 30))

_ids = itertools.count(1)


def person(
    person_id: str | None = None, *, born: date, sex: str = "M", role: str = "head", **facts
) -> Person:
    """A person with the given facts; everything else empty."""
    pid = person_id or f"p{next(_ids)}"
    return Person(person_id=pid, iin="000000000000", birth_date=born, sex=sex, role=role, **facts)


def adult(
    person_id: str | None = None,
    *,
    born: date = date(1985, 3, 10),
    sex: str = "M",
    role: str = "head",
    **facts,
) -> Person:
    """A working-age, employed, insured adult earning 300,000 tenge a month."""
    defaults = {
        "employment": "employed",
        "monthly_income": 30_000_000,
        "social_contributions_months": 24,
        "insured": True,
        "polyclinic_attached": True,
    }
    return person(person_id, born=born, sex=sex, role=role, **{**defaults, **facts})


def child(person_id: str | None = None, *, born: date, **facts) -> Person:
    """A child of the family, insured and attached to a polyclinic."""
    defaults = {"insured": True, "polyclinic_attached": True}
    return person(
        person_id, born=born, sex=facts.pop("sex", "F"), role="child", **{**defaults, **facts}
    )


def family(
    *members: Person, region: str = "astana", family_id: str | None = None, **housing
) -> Family:
    """A family of the given members, owning a 90 m2 flat unless told otherwise."""
    home = {"owned": True, "area_m2": 90, "rooms": 3, **housing}
    return Family(family_id or f"f{next(_ids)}", region, tuple(members), Housing(**home))


def parents(**facts) -> tuple[Person, Person]:
    """A married couple of employed adults (the mother second)."""
    return adult(**facts), adult(born=date(1987, 5, 20), sex="F", role="spouse", **facts)
