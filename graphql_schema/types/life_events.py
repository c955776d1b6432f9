"""Life events a source system pushes: the input, and what recording one returns."""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated, Any

import strawberry

from familymap.events import EntitlementDelta, EventKind, LifeEventResult
from graphql_schema.scalars import IIN
from graphql_schema.types.refusal_codes import LifeEventRefusalCode

LifeEventKind = strawberry.enum(
    EventKind, name="LifeEventKind", description="The life events a source system may push."
)


@strawberry.enum(description="Sex as the civil registry records it.")
class Sex(Enum):
    M = "M"
    F = "F"


@strawberry.enum(description="The pendants awarded to mothers of many children.")
class MotherAward(Enum):
    ALTYN_ALQA = "altyn_alqa"
    KUMIS_ALQA = "kumis_alqa"


@strawberry.input(description="The child of a BIRTH event.")
class ChildInput:
    iin: IIN
    last_name: str
    first_name: str
    patronymic: str | None = None
    sex: Sex
    birth_date: date = strawberry.field(description="Must equal the event's occurredOn.")


@strawberry.input(
    description=(
        "One life event. Besides the common fields, each kind takes its own: BIRTH `child`; "
        "DEATH none; JOB_LOST `registeredUnemployed`; DISABILITY_ESTABLISHED "
        "`disabilityGroup`, `disabilityChild`, `capacityLossPct`; SCHOOL_ENROLMENT `schoolId`, "
        "`schoolGrade`; AWARD `award`; KANDAS_STATUS_CHANGED `kandasUntil` (null revokes). "
        "A field another kind takes is refused with BAD_FIELD."
    )
)
class LifeEventInput:
    event_id: str = strawberry.field(
        description="The source system's own id of the event: sending it again is a replay."
    )
    kind: LifeEventKind  # type: ignore[valid-type]
    occurred_on: date
    subject_iin: IIN = strawberry.field(
        description="Whom the event concerns (for a BIRTH: the parent)."
    )
    child: ChildInput | None = strawberry.UNSET
    registered_unemployed: bool | None = strawberry.UNSET
    disability_group: int | None = strawberry.UNSET
    disability_child: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="Disabled since childhood; if left out, true when the subject is under 18.",
    )
    capacity_loss_pct: int | None = strawberry.UNSET
    school_id: str | None = strawberry.UNSET
    school_grade: int | None = strawberry.UNSET
    award: MotherAward | None = strawberry.UNSET
    kandas_until: date | None = strawberry.UNSET

    def data(self) -> dict[str, Any]:
        """The kind's data as the domain takes it: only the fields the caller gave."""
        data: dict[str, Any] = {}
        for name in _DATA_FIELDS:
            value = getattr(self, name)
            if value is strawberry.UNSET:
                continue
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, ChildInput):
                value = {
                    "iin": value.iin,
                    "last_name": value.last_name,
                    "first_name": value.first_name,
                    "patronymic": value.patronymic,
                    "sex": value.sex.value,
                    "birth_date": value.birth_date,
                }
            data[name] = value
        return data


_DATA_FIELDS = (
    "child",
    "registered_unemployed",
    "disability_group",
    "disability_child",
    "capacity_loss_pct",
    "school_id",
    "school_grade",
    "award",
    "kandas_until",
)


@strawberry.type(description="An entitlement the family's re-evaluation created, changed or ended.")
class EntitlementChangeView:
    programme: str = strawberry.field(description="The programme code, e.g. BIRTH_BENEFIT.")
    person_id: strawberry.ID | None = strawberry.field(
        description="The person it is for; null for a family-level programme."
    )
    amount_tiyn: int | None = strawberry.field(description="Null when the entitlement ended.")
    previous_amount_tiyn: int | None = strawberry.field(description="Null when it is new.")
    period_start: date | None
    period_end: date | None

    @classmethod
    def from_delta(cls, delta: EntitlementDelta) -> EntitlementChangeView:
        return cls(
            programme=delta.programme,
            person_id=None if delta.person_id is None else strawberry.ID(str(delta.person_id)),
            amount_tiyn=delta.amount_tiyn,
            previous_amount_tiyn=delta.previous_amount_tiyn,
            period_start=delta.period_start,
            period_end=delta.period_end,
        )


@strawberry.type(description="The event was recorded (or had been: `replayed`).")
class LifeEventRecorded:
    event_id: str
    kind: LifeEventKind  # type: ignore[valid-type]
    replayed: bool = strawberry.field(
        description="True when this event id was recorded before: nothing changed this time."
    )
    family_id: strawberry.ID
    person_id: strawberry.ID = strawberry.field(description="The subject of the event.")
    occurred_on: date
    new_entitlements: list[EntitlementChangeView]
    changed_entitlements: list[EntitlementChangeView]
    ended_entitlements: list[EntitlementChangeView]
    newly_eligible_programmes: list[str] = strawberry.field(
        description="Programmes the family became eligible for, each once."
    )

    @classmethod
    def from_result(cls, result: LifeEventResult) -> LifeEventRecorded:
        def views(deltas: tuple[EntitlementDelta, ...]) -> list[EntitlementChangeView]:
            return [EntitlementChangeView.from_delta(delta) for delta in deltas]

        return cls(
            event_id=result.event_id,
            kind=result.kind,
            replayed=result.replayed,
            family_id=strawberry.ID(str(result.family_id)),
            person_id=strawberry.ID(str(result.person_id)),
            occurred_on=result.occurred_on,
            new_entitlements=views(result.new),
            changed_entitlements=views(result.changed),
            ended_entitlements=views(result.ended),
            newly_eligible_programmes=list(result.newly_eligible),
        )


@strawberry.type(description="The event was refused and nothing of it was written.")
class LifeEventRefused:
    code: LifeEventRefusalCode
    message: str = strawberry.field(description="Why, in plain words; never holds an IIN whole.")


RecordLifeEventResult = Annotated[
    LifeEventRecorded | LifeEventRefused, strawberry.union("RecordLifeEventResult")
]
