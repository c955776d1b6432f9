"""Bulk import of the source systems' files into the family map (`socialwallet import DIR`).

Each source system sends one JSON-lines file, `<kind>.jsonl`; `docs/import-format.md` documents
every kind. Files are imported in the order of `KINDS` (families, then persons, then the facts
about them), each in chunks of a few thousand lines: a chunk is checked with a handful of bulk
SELECTs, then written with one executemany statement per table and committed as one
transaction. Should the database still refuse something the checks could not foresee (a
concurrent writer, a value it rejects), the chunk is redone one record per savepoint, so only
the offending record is refused and nothing is ever half-written.

Every record is kept as a `FactRecord` under the key `<kind>:<record_id>`: a record sent again
with the same content is "already present" and changes nothing, so a re-import is idempotent;
the same key with different content is refused. A record older than the fact the row already
holds for its kind is stored, but does not overwrite the newer fact (a warning, not an error).

`KINDS[...].validate` and `.apply` need no database: the life-events mutation uses them to
apply a single fact pushed by an event to an ORM row.

Exceptions:

    ImporterError
     ├── RecordRefused     one record breaks a rule: a stable `code`, and a catalogue message
     │                     (`familymap.i18n.Refusal`: an id and its values) saying why in the
     │                     reader's language; the import skips the record and goes on
     └── NothingToImport   the directory holds no `<kind>.jsonl` file of a known kind
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.i18n import Refusal, translate
from familymap.iban import is_valid_iban
from familymap.iin import is_valid_iin, mask_iin, mask_iins_in_text
from familymap.situation import AWARDS, EMPLOYMENT, REGIONS, ROLES, SEXES
from familymap.store import catch_up_id_sequences
from familymap.tables import LANGUAGES, FactRecord, Family, Person

DEFAULT_CHUNK_SIZE = 5_000
# SQLite allows 32,766 bound parameters per statement; a chunk's `IN (...)` lists stay below.
MAX_CHUNK_SIZE = 10_000

_FAMILIES = cast(Table, Family.__table__)
_PERSONS = cast(Table, Person.__table__)  # declarative classes type __table__ as a FromClause
_FACTS = cast(Table, FactRecord.__table__)

_INT32_MAX = 2**31 - 1
_INT16_MAX = 2**15 - 1
_INT64_MAX = 2**63 - 1
_PARENT_ROLES = ("head", "spouse")
# One message per role: Kazakh and Russian decline the role's noun in the sentence.
CHILD_BORN_BEFORE = {
    "head": "refusal.record.child_born_before_head",
    "spouse": "refusal.record.child_born_before_spouse",
}
PARENT_BORN_AFTER_A_CHILD = {
    "head": "refusal.record.head_born_after_a_child",
    "spouse": "refusal.record.spouse_born_after_a_child",
}


class Code(StrEnum):
    """Stable codes of refused records (and of the one warning), as reports and clients see them."""

    BAD_JSON = "BAD_JSON"
    BAD_FIELD = "BAD_FIELD"
    INVALID_IIN = "INVALID_IIN"
    UNKNOWN_FAMILY = "UNKNOWN_FAMILY"
    UNKNOWN_PERSON = "UNKNOWN_PERSON"
    FUTURE_DATE = "FUTURE_DATE"
    NEGATIVE_AMOUNT = "NEGATIVE_AMOUNT"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    BAD_ENUM = "BAD_ENUM"
    PERSON_IN_TWO_FAMILIES = "PERSON_IN_TWO_FAMILIES"
    CHILD_OLDER_THAN_PARENT = "CHILD_OLDER_THAN_PARENT"
    AFTER_DEATH = "AFTER_DEATH"
    INVALID_IBAN = "INVALID_IBAN"
    RECORD_ID_REUSED = "RECORD_ID_REUSED"
    DB_ERROR = "DB_ERROR"
    # A warning: the record is stored, but the row keeps the newer fact it already holds.
    OLDER_THAN_HELD = "OLDER_THAN_HELD"


class ImporterError(Exception):
    """Base of the importer's exceptions."""


class RecordRefused(ImporterError, Refusal):
    """One record breaks a rule: a stable `code`, and why as a catalogue message id with its
    values (`reason` is the English text); neither ever holds a raw IIN or other personal data."""

    def __init__(self, message_id: str, /, *, code: Code, **values: Any) -> None:
        super().__init__(message_id, **values)
        self.code = code

    @property
    def reason(self) -> str:
        return str(self)


