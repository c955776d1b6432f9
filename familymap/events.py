"""Life events a state information system pushes into the family map, one at a time.

A birth, a death, a job lost, a disability established, a school enrolment, an award or a
changed kandas status is checked, applied to the registry, kept (a `FactRecord` under the key
`event:<event_id>` and a `LifeEvent` row), and the subject's family is re-evaluated at once, so
the offer flow sees its new entitlements without waiting for the next batch run.

Each fact an event changes goes through the importer's validator and applier for its kind
(`familymap.importer.KINDS`), so a fact pushed by an event obeys exactly the rules of the same
fact in a source system's file, and sets the same provenance.

The event's own id is its idempotency key: the same id with the same content returns the first
outcome again (`replayed=True`) and changes nothing; the same id with other content is refused.
Everything happens in the caller's transaction, inside a savepoint of our own: a refused event
leaves nothing written, not even its `LifeEvent` row, whatever the caller then does.

Exceptions (each carries a stable `code`, and a catalogue message id with its values, said in
the reader's language by `text(language)` (`familymap.i18n.Refusal`); `message` is the English
text; none of it ever holds a raw IIN). A fact checked by the importer's check is refused with
the importer's message for it (`refusal.record.*`), the event's own rules with `refusal.event.*`:

    EventRefused                  base: the event is refused and nothing was written
     ├── InvalidEvent             the event itself is malformed: BAD_EVENT_KIND, BAD_FIELD,
     │                            INVALID_IIN, FUTURE_DATE
     ├── EventIdReused            EVENT_ID_REUSED: the id was recorded before with other content
     └── RegistryConflict         the event contradicts the registry: UNKNOWN_PERSON,
                                  PERSON_DECEASED, PERSON_IN_TWO_FAMILIES, DUPLICATE_PERSON,
                                  CHILD_OLDER_THAN_PARENT, DEATH_BEFORE_BIRTH
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.batch import reevaluate_family
from familymap.i18n import Refusal
from familymap.iin import is_valid_iin, mask_iin
from familymap.importer import CHILD_BORN_BEFORE, KINDS, Check, FactKind, RecordRefused
from familymap.importer import Code as ImportCode
from familymap.parameters import ParameterSet
from familymap.tables import EntitlementChange, FactRecord, LifeEvent, Person

_PARENT_ROLES = ("head", "spouse")
_MAX_EVENT_ID = 100  # "event:" + id must fit fact_records.record_key (128)
_MAX_SOURCE = 64  # life_events.source
_ADULT_MONTHS = 18 * 12
_TWELVE_DIGITS = re.compile(r"\d{12}")


class EventKind(StrEnum):
    """The life events a source system may push."""

    BIRTH = "birth"
    DEATH = "death"
    JOB_LOST = "job_lost"
    DISABILITY_ESTABLISHED = "disability_established"
    SCHOOL_ENROLMENT = "school_enrolment"
    AWARD = "award"
    KANDAS_STATUS_CHANGED = "kandas_status_changed"


class EventCode(StrEnum):
    """Stable codes of refused events, as clients see them."""

    BAD_EVENT_KIND = "BAD_EVENT_KIND"
    BAD_FIELD = "BAD_FIELD"
    INVALID_IIN = "INVALID_IIN"
    FUTURE_DATE = "FUTURE_DATE"
    EVENT_ID_REUSED = "EVENT_ID_REUSED"
    UNKNOWN_PERSON = "UNKNOWN_PERSON"
    PERSON_DECEASED = "PERSON_DECEASED"
    PERSON_IN_TWO_FAMILIES = "PERSON_IN_TWO_FAMILIES"
    DUPLICATE_PERSON = "DUPLICATE_PERSON"
    CHILD_OLDER_THAN_PARENT = "CHILD_OLDER_THAN_PARENT"
    DEATH_BEFORE_BIRTH = "DEATH_BEFORE_BIRTH"
    UNKNOWN_SCHOOL = "UNKNOWN_SCHOOL"


class EventRefused(Refusal):
    """An event we refuse; nothing of it was written. Its message holds no raw IIN."""

    def __init__(self, message_id: str, /, *, code: EventCode, **values: Any) -> None:
        super().__init__(message_id, **values)
        self.code = code


class InvalidEvent(EventRefused):
    """The event itself is malformed (kind, id, dates, IINs or data fields)."""


class EventIdReused(EventRefused):
    """The event id was recorded before with other content."""

    def __init__(self, event_id: str) -> None:
        super().__init__(
            "refusal.event.id_reused",
            code=EventCode.EVENT_ID_REUSED,
            event_id=repr(_masked(event_id)),
        )


class RegistryConflict(EventRefused):
    """The event contradicts what the registry holds."""


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntitlementDelta:
    """One entitlement the family's re-evaluation created, changed or ended."""

    programme: str
    person_id: int | None
    change: str  # new | changed | ended
    amount_tiyn: int | None  # None when ended
    previous_amount_tiyn: int | None  # None when new
    period_start: date | None
    period_end: date | None


