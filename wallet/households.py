"""Read a citizen's household: themself, their family and its members, in one statement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.tables import Family, Person


@dataclass(frozen=True, slots=True)
class Household:
    """A citizen's registry rows: themself, their family and its members (in id order)."""

    caller: Person
    family: Family
    members: list[Person]


# Built once: constructing a SELECT costs more than running it (SQLAlchemy compiles it once
# and caches the compiled form, but the construct itself is rebuilt on every call otherwise).
_FAMILIES_OF = (
    select(Person.family_id)
    .where(Person.iin.in_(bindparam("iins", expanding=True)))
    .scalar_subquery()
)
_HOUSEHOLDS = (
    select(Person, Family)
    .join(Family, Family.id == Person.family_id)
    .where(Person.family_id.in_(_FAMILIES_OF))
    .order_by(Person.family_id, Person.id)
)


async def read_households(*, session: AsyncSession, iins: Sequence[str]) -> dict[str, Household]:
    """The households of the citizens with these IINs (absent IINs are left out)."""
    rows = (await session.execute(_HOUSEHOLDS, {"iins": list(iins)})).all()
    members: dict[int, list[Person]] = defaultdict(list)
    families: dict[int, Family] = {}
    by_iin: dict[str, Person] = {}
    for person, family in rows:
        members[family.id].append(person)
        families[family.id] = family
        by_iin[person.iin] = person
    wanted = set(iins)
    return {
        iin: Household(caller, families[caller.family_id], members[caller.family_id])
        for iin, caller in by_iin.items()
        if iin in wanted
    }