class NothingToImport(ImporterError, Refusal):
    """The directory holds no `<kind>.jsonl` file of a known kind."""


# --- field checks: (field name, value as received, today) -> the typed value ----------------

Check = Callable[[str, Any, date], Any]

# [0-9], never \d: \d also matches Arabic-Indic and full-width digits, which would give one
# date, phone or code a second spelling.
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PHONE = re.compile(r"\+7[0-9]{10}")
_ICD10 = re.compile(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?")


def _nullable(check: Check) -> Check:
    def nullable(name: str, value: Any, today: date) -> Any:
        return None if value is None else check(name, value, today)

    return nullable


def _integer(low: int, high: int, *, below: Code = Code.OUT_OF_RANGE) -> Check:
    def check(name: str, value: Any, today: date) -> int:
        # bool is an int in Python but `true` is no number of months.
        if type(value) is not int:
            raise RecordRefused("refusal.record.whole_number", code=Code.BAD_FIELD, name=name)
        if value < low:
            raise RecordRefused("refusal.record.at_least", code=below, name=name, low=low)
        if value > high:
            raise RecordRefused(
                "refusal.record.at_most", code=Code.OUT_OF_RANGE, name=name, high=high
            )
        return value

    return check


def _boolean(name: str, value: Any, today: date) -> bool:
    if type(value) is not bool:
        raise RecordRefused("refusal.record.true_or_false", code=Code.BAD_FIELD, name=name)
    return value


def _text(max_length: int, *, pattern: re.Pattern[str] | None = None, mismatch: str = "") -> Check:
    """Text of 1 to `max_length` characters; with a `pattern`, `mismatch` is the message id of
    the refusal that says which shape it must have."""

    def check(name: str, value: Any, today: date) -> str:
        if not isinstance(value, str):
            raise RecordRefused("refusal.record.string", code=Code.BAD_FIELD, name=name)
        # PostgreSQL cannot store NUL in text; refuse it here rather than fail the chunk.
        if not value.strip() or len(value) > max_length or "\x00" in value:
            raise RecordRefused(
                "refusal.record.length", code=Code.BAD_FIELD, name=name, max_length=max_length
            )
        if pattern is not None and not pattern.fullmatch(value):
            raise RecordRefused(mismatch, code=Code.BAD_FIELD, name=name)
        return value

    return check


def _day(*, may_be_future: bool = False) -> Check:
    def check(name: str, value: Any, today: date) -> date:
        if not isinstance(value, str) or not _DAY.fullmatch(value):
            raise RecordRefused("refusal.record.date_format", code=Code.BAD_FIELD, name=name)
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise RecordRefused(
                "refusal.record.not_a_calendar_date", code=Code.BAD_FIELD, name=name
            ) from None
        if not may_be_future and day > today:
            raise RecordRefused(
                "refusal.record.after_today", code=Code.FUTURE_DATE, name=name, today=today
            )
        return day

    return check


def _one_of(values: Sequence[Any]) -> Check:
    types = {type(v) for v in values}

    def check(name: str, value: Any, today: date) -> Any:
        if type(value) not in types:
            raise RecordRefused("refusal.record.wrong_type", code=Code.BAD_FIELD, name=name)
        if value not in values:
            if len(values) > 6:
                raise RecordRefused(
                    "refusal.record.not_a_known_code",
                    code=Code.BAD_ENUM,
                    name=name,
                    count=len(values),
                )
            known = ", ".join(str(v) for v in values)
            raise RecordRefused(
                "refusal.record.not_a_known_value", code=Code.BAD_ENUM, name=name, known=known
            )
        return value

    return check


def _iin(name: str, value: Any, today: date) -> str:
    if not is_valid_iin(value):
        raise RecordRefused(
            "refusal.record.invalid_iin", code=Code.INVALID_IIN, name=name, iin=mask_iin(str(value))
        )
    iin: str = value  # is_valid_iin accepts only a string of 12 digits
    return iin


def _iban(name: str, value: Any, today: date) -> str:
    # Source systems send the normal form (no spaces, upper case), as it is stored.
    if not is_valid_iban(value):
        raise RecordRefused("refusal.record.invalid_iban", code=Code.INVALID_IBAN, name=name)
    iban: str = value  # is_valid_iban accepts only a string
    return iban


def _icd10_codes(name: str, value: Any, today: date) -> list[str]:
    if not isinstance(value, list) or len(value) > 100:
        raise RecordRefused("refusal.record.icd10_list", code=Code.BAD_FIELD, name=name)
    for item in value:
        if not isinstance(item, str) or not _ICD10.fullmatch(item):
            raise RecordRefused("refusal.record.icd10_codes", code=Code.BAD_FIELD, name=name)
    return value


_FAMILY_ID = _integer(1, _INT64_MAX)
_COMMON: dict[str, Check] = {"record_id": _text(100), "as_of": _day()}


# --- kinds ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CleanRecord:
    """A record that passed its kind's checks: typed values, and the payload as received."""

    kind: str
    record_id: str
    as_of: date
    values: Mapping[str, Any]
    payload: Mapping[str, Any]

    @property
    def record_key(self) -> str:
        return f"{self.kind}:{self.record_id}"


@dataclass(frozen=True)
class FactKind:
    """One kind of source record: its fields, source system, and the row columns it sets."""

    name: str
    source: str
    level: Literal["family", "person"]  # keyed by family_id or by iin
    fields: Mapping[str, Check]
    columns: Mapping[str, str]  # field -> column of the family or person row
    optional: Mapping[str, Check] = field(default_factory=dict)
    # Dates inside the fact (besides as_of) that must not fall after the person's death.
    event_dates: tuple[str, ...] = ()
    cross_check: Callable[[Mapping[str, Any]], None] | None = None

    @property
    def key_field(self) -> str:
        return "family_id" if self.level == "family" else "iin"

    def validate(self, record: Any, *, today: date) -> CleanRecord:
        """Check one record (a decoded JSON line) and return it typed; raise RecordRefused."""
        if not isinstance(record, dict):
            raise RecordRefused("refusal.record.not_an_object", code=Code.BAD_JSON)
        expected = {**_COMMON, **self.fields}
        missing = [name for name in expected if name not in record]
        if missing:
            raise RecordRefused(
                "refusal.record.missing_fields", code=Code.BAD_FIELD, fields=", ".join(missing)
            )
        unknown = sorted(set(record) - set(expected) - set(self.optional))
        if unknown:
            names = ", ".join(repr(mask_iins_in_text(name[:40])) for name in unknown[:5])
            raise RecordRefused("refusal.record.unknown_fields", code=Code.BAD_FIELD, fields=names)
        values = {name: check(name, record[name], today) for name, check in expected.items()}
        for name, check in self.optional.items():
            if name in record:
                values[name] = check(name, record[name], today)
        if self.cross_check is not None:
            self.cross_check(values)
        return CleanRecord(
            kind=self.name,
            record_id=values.pop("record_id"),
            as_of=values.pop("as_of"),
            values=values,
            payload=record,
        )

    def check_alive(self, record: CleanRecord, *, date_of_death: date | None) -> None:
        """Refuse a fact dated after the person's death (AFTER_DEATH)."""
        if date_of_death is None or self.name == "persons":
            return
        dated = {"as_of": record.as_of} | {name: record.values[name] for name in self.event_dates}
        for name, day in dated.items():
            if day is not None and day > date_of_death:
                raise RecordRefused("refusal.record.after_death", code=Code.AFTER_DEATH, name=name)

    def apply(self, row: Any, record: CleanRecord) -> bool:
        """Set the record's facts and provenance on `row` unless it holds a newer one; tell which."""
        provenance = dict(row.provenance or {})
        held = provenance.get(self.name)
        if held is not None and date.fromisoformat(held["as_of"]) > record.as_of:
            return False
        for name, column in self.columns.items():
            setattr(row, column, record.values[name])
        provenance[self.name] = {"source": self.source, "as_of": record.as_of.isoformat()}
        # A new dict, so that an ORM row sees the change (the JSON column is not mutable-tracked).
        row.provenance = provenance
        return True


def _born_before_death(values: Mapping[str, Any]) -> None:
    died = values["date_of_death"]
    if died is not None and died < values["birth_date"]:
        raise RecordRefused("refusal.record.born_after_death", code=Code.AFTER_DEATH)


def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


KINDS: dict[str, FactKind] = {
    kind.name: kind
    for kind in (
        FactKind(
            name="families",
            source="address_register",
            level="family",
            fields={"family_id": _FAMILY_ID, "region": _one_of(REGIONS)},
            columns=_same("region"),
        ),
        FactKind(
            name="persons",
            source="civil_registry",
            level="person",
            fields={
                "iin": _iin,
                "family_id": _FAMILY_ID,
                "role": _one_of(ROLES),
                "last_name": _text(100),
                "first_name": _text(100),
                "patronymic": _nullable(_text(100)),
                "birth_date": _day(),
                "sex": _one_of(SEXES),
                "phone": _nullable(
                    _text(12, pattern=_PHONE, mismatch="refusal.record.phone_shape")
                ),
                "language": _one_of(LANGUAGES),
                "iban": _nullable(_iban),
                "date_of_death": _nullable(_day()),
            },
            optional={"person_id": _integer(1, _INT64_MAX)},
            columns=_same(
                "role",
                "last_name",
                "first_name",
                "patronymic",
                "birth_date",
                "sex",
                "phone",
                "language",
                "iban",
                "date_of_death",
            ),
            cross_check=_born_before_death,
        ),
        FactKind(
            name="income",
            source="state_revenue",
            level="person",
            fields={
                "iin": _iin,
                "monthly_income_tiyn": _integer(0, _INT64_MAX, below=Code.NEGATIVE_AMOUNT),
                "contribution_months": _integer(0, 24),
            },
            columns=_same("monthly_income_tiyn", "contribution_months"),
        ),
        FactKind(
            name="employment",
            source="labour_exchange",
            level="person",
            fields={
                "iin": _iin,
                "status": _one_of(EMPLOYMENT),
                "job_lost_on": _nullable(_day()),
                "registered_unemployed": _boolean,
            },
            columns={
                "status": "employment",
                "job_lost_on": "job_lost_on",
                "registered_unemployed": "registered_unemployed",
            },
            event_dates=("job_lost_on",),
        ),
        FactKind(
            name="disability",
            source="medical_social_expertise",
            level="person",
            fields={
                "iin": _iin,
                "group": _nullable(_one_of((1, 2, 3))),
                "child": _boolean,
                "established_on": _nullable(_day()),
                "capacity_loss_pct": _integer(0, 100),
            },
            columns={
                "group": "disability_group",
                "child": "disability_child",
                "established_on": "disability_established_on",
                "capacity_loss_pct": "capacity_loss_pct",
            },
            event_dates=("established_on",),
        ),
        FactKind(
            name="housing",
            source="housing_register",
            level="family",
            fields={
                "family_id": _FAMILY_ID,
                "owned": _boolean,
                "area_m2": _integer(0, _INT32_MAX),
                "rooms": _integer(0, _INT16_MAX),
                "in_social_housing_queue": _boolean,
            },
            columns={
                "owned": "housing_owned",
                "area_m2": "area_m2",
                "rooms": "rooms",
                "in_social_housing_queue": "in_social_housing_queue",
            },
        ),
        FactKind(
            name="education",
            source="education_register",
            level="person",
            fields={
                "iin": _iin,
                "school_id": _nullable(_text(64)),
                "school_grade": _nullable(_integer(1, 11)),
                "kindergarten": _boolean,
                "full_time_student": _boolean,
            },
            columns=_same("school_id", "school_grade", "kindergarten", "full_time_student"),
        ),
        FactKind(
            name="health",
            source="health_register",
            level="person",
            fields={
                "iin": _iin,
                "polyclinic_attached": _boolean,
                "insured": _boolean,
                "chronic_conditions": _icd10_codes,
            },
            columns=_same("polyclinic_attached", "insured", "chronic_conditions"),
        ),
        FactKind(
            name="awards",
            source="awards_register",
            level="person",
            fields={"iin": _iin, "award": _nullable(_one_of([a for a in AWARDS if a]))},
            columns=_same("award"),
        ),
        FactKind(
            name="kandas",
            source="migration_service",
            level="person",
            # The status runs until a date that is normally still ahead.
            fields={"iin": _iin, "kandas_until": _nullable(_day(may_be_future=True))},
            columns=_same("kandas_until"),
        ),
    )
}
# The kinds that update an existing person or family row (what a life event may push).
FACT_KINDS: dict[str, FactKind] = {
    name: kind for name, kind in KINDS.items() if name not in ("families", "persons")
}


def parse_line(raw: bytes | str) -> Any:
    """Decode one JSON line; raise RecordRefused(BAD_JSON) if it is not JSON."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        # The decoder's own words (exc.msg) are English: the column says where to look.
        raise RecordRefused(
            "refusal.record.json_at_column", code=Code.BAD_JSON, column=exc.colno
        ) from None
    except UnicodeDecodeError:
        raise RecordRefused("refusal.record.not_utf8", code=Code.BAD_JSON) from None
    except (ValueError, RecursionError):
        raise RecordRefused("refusal.record.not_json", code=Code.BAD_JSON) from None


# --- reports ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """A refused record or a warning, pinned to its file and line; why is a catalogue message
    (an id and its values), said in the reader's language by `text`."""

    file: str
    line: int
    code: str
    message_id: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def reason_in(self, language: str | None) -> str:
        """Why, in `language`."""
        return translate(self.message_id, language, **self.values)

    @property
    def reason(self) -> str:
        """Why, in English (logs, tests)."""
        return self.reason_in("en")

    def text(self, language: str | None) -> str:
        """FILE:LINE CODE reason, the reason in `language`."""
        return f"{self.file}:{self.line} {self.code} {self.reason_in(language)}"

    def as_dict(self, language: str | None) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "code": self.code,
            "message_id": self.message_id,
            "reason": self.reason_in(language),
        }

    def __str__(self) -> str:
        return self.text("en")