@dataclass(frozen=True, slots=True)
class LifeEventResult:
    """What recording an event did: the event, and the diff of its family's re-evaluation."""

    event_id: str
    kind: EventKind
    family_id: int
    person_id: int  # the subject of the event (for a birth: the parent)
    occurred_on: date
    replayed: bool
    run_id: int
    new: tuple[EntitlementDelta, ...]
    changed: tuple[EntitlementDelta, ...]
    ended: tuple[EntitlementDelta, ...]

    @property
    def newly_eligible(self) -> tuple[str, ...]:
        """The programmes the family became eligible for, each once, in code order."""
        return tuple(sorted({delta.programme for delta in self.new}))


# --- the service ------------------------------------------------------------------------------


async def record_life_event(
    *,
    session: AsyncSession,
    event_id: str,
    kind: str,
    source: str,
    occurred_on: date,
    subject_iin: str,
    data: Mapping[str, Any],
    today: date,
    parameters: ParameterSet | None = None,
    known_school: Callable[[str], Awaitable[bool]] | None = None,
) -> LifeEventResult:
    """Apply one life event to the registry and re-evaluate its family, or replay it if seen.

    `known_school(school_id)` tells whether a school is registered (the family map keeps no
    list of schools; the API passes the merchants' lookup). Without it no school is checked.
    """
    event = _validate(
        event_id=event_id,
        kind=kind,
        source=source,
        occurred_on=occurred_on,
        subject_iin=subject_iin,
        data=data,
        today=today,
    )
    held = await _held_event(session, event.event_id)
    if held is not None:
        return await _replay(session, held, event)
    if (
        event.kind is EventKind.SCHOOL_ENROLMENT
        and known_school is not None
        and not await known_school(event.data["school_id"])
    ):
        raise InvalidEvent("refusal.event.unknown_school", code=EventCode.UNKNOWN_SCHOOL)
    async with session.begin_nested():
        subject = await _living_subject(session, event)
        change = await _plan(session, event, subject, today=today)
        claimed = await _claim(session, event, subject)
        if not isinstance(claimed, LifeEvent):
            return await _replay(session, claimed.held, event)  # a concurrent delivery won
        person_id = await change.apply(session, event)
        session.add(
            FactRecord(
                record_key=f"event:{event.event_id}",
                family_id=subject.family_id,
                person_id=person_id,
                kind=change.fact_kind,
                source=event.source,
                as_of=event.occurred_on,
                payload=change.fact_payload,
            )
        )
        # The re-evaluation reads the registry through the connection: flush the ORM first.
        await session.flush()
        summary, _evaluation = await reevaluate_family(
            await session.connection(), family_id=subject.family_id, on=today, parameters=parameters
        )
        claimed.run_id = summary.run_id
        await session.flush()
        return await _result(session, claimed, replayed=False)


# --- validation without the database ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    event_id: str
    kind: EventKind
    source: str
    occurred_on: date
    subject_iin: str
    data: dict[str, Any]  # JSON-ready: dates as ISO strings, optional fields filled in
    payload: dict[str, Any]  # what is stored and hashed
    payload_hash: str


