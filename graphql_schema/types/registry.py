"""The family map's registry as an operator sees it."""

from __future__ import annotations

from datetime import date

import strawberry

from familymap.tables import Person
from graphql_schema.scalars import IIN


@strawberry.type(description="A person in the family map's registry.")
class RegistryPerson:
    iin: IIN
    last_name: str
    first_name: str
    patronymic: str | None
    birth_date: date
    family_id: strawberry.ID
    role: str = strawberry.field(description="Role in the family: head, spouse, child, ...")
    deceased: bool

    @classmethod
    def from_row(cls, person: Person) -> RegistryPerson:
        return cls(
            iin=person.iin,
            last_name=person.last_name,
            first_name=person.first_name,
            patronymic=person.patronymic,
            birth_date=person.birth_date,
            family_id=strawberry.ID(str(person.family_id)),
            role=person.role,
            deceased=person.date_of_death is not None,
        )