def _without_sets(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for key, value in items if not isinstance(value, set)}


@dataclass
class FileReport:
    """What happened to one file's lines."""

    file: str
    kind: str
    read: int = 0
    imported: int = 0
    already_present: int = 0
    refused: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    # Families whose facts changed: the eligibility core re-evaluates them after the import.
    changed_families: set[int] = field(default_factory=set, repr=False)

    def as_dict(self, language: str | None = "en") -> dict[str, Any]:
        """The counts, refusals and warnings as plain JSON-ready data, reasons in `language`."""
        counts = {
            "refused_count": len(self.refused),
            "warning_count": len(self.warnings),
            "changed_families": len(self.changed_families),
        }
        problems = {
            "refused": [problem.as_dict(language) for problem in self.refused],
            "warnings": [problem.as_dict(language) for problem in self.warnings],
        }
        return asdict(self, dict_factory=_without_sets) | problems | counts


@dataclass
class ImportReport:
    """The outcome of a whole import: one FileReport per file, in import order."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def refused(self) -> list[Problem]:
        return [problem for report in self.files for problem in report.refused]

    @property
    def warnings(self) -> list[Problem]:
        return [problem for report in self.files for problem in report.warnings]

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def changed_families(self) -> set[int]:
        return set().union(*(report.changed_families for report in self.files))

    def as_dict(self, language: str | None = "en") -> dict[str, Any]:
        """The whole report as plain JSON-ready data, reasons in `language`."""
        return {"ok": self.ok, "files": [report.as_dict(language) for report in self.files]}


@dataclass(frozen=True, slots=True)
class FileProgress:
    """Progress through one file, reported after every chunk."""

    file: str
    bytes_done: int
    bytes_total: int
    lines_read: int


ProgressCallback = Callable[[FileProgress], None]
SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True, slots=True)
class _Outcome:
    line: int
    status: Literal["imported", "present", "stale", "refused"]
    code: Code | None = None
    message_id: str = ""  # why, for a refused or stale record
    values: Mapping[str, Any] = field(default_factory=dict)
    family_id: int | None = None  # the family whose facts an imported record changed

    @classmethod
    def refused(cls, line: int, refusal: RecordRefused) -> _Outcome:
        return cls(line, "refused", refusal.code, refusal.message_id, refusal.values)


# --- importing --------------------------------------------------------------------------------


async def import_directory(
    *,
    directory: Path,
    session_factory: SessionFactory,
    today: date,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import every `<kind>.jsonl` in `directory`, kinds in dependency order; return the report."""
    found = [(kind, directory / f"{name}.jsonl") for name, kind in KINDS.items()]
    found = [(kind, path) for kind, path in found if path.is_file()]
    if not found:
        raise NothingToImport("refusal.record.nothing_to_import", directory=str(directory))
    report = ImportReport()
    for kind, path in found:
        report.files.append(
            await import_file(
                path=path,
                kind=kind,
                session_factory=session_factory,
                today=today,
                chunk_size=chunk_size,
                on_progress=on_progress,
            )
        )
    return report