@dataclass(frozen=True, slots=True)
class _Field:
    """An event data field, checked by the importer's check for the same fact."""

    check: Check
    required: bool = True  # the key must be present
    nullable: bool = False  # null is a value (otherwise refused, or the default if optional)
    default: Any = None


_PERSONS = KINDS["persons"]
_EMPLOYMENT = KINDS["employment"]
_DISABILITY = KINDS["disability"]
_EDUCATION = KINDS["education"]
_AWARDS = KINDS["awards"]
_KANDAS = KINDS["kandas"]

# The child of a birth event: the civil registry's person fields a newborn has.
_CHILD_FIELDS: dict[str, _Field] = {
    "iin": _Field(_PERSONS.fields["iin"]),
    "last_name": _Field(_PERSONS.fields["last_name"]),
    "first_name": _Field(_PERSONS.fields["first_name"]),
    "patronymic": _Field(_PERSONS.fields["patronymic"], required=False, nullable=True),
    "sex": _Field(_PERSONS.fields["sex"]),
    "birth_date": _Field(_PERSONS.fields["birth_date"]),
}

_DATA_FIELDS: dict[EventKind, dict[str, _Field]] = {
    EventKind.BIRTH: {"child": _Field(lambda name, value, today: value)},  # checked apart
    EventKind.DEATH: {},
    EventKind.JOB_LOST: {
        "registered_unemployed": _Field(
            _EMPLOYMENT.fields["registered_unemployed"], required=False, default=False
        ),
    },
    EventKind.DISABILITY_ESTABLISHED: {
        "disability_group": _Field(_DISABILITY.fields["group"]),
        # Null: decided by the subject's age when the disability was established.
        "disability_child": _Field(_DISABILITY.fields["child"], required=False, nullable=True),
        "capacity_loss_pct": _Field(
            _DISABILITY.fields["capacity_loss_pct"], required=False, default=0
        ),
    },
    EventKind.SCHOOL_ENROLMENT: {
        "school_id": _Field(_EDUCATION.fields["school_id"]),
        "school_grade": _Field(_EDUCATION.fields["school_grade"]),
    },
    EventKind.AWARD: {"award": _Field(_AWARDS.fields["award"])},
    # Null revokes the status; a date in the future is the normal case.
    EventKind.KANDAS_STATUS_CHANGED: {
        "kandas_until": _Field(_KANDAS.fields["kandas_until"], nullable=True)
    },
}


def _validate(
    *,
    event_id: Any,
    kind: Any,
    source: Any,
    occurred_on: Any,
    subject_iin: Any,
    data: Any,
    today: date,
) -> _Event:
    """Check everything that needs no database; return the event with its canonical payload."""
    event_id = _identifier("event_id", event_id, _MAX_EVENT_ID)
    source = _identifier("source", source, _MAX_SOURCE)
    try:
        event_kind = EventKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in EventKind)
        raise InvalidEvent(
            "refusal.event.bad_kind", code=EventCode.BAD_EVENT_KIND, kinds=known
        ) from None
    if not isinstance(subject_iin, str) or not is_valid_iin(subject_iin):
        raise InvalidEvent(
            "refusal.record.invalid_iin",
            code=EventCode.INVALID_IIN,
            name="subject_iin",
            iin=mask_iin(str(subject_iin)),
        )
    if type(occurred_on) is not date:
        raise InvalidEvent("refusal.event.not_a_date", code=EventCode.BAD_FIELD, name="occurred_on")
    if occurred_on > today:
        raise InvalidEvent(
            "refusal.record.after_today",
            code=EventCode.FUTURE_DATE,
            name="occurred_on",
            today=today,
        )
    clean = _checked_fields(_DATA_FIELDS[event_kind], data, today, prefix="")
    if event_kind is EventKind.BIRTH:
        clean["child"] = _checked_fields(_CHILD_FIELDS, clean["child"], today, prefix="child.")
        if clean["child"]["birth_date"] != occurred_on.isoformat():
            raise InvalidEvent("refusal.event.birth_date_not_occurred_on", code=EventCode.BAD_FIELD)
    payload = {
        "kind": event_kind.value,
        "occurred_on": occurred_on.isoformat(),
        "subject_iin": subject_iin,
        "data": clean,
    }
    # The source is part of what is hashed: another system reusing the id is not a replay.
    canonical = json.dumps(
        {**payload, "source": source}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return _Event(
        event_id=event_id,
        kind=event_kind,
        source=source,
        occurred_on=occurred_on,
        subject_iin=subject_iin,
        data=clean,
        payload=payload,
        payload_hash=hashlib.sha256(canonical.encode()).hexdigest(),
    )


def _identifier(name: str, value: Any, max_length: int) -> str:
    # PostgreSQL cannot store NUL in text; refuse it here rather than fail the transaction.
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > max_length
        or "\x00" in value
    ):
        raise InvalidEvent(
            "refusal.record.length", code=EventCode.BAD_FIELD, name=name, max_length=max_length
        )
    return value