async def import_file(
    *,
    path: Path,
    kind: FactKind,
    session_factory: SessionFactory,
    today: date,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_progress: ProgressCallback | None = None,
) -> FileReport:
    """Import one file of `kind`, a chunk per transaction; return what happened to its lines."""
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be within 1..{MAX_CHUNK_SIZE}")
    report = FileReport(file=path.name, kind=kind.name)
    total = _file_size(path)
    if on_progress is not None:
        on_progress(FileProgress(path.name, 0, total, 0))
    for batch, refused, position in _read_chunks(path, kind, chunk_size=chunk_size, today=today):
        outcomes = refused + (await _import_chunk(session_factory, kind, batch) if batch else [])
        report.read += len(outcomes)
        for outcome in sorted(outcomes, key=lambda o: o.line):
            _count(report, outcome)
        if on_progress is not None:
            on_progress(FileProgress(path.name, position, total, report.read))
    return report


def _file_size(path: Path) -> int:
    # A stat is as quick as any await; the lines themselves are read by the sync _read_chunks.
    return path.stat().st_size


def _count(report: FileReport, outcome: _Outcome) -> None:
    if outcome.status == "present":
        report.already_present += 1
        return
    if outcome.status == "refused":
        report.refused.append(_problem(report, outcome))
        return
    report.imported += 1
    if outcome.family_id is not None:
        report.changed_families.add(outcome.family_id)
    if outcome.status == "stale":
        report.warnings.append(_problem(report, outcome))


def _problem(report: FileReport, outcome: _Outcome) -> Problem:
    assert outcome.code is not None
    return Problem(report.file, outcome.line, outcome.code, outcome.message_id, outcome.values)


Batch = list[tuple[int, CleanRecord]]


def _read_chunks(
    path: Path, kind: FactKind, *, chunk_size: int, today: date
) -> Iterator[tuple[Batch, list[_Outcome], int]]:
    """Yield (valid records, refused outcomes, byte position) per `chunk_size` non-blank lines."""
    batch: Batch = []
    refused: list[_Outcome] = []
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                batch.append((number, kind.validate(parse_line(raw), today=today)))
            except RecordRefused as exc:
                refused.append(_Outcome.refused(number, exc))
            if len(batch) + len(refused) >= chunk_size:
                yield batch, refused, stream.tell()
                batch, refused = [], []
        if batch or refused:
            yield batch, refused, stream.tell()


async def _import_chunk(
    session_factory: SessionFactory, kind: FactKind, batch: Batch
) -> list[_Outcome]:
    """Apply a chunk in one transaction; after a database error, one savepoint per record."""
    try:
        async with session_factory() as session, session.begin():
            return await _apply_chunk(session, kind, batch)
    except DBAPIError:
        pass  # The chunk was rolled back as a whole; find the record the database refuses.
    outcomes: list[_Outcome] = []
    async with session_factory() as session, session.begin():
        for number, record in batch:
            try:
                async with session.begin_nested():
                    outcomes += await _apply_chunk(session, kind, [(number, record)])
            except DBAPIError as exc:
                # The driver's message may quote the values (an IIN); name only the error class.
                error = {"error": type(exc).__name__}
                outcomes.append(
                    _Outcome(number, "refused", Code.DB_ERROR, "refusal.record.db_error", error)
                )
    return outcomes