def _checked_fields(
    fields: Mapping[str, _Field], data: Any, today: date, *, prefix: str
) -> dict[str, Any]:
    """Check a data object against its fields; fill in optional ones; dates become ISO text."""
    what = prefix.rstrip(".") or "data"
    if not isinstance(data, Mapping):
        raise InvalidEvent("refusal.event.not_an_object", code=EventCode.BAD_FIELD, name=what)
    # A null for a field the kind does not use says nothing: clients often send every field.
    unknown = sorted(str(name) for name in set(data) - set(fields) if data[name] is not None)
    if unknown:
        shown = ", ".join(repr(prefix + _masked(name[:40])) for name in unknown[:5])
        raise InvalidEvent("refusal.event.unused_fields", code=EventCode.BAD_FIELD, fields=shown)
    missing = [prefix + name for name, spec in fields.items() if spec.required and name not in data]
    if missing:
        raise InvalidEvent(
            "refusal.record.missing_fields", code=EventCode.BAD_FIELD, fields=", ".join(missing)
        )
    clean: dict[str, Any] = {}
    for name, spec in fields.items():
        value = _json_ready(data.get(name))
        if value is None and not spec.nullable:
            if spec.required:
                raise InvalidEvent(
                    "refusal.event.null", code=EventCode.BAD_FIELD, name=prefix + name
                )
            clean[name] = spec.default
            continue
        if value is not None:
            _as_refusal(spec.check, prefix + name, value, today)
        clean[name] = value
    return clean


def _as_refusal(check: Check, name: str, value: Any, today: date) -> Any:
    """Run an importer check, refusing with the event's codes instead of the importer's."""
    try:
        return check(name, value, today)
    except RecordRefused as refused:
        raise _from_importer(refused) from None


def _from_importer(refused: RecordRefused) -> InvalidEvent:
    codes = {
        ImportCode.INVALID_IIN: EventCode.INVALID_IIN,
        ImportCode.FUTURE_DATE: EventCode.FUTURE_DATE,
    }
    code = codes.get(refused.code, EventCode.BAD_FIELD)
    return InvalidEvent(refused.message_id, code=code, **refused.values)