async def _apply_chunk(session: AsyncSession, kind: FactKind, batch: Batch) -> list[_Outcome]:
    """Check a chunk against the database, apply it, and write it: a few statements in all."""
    stored = await _stored_payloads(session, [record.record_key for _, record in batch])
    registry = _Registry()
    await registry.load(session, kind, [record for _, record in batch])
    outcomes: list[_Outcome] = []
    kept: list[tuple[CleanRecord, SimpleNamespace]] = []
    for number, record in batch:
        held = stored.get(record.record_key)
        if held is not None:
            if held == record.payload:
                outcomes.append(_Outcome(number, "present"))
            else:
                shown = {"record_id": repr(mask_iins_in_text(record.record_id))}
                reused = "refusal.record.record_id_reused"
                outcomes.append(_Outcome(number, "refused", Code.RECORD_ID_REUSED, reused, shown))
            continue
        try:
            row = registry.admit(kind, record)
        except RecordRefused as exc:
            outcomes.append(_Outcome.refused(number, exc))
            continue
        if kind.apply(row, record):
            row.changed = True
            registry.note_member(kind, record)
            outcomes.append(_Outcome(number, "imported", family_id=row.family_id))
        else:
            dates = {
                "as_of": record.as_of,
                "kind": kind.name,
                "held": date.fromisoformat(row.provenance[kind.name]["as_of"]),
            }
            older = "refusal.record.older_than_held"
            outcomes.append(_Outcome(number, "stale", Code.OLDER_THAN_HELD, older, dates))
        stored[record.record_key] = record.payload
        kept.append((record, row))
    await registry.write(session, kind)
    if kept:
        await session.execute(
            insert(_FACTS), [_fact_row(kind, record, row) for record, row in kept]
        )
    return outcomes