def _json_ready(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _masked(text: str) -> str:
    """Event ids are the source's own and may embed an IIN: never echo one whole."""
    return _TWELVE_DIGITS.sub(lambda match: mask_iin(match.group()), text)


# --- the registry -----------------------------------------------------------------------------


async def _held_event(session: AsyncSession, event_id: str) -> LifeEvent | None:
    return await session.scalar(select(LifeEvent).where(LifeEvent.event_id == event_id))


async def _living_subject(session: AsyncSession, event: _Event) -> Person:
    subject = await session.scalar(select(Person).where(Person.iin == event.subject_iin))
    if subject is None:
        raise RegistryConflict(
            "refusal.record.unknown_person",
            code=EventCode.UNKNOWN_PERSON,
            iin=mask_iin(event.subject_iin),
        )
    # No event of any kind may follow a death: not even a second death.
    if subject.date_of_death is not None:
        raise RegistryConflict(
            "refusal.event.deceased",
            code=EventCode.PERSON_DECEASED,
            iin=mask_iin(event.subject_iin),
        )
    return subject


@dataclass(slots=True)
class _Change:
    """A checked change, ready to apply: which fact kind, and the fact record as kept."""

    fact_kind: str
    fact_payload: dict[str, Any]
    kind: FactKind | None = None
    clean: Any = None  # the importer's CleanRecord, when a FactKind applies the fact
    subject: Person | None = None

    async def apply(self, session: AsyncSession, event: _Event) -> int:
        """Write the change to the registry rows; return the id of the person it concerns."""
        assert self.subject is not None
        if event.kind is EventKind.BIRTH:
            assert self.kind is not None
            child = Person(iin=self.clean.values["iin"], family_id=self.subject.family_id)
            self.kind.apply(child, self.clean)
            _note_event(child, self.kind.name, event)
            session.add(child)
            await session.flush()
            return child.id
        if event.kind is EventKind.DEATH:
            self.subject.date_of_death = event.occurred_on
            self.subject.provenance = {
                **(self.subject.provenance or {}),
                "death": {
                    "source": event.source,
                    "as_of": event.occurred_on.isoformat(),
                    "event_id": event.event_id,
                },
            }
            return self.subject.id
        # An older fact than the one held is kept as a record but does not replace it,
        # exactly as in a file import.
        assert self.kind is not None
        if self.kind.apply(self.subject, self.clean):
            _note_event(self.subject, self.kind.name, event)
        return self.subject.id


def _note_event(row: Person, fact: str, event: _Event) -> None:
    """Provenance names the system that pushed the event and the event, not the fact's default."""
    provenance = dict(row.provenance or {})
    provenance[fact] = {**provenance[fact], "source": event.source, "event_id": event.event_id}
    row.provenance = provenance


async def _plan(session: AsyncSession, event: _Event, subject: Person, *, today: date) -> _Change:
    """Check the event against the registry and build its change, writing nothing yet."""
    common = {"record_id": event.event_id, "as_of": event.payload["occurred_on"]}
    data = event.data
    if event.kind is EventKind.BIRTH:
        return await _plan_birth(session, event, subject, today=today)
    if event.kind is EventKind.DEATH:
        if event.occurred_on < subject.birth_date:
            raise RegistryConflict(
                "refusal.event.death_before_birth", code=EventCode.DEATH_BEFORE_BIRTH
            )
        payload = {**common, "iin": event.subject_iin, "date_of_death": common["as_of"]}
        return _Change(fact_kind="death", fact_payload=payload, subject=subject)
    if event.kind is EventKind.JOB_LOST:
        kind, record = (
            _EMPLOYMENT,
            {
                "status": "job_lost",
                "job_lost_on": common["as_of"],
                "registered_unemployed": data["registered_unemployed"],
            },
        )
    elif event.kind is EventKind.DISABILITY_ESTABLISHED:
        as_child = data["disability_child"]
        if as_child is None:
            as_child = _months_between(subject.birth_date, event.occurred_on) < _ADULT_MONTHS
        kind, record = (
            _DISABILITY,
            {
                "group": data["disability_group"],
                "child": as_child,
                "established_on": common["as_of"],
                "capacity_loss_pct": data["capacity_loss_pct"],
            },
        )
    elif event.kind is EventKind.SCHOOL_ENROLMENT:
        # A pupil is no longer in kindergarten; full-time study (college, university) is kept.
        kind, record = (
            _EDUCATION,
            {
                "school_id": data["school_id"],
                "school_grade": data["school_grade"],
                "kindergarten": False,
                "full_time_student": bool(subject.full_time_student),
            },
        )
    elif event.kind is EventKind.AWARD:
        kind, record = _AWARDS, {"award": data["award"]}
    else:
        kind, record = _KANDAS, {"kandas_until": data["kandas_until"]}
    payload = {**common, "iin": event.subject_iin, **record}
    return _Change(
        fact_kind=kind.name,
        fact_payload=payload,
        kind=kind,
        clean=_clean(kind, payload, today),
        subject=subject,
    )


async def _plan_birth(
    session: AsyncSession, event: _Event, parent: Person, *, today: date
) -> _Change:
    child = event.data["child"]
    held = await session.scalar(select(Person).where(Person.iin == child["iin"]))
    if held is not None and held.family_id != parent.family_id:
        raise RegistryConflict(
            "refusal.event.child_in_another_family",
            code=EventCode.PERSON_IN_TWO_FAMILIES,
            iin=mask_iin(child["iin"]),
            family_id=held.family_id,
        )
    if held is not None:
        raise RegistryConflict(
            "refusal.event.child_in_this_family",
            code=EventCode.DUPLICATE_PERSON,
            iin=mask_iin(child["iin"]),
        )
    # The child must be younger than the parent who reports the birth and than the family's
    # head and spouse, the same generational check the civil registry import makes.
    members = await session.scalars(
        select(Person).where(Person.family_id == parent.family_id, Person.role.in_(_PARENT_ROLES))
    )
    for other in [parent, *members]:
        if event.occurred_on < other.birth_date:
            refusal = (
                "refusal.event.child_born_before_parent"
                if other is parent
                else CHILD_BORN_BEFORE[other.role]
            )
            raise RegistryConflict(refusal, code=EventCode.CHILD_OLDER_THAN_PARENT)
    payload = {
        "record_id": event.event_id,
        "as_of": event.payload["occurred_on"],
        "family_id": parent.family_id,
        "role": "child",
        **child,
        "phone": None,
        "language": parent.language,
        "iban": None,
        "date_of_death": None,
    }
    return _Change(
        fact_kind=_PERSONS.name,
        fact_payload=payload,
        kind=_PERSONS,
        clean=_clean(_PERSONS, payload, today),
        subject=parent,
    )


def _clean(kind: FactKind, record: dict[str, Any], today: date) -> Any:
    try:
        return kind.validate(record, today=today)
    except RecordRefused as refused:
        raise _from_importer(refused) from None


def _months_between(start: date, end: date) -> int:
    """Whole months from `start` to `end` (an age in months)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - (end.day < start.day)


@dataclass(frozen=True, slots=True)
class _Taken:
    held: LifeEvent


async def _claim(session: AsyncSession, event: _Event, subject: Person) -> LifeEvent | _Taken:
    """Insert the event's row first, so a concurrent delivery of the same id waits for us
    (PostgreSQL's unique index) and then finds ours, instead of applying the event twice."""
    row = LifeEvent(
        event_id=event.event_id,
        payload_hash=event.payload_hash,
        kind=event.kind.value,
        source=event.source,
        family_id=subject.family_id,
        person_id=subject.id,
        occurred_on=event.occurred_on,
        payload=event.payload,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        held = await _held_event(session, event.event_id)
        if held is None:
            raise  # some other constraint: not ours to explain
        return _Taken(held)
    return row


async def _replay(session: AsyncSession, held: LifeEvent, event: _Event) -> LifeEventResult:
    if held.payload_hash != event.payload_hash:
        raise EventIdReused(event.event_id)
    return await _result(session, held, replayed=True)


async def _result(session: AsyncSession, row: LifeEvent, *, replayed: bool) -> LifeEventResult:
    """The outcome as the database holds it: the same whether first recorded or replayed."""
    assert row.run_id is not None
    changes = (
        await session.scalars(
            select(EntitlementChange)
            .where(EntitlementChange.run_id == row.run_id)
            .order_by(EntitlementChange.id)
        )
    ).all()
    deltas = [
        EntitlementDelta(
            programme=c.programme,
            person_id=c.person_id,
            change=c.change,
            amount_tiyn=c.amount_tiyn,
            previous_amount_tiyn=c.previous_amount_tiyn,
            period_start=c.period_start,
            period_end=c.period_end,
        )
        for c in changes
    ]
    assert row.person_id is not None  # _claim records every event with its subject
    return LifeEventResult(
        event_id=row.event_id,
        kind=EventKind(row.kind),
        family_id=row.family_id,
        person_id=row.person_id,
        occurred_on=row.occurred_on,
        replayed=replayed,
        run_id=row.run_id,
        new=tuple(d for d in deltas if d.change == "new"),
        changed=tuple(d for d in deltas if d.change == "changed"),
        ended=tuple(d for d in deltas if d.change == "ended"),
    )