def _fact_row(kind: FactKind, record: CleanRecord, row: SimpleNamespace) -> dict[str, Any]:
    return {
        "record_key": record.record_key,
        "family_id": row.family_id,
        "person_id": row.id if kind.level == "person" else None,
        "kind": kind.name,
        "source": kind.source,
        "as_of": record.as_of,
        "payload": record.payload,
    }


async def _stored_payloads(session: AsyncSession, keys: list[str]) -> dict[str, Any]:
    result = await session.execute(
        select(_FACTS.c.record_key, _FACTS.c.payload).where(
            _FACTS.c.record_key.in_(sorted(set(keys)))
        )
    )
    return {key: payload for key, payload in result}


class _Registry:
    """The family and person rows a chunk touches: loaded in bulk, changed in memory, written
    back with one statement per table.

    Rows are plain namespaces with the column names of the tables, so that `FactKind.apply`
    works on them exactly as on ORM rows.
    """

    def __init__(self) -> None:
        self.families: dict[int, SimpleNamespace] = {}
        self.persons: dict[str, SimpleNamespace] = {}
        # family id -> {iin: (role, birth_date)}, to compare children's and parents' ages.
        self.members: dict[int, dict[str, tuple[str, date]]] = {}

    async def load(self, session: AsyncSession, kind: FactKind, records: list[CleanRecord]) -> None:
        """Read every row the records name, in one query per table."""
        family_ids = {r.values["family_id"] for r in records if "family_id" in r.values}
        if family_ids:
            rows = await session.execute(
                select(_FAMILIES.c.id, _FAMILIES.c.provenance).where(
                    _FAMILIES.c.id.in_(sorted(family_ids))
                )
            )
            for family_id, provenance in rows:
                self.families[family_id] = _row(
                    id=family_id, family_id=family_id, provenance=provenance
                )
        if kind.level == "person":
            iins = {r.values["iin"] for r in records}
            columns = (_PERSONS.c.id, _PERSONS.c.iin, _PERSONS.c.family_id)
            more = (_PERSONS.c.date_of_death, _PERSONS.c.provenance)
            persons = await session.execute(
                select(*columns, *more).where(_PERSONS.c.iin.in_(sorted(iins)))
            )
            for person_id, iin, family_id, died, provenance in persons:
                self.persons[iin] = _row(
                    id=person_id,
                    iin=iin,
                    family_id=family_id,
                    date_of_death=died,
                    provenance=provenance,
                )
        if kind.name == "persons" and family_ids:
            members = await session.execute(
                select(
                    _PERSONS.c.family_id, _PERSONS.c.iin, _PERSONS.c.role, _PERSONS.c.birth_date
                ).where(_PERSONS.c.family_id.in_(sorted(family_ids)))
            )
            for family_id, iin, role, born in members:
                self.members.setdefault(family_id, {})[iin] = (role, born)

    def admit(self, kind: FactKind, record: CleanRecord) -> SimpleNamespace:
        """Return the row the record applies to (new for a new family or person); or refuse it."""
        values = record.values
        if kind.name == "families":
            family_id = values["family_id"]
            if family_id not in self.families:
                self.families[family_id] = _row(id=family_id, family_id=family_id, new=True)
            return self.families[family_id]
        if kind.name == "persons":
            return self._admit_person(record)
        if kind.level == "family":
            row = self.families.get(values["family_id"])
            if row is None:
                raise RecordRefused(
                    "refusal.record.unknown_family",
                    code=Code.UNKNOWN_FAMILY,
                    family_id=values["family_id"],
                )
            return row
        row = self.persons.get(values["iin"])
        if row is None:
            raise RecordRefused(
                "refusal.record.unknown_person",
                code=Code.UNKNOWN_PERSON,
                iin=mask_iin(values["iin"]),
            )
        kind.check_alive(record, date_of_death=row.date_of_death)
        return row

    def _admit_person(self, record: CleanRecord) -> SimpleNamespace:
        values = record.values
        family_id, iin = values["family_id"], values["iin"]
        if family_id not in self.families:
            raise RecordRefused(
                "refusal.record.unknown_family", code=Code.UNKNOWN_FAMILY, family_id=family_id
            )
        row = self.persons.get(iin)
        if row is not None and row.family_id != family_id:
            raise RecordRefused(
                "refusal.record.in_another_family",
                code=Code.PERSON_IN_TWO_FAMILIES,
                family_id=row.family_id,
            )
        self._check_generations(family_id, iin, values["role"], values["birth_date"])
        if row is None:
            row = _row(id=values.get("person_id"), iin=iin, family_id=family_id, new=True)
            self.persons[iin] = row
        return row

    def _check_generations(self, family_id: int, iin: str, role: str, born: date) -> None:
        for other, (other_role, other_born) in self.members.get(family_id, {}).items():
            if other == iin:
                continue
            if role == "child" and other_role in _PARENT_ROLES and born < other_born:
                raise RecordRefused(
                    CHILD_BORN_BEFORE[other_role], code=Code.CHILD_OLDER_THAN_PARENT
                )
            if role in _PARENT_ROLES and other_role == "child" and other_born < born:
                raise RecordRefused(
                    PARENT_BORN_AFTER_A_CHILD[role], code=Code.CHILD_OLDER_THAN_PARENT
                )

    def note_member(self, kind: FactKind, record: CleanRecord) -> None:
        """Remember an applied person's role and birth date for the next records' checks."""
        if kind.name == "persons":
            values = record.values
            family = self.members.setdefault(values["family_id"], {})
            family[values["iin"]] = (values["role"], values["birth_date"])

    async def write(self, session: AsyncSession, kind: FactKind) -> None:
        """Insert the new rows and update the changed ones, one executemany per table and action."""
        columns = [*kind.columns.values(), "provenance"]
        if kind.level == "family":
            await _insert_families(session, [r for r in self.families.values() if r.new])
            await _update(session, _FAMILIES, self.families.values(), columns)
        else:
            await _insert_persons(session, [r for r in self.persons.values() if r.new])
            await _update(session, _PERSONS, self.persons.values(), columns)


def _row(**columns: Any) -> SimpleNamespace:
    row = SimpleNamespace(**{"new": False, "changed": False, **columns})
    row.provenance = getattr(row, "provenance", None) or {}
    return row


async def _update(session: AsyncSession, table: Any, rows: Any, columns: list[str]) -> None:
    params = [
        {"_id": row.id, **{c: getattr(row, c) for c in columns}}
        for row in rows
        if row.changed and not row.new
    ]
    if params:
        # Without .values(), the SET clause is taken from the parameter keys that name columns.
        await session.execute(update(table).where(table.c.id == bindparam("_id")), params)


async def _insert_families(session: AsyncSession, rows: list[SimpleNamespace]) -> None:
    if not rows:
        return
    params = [{"id": r.id, "region": r.region, "provenance": r.provenance} for r in rows]
    await session.execute(insert(_FAMILIES), params)
    await _catch_up_sequence(session, "families")


_PERSON_COLUMNS = (*KINDS["persons"].columns.values(), "iin", "family_id", "provenance")


async def _insert_persons(session: AsyncSession, rows: list[SimpleNamespace]) -> None:
    # executemany needs one set of keys per statement: ids given by the source, and not.
    for with_id in (True, False):
        group = [r for r in rows if (r.id is not None) is with_id]
        if not group:
            continue
        keys = ("id", *_PERSON_COLUMNS) if with_id else _PERSON_COLUMNS
        params = [{k: getattr(r, k) for k in keys} for r in group]
        returned = await session.execute(
            insert(_PERSONS).returning(_PERSONS.c.id, _PERSONS.c.iin), params
        )
        ids = dict((iin, person_id) for person_id, iin in returned)
        for row in group:
            row.id = ids[row.iin]
        if with_id:
            await _catch_up_sequence(session, "persons")


async def _catch_up_sequence(session: AsyncSession, table: str) -> None:
    await catch_up_id_sequences(await session.connection(), table)
