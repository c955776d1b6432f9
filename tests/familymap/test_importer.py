"""The bulk import of the source systems' files: `familymap.importer` and `socialwallet import`.

Files are written into tmp_path by the tests themselves. Every test runs inside the test's
rolled-back transaction (the `session_factory` fixture), on SQLite or PostgreSQL; the CLI tests
run on a scratch SQLite file, because the command opens its own engine and commits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli.imports import import_command
from app.db import create_engine
from app.migrate import upgrade_to_head
from app.settings import Settings
from familymap.iban import is_valid_iban
from familymap.iin import complete_iin, mask_iin
from familymap.importer import (
    FACT_KINDS,
    KINDS,
    Code,
    NothingToImport,
    RecordRefused,
    import_directory,
)
from familymap.tables import FactRecord, Family, Person

TODAY = date(2025, 6, 1)
AS_OF = "2025-05-01"

DEFAULT_FIELDS: dict[str, dict[str, Any]] = {
    "families": {"region": "astana"},
    "persons": {
        "role": "head",
        "last_name": "Сейтқали",
        "first_name": "Айгерім",
        "patronymic": None,
        "birth_date": "1985-03-10",
        "sex": "F",
        "phone": None,
        "language": "kk",
        "iban": None,
        "date_of_death": None,
    },
    "income": {"monthly_income_tiyn": 30_000_000, "contribution_months": 24},
    "employment": {"status": "employed", "job_lost_on": None, "registered_unemployed": False},
    "disability": {"group": None, "child": False, "established_on": None, "capacity_loss_pct": 0},
    "housing": {"owned": True, "area_m2": 60, "rooms": 2, "in_social_housing_queue": False},
    "education": {
        "school_id": None,
        "school_grade": None,
        "kindergarten": False,
        "full_time_student": False,
    },
    "health": {"polyclinic_attached": True, "insured": True, "chronic_conditions": []},
    "awards": {"award": None},
    "kandas": {"kandas_until": None},
}


def iin(n: int) -> str:
    """The n-th test IIN: valid, distinct for distinct n."""
    for serial in itertools.count(n * 13):
        candidate = complete_iin(f"{850310400000 // 10 + serial:011d}")
        if candidate is not None:
            return candidate
    raise AssertionError("unreachable")


def iban(bban: str = "125KZT1001300335") -> str:
    """A Kazakh IBAN with correct mod-97 check digits."""
    remainder = int("".join(str(int(c, 36)) for c in bban + "KZ00")) % 97
    return f"KZ{98 - remainder:02d}{bban}"


def _wide(text: str) -> str:
    """`text` with its ASCII digits in full width (U+FF10..): digits to int(), not to us."""
    return "".join(chr(0xFF10 + int(c)) if c.isascii() and c.isdigit() else c for c in text)


_record_ids = itertools.count(1)


def rec(kind: str, *, as_of: str = AS_OF, record_id: str | None = None, **fields: Any) -> dict:
    """A valid record of `kind` (fields override the defaults)."""
    record_id = record_id or f"{kind[:3]}-{next(_record_ids)}"
    return {"record_id": record_id, "as_of": as_of, **DEFAULT_FIELDS[kind], **fields}


def person(n: int, family_id: int, role: str, born: str, **fields: Any) -> dict:
    return rec("persons", iin=iin(n), family_id=family_id, role=role, birth_date=born, **fields)


def write(directory: Path, kind: str, lines: list[dict | str]) -> Path:
    """Write one `<kind>.jsonl`; a str is written as the raw line."""
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path = directory / f"{kind}.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def base_registry(directory: Path) -> dict[str, list[dict | str]]:
    """Two families: 1 (head, spouse, child) and 2 (a head who died in 2024)."""
    files: dict[str, list[dict | str]] = {
        "families": [
            rec("families", family_id=1, region="astana"),
            rec("families", family_id=2, region="shymkent"),
        ],
        "persons": [
            person(1, 1, "head", "1985-03-10", iban=iban(), phone="+77011234567"),
            person(2, 1, "spouse", "1983-07-01", sex="M", first_name="Нұрлан"),
            person(3, 1, "child", "2015-09-01", first_name="Әли", sex="M"),
            person(4, 2, "head", "1950-01-01", date_of_death="2024-12-31"),
        ],
    }
    for kind, lines in files.items():
        write(directory, kind, lines)
    return files


@pytest.fixture
def run(session_factory):
    async def run_import(directory: Path, **options: Any):
        return await import_directory(
            directory=directory, session_factory=session_factory, today=TODAY, **options
        )

    return run_import


async def count(session, table) -> int:
    return await session.scalar(select(func.count()).select_from(table))


async def person_by(session, n: int) -> Person:
    return (await session.scalars(select(Person).where(Person.iin == iin(n)))).one()


def problems(report) -> list[tuple[str, int, str]]:
    return [(p.file, p.line, p.code) for p in report.refused]


# --- a good import ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [2, 5_000])
async def test_a_good_import_fills_the_registry_and_keeps_every_record(
    tmp_path, run, session, chunk_size
):
    # given the two families, and one record of every fact kind
    files = base_registry(tmp_path)
    facts = {
        "income": [
            rec("income", iin=iin(1), monthly_income_tiyn=25_000_000, contribution_months=7)
        ],
        "employment": [
            rec("employment", iin=iin(2), status="job_lost", job_lost_on="2025-04-15"),
        ],
        "disability": [
            rec("disability", iin=iin(3), group=2, child=True, established_on="2020-01-10"),
        ],
        "housing": [rec("housing", family_id=1, owned=False, area_m2=48, rooms=2)],
        "education": [rec("education", iin=iin(3), school_id="SCH-1", school_grade=4)],
        "health": [rec("health", iin=iin(3), chronic_conditions=["E10.9", "J45"])],
        "awards": [rec("awards", iin=iin(1), award="kumis_alqa")],
        "kandas": [rec("kandas", iin=iin(2), kandas_until="2026-01-01")],
    }
    for kind, lines in facts.items():
        write(tmp_path, kind, lines)
    progress = []

    # when
    report = await run(tmp_path, chunk_size=chunk_size, on_progress=progress.append)

    # then every line is imported, in dependency order
    assert report.ok and not report.warnings
    assert [f.kind for f in report.files] == list(KINDS)
    assert [(f.read, f.imported, f.already_present) for f in report.files] == [
        (2, 2, 0),
        (4, 4, 0),
        *[(1, 1, 0)] * 8,
    ]
    assert progress[-1].bytes_done == progress[-1].bytes_total and progress[-1].lines_read == 1

    family = await session.get(Family, 1)
    assert (family.region, family.housing_owned, family.area_m2, family.rooms) == (
        "astana",
        False,
        48,
        2,
    )
    assert family.provenance == {
        "families": {"source": "address_register", "as_of": AS_OF},
        "housing": {"source": "housing_register", "as_of": AS_OF},
    }
    head, spouse, child = [await person_by(session, n) for n in (1, 2, 3)]
    assert (head.family_id, head.role, head.iban, head.phone) == (
        1,
        "head",
        iban(),
        "+77011234567",
    )
    assert (head.monthly_income_tiyn, head.contribution_months, head.award) == (
        25_000_000,
        7,
        "kumis_alqa",
    )
    assert (spouse.employment, spouse.job_lost_on) == ("job_lost", date(2025, 4, 15))
    assert spouse.kandas_until == date(2026, 1, 1)
    assert (child.disability_group, child.disability_child, child.school_grade) == (2, True, 4)
    assert child.chronic_conditions == ["E10.9", "J45"]
    assert set(child.provenance) == {"persons", "disability", "education", "health"}
    assert child.provenance["health"] == {"source": "health_register", "as_of": AS_OF}

    # and every record is kept as it came, under its kind and record id
    assert await count(session, FactRecord) == 14
    kept = (
        await session.scalars(
            select(FactRecord).where(
                FactRecord.record_key == f"disability:{facts['disability'][0]['record_id']}"
            )
        )
    ).one()
    assert kept.payload == facts["disability"][0]
    assert (kept.person_id, kept.family_id, kept.source) == (
        child.id,
        1,
        "medical_social_expertise",
    )
    head_record = files["persons"][0]
    kept_head = await session.scalar(
        select(FactRecord).where(FactRecord.record_key == f"persons:{head_record['record_id']}")
    )
    assert kept_head.person_id == head.id and kept_head.payload == head_record


async def test_reimporting_the_same_files_changes_nothing(tmp_path, run, session):
    # given an imported directory
    base_registry(tmp_path)
    write(tmp_path, "income", [rec("income", iin=iin(1), monthly_income_tiyn=1)])
    await run(tmp_path)
    before = (await person_by(session, 1)).updated_at
    rows = [await count(session, t) for t in (Family, Person, FactRecord)]

    # when it is imported again
    again = await run(tmp_path)

    # then every line is already present and no row changed
    assert again.ok
    assert [(f.read, f.imported, f.already_present) for f in again.files] == [
        (2, 0, 2),
        (4, 0, 4),
        (1, 0, 1),
    ]
    assert [await count(session, t) for t in (Family, Person, FactRecord)] == rows
    session.expire_all()
    assert (await person_by(session, 1)).updated_at == before


async def test_person_ids_given_by_the_source_are_kept(tmp_path, run, session):
    write(tmp_path, "families", [rec("families", family_id=7)])
    write(
        tmp_path,
        "persons",
        [person(1, 7, "head", "1980-01-01", person_id=7001), person(2, 7, "spouse", "1981-01-01")],
    )

    assert (await run(tmp_path)).ok

    given, numbered = await person_by(session, 1), await person_by(session, 2)
    assert given.id == 7001
    assert numbered.id not in (None, 7001)


# --- refused records ----------------------------------------------------------------------------

# (kind, bad line, code): each bad line follows a good line of its kind.
BAD_LINES: list[tuple[str, dict | str, Code]] = [
    ("income", '{"record_id": "x", ', Code.BAD_JSON),
    ("income", "[1, 2]", Code.BAD_JSON),
    (
        "income",
        {k: v for k, v in rec("income", iin=iin(1)).items() if k != "contribution_months"},
        Code.BAD_FIELD,
    ),
    ("income", rec("income", iin=iin(1), bonus=1), Code.BAD_FIELD),
    ("income", rec("income", iin=iin(1), monthly_income_tiyn="100"), Code.BAD_FIELD),
    ("income", rec("income", iin=iin(1), as_of="2025-02-30"), Code.BAD_FIELD),
    ("education", rec("education", iin=iin(3), kindergarten=1), Code.BAD_FIELD),
    ("persons", person(9, 1, "child", "2016-01-01", phone="87011234567"), Code.BAD_FIELD),
    ("health", rec("health", iin=iin(3), chronic_conditions=["diabetes"]), Code.BAD_FIELD),
    ("income", rec("income", iin=iin(1)[:11] + str((int(iin(1)[11]) + 1) % 10)), Code.INVALID_IIN),
    ("income", rec("income", iin=12345), Code.INVALID_IIN),
    ("persons", person(9, 99, "head", "1990-01-01"), Code.UNKNOWN_FAMILY),
    ("housing", rec("housing", family_id=99), Code.UNKNOWN_FAMILY),
    ("income", rec("income", iin=iin(9)), Code.UNKNOWN_PERSON),
    ("income", rec("income", iin=iin(1), as_of="2025-06-02"), Code.FUTURE_DATE),
    ("persons", person(9, 1, "child", "2025-07-01"), Code.FUTURE_DATE),
    ("disability", rec("disability", iin=iin(3), established_on="2030-01-01"), Code.FUTURE_DATE),
    ("income", rec("income", iin=iin(1), monthly_income_tiyn=-1), Code.NEGATIVE_AMOUNT),
    ("income", rec("income", iin=iin(1), contribution_months=25), Code.OUT_OF_RANGE),
    ("disability", rec("disability", iin=iin(3), capacity_loss_pct=101), Code.OUT_OF_RANGE),
    ("education", rec("education", iin=iin(3), school_grade=12), Code.OUT_OF_RANGE),
    ("housing", rec("housing", family_id=1, area_m2=-5), Code.OUT_OF_RANGE),
    ("families", rec("families", family_id=3, region="mars"), Code.BAD_ENUM),
    ("employment", rec("employment", iin=iin(1), status="retired"), Code.BAD_ENUM),
    ("disability", rec("disability", iin=iin(3), group=4), Code.BAD_ENUM),
    ("persons", person(9, 1, "child", "2016-01-01", sex="X"), Code.BAD_ENUM),
    ("awards", rec("awards", iin=iin(1), award="gold"), Code.BAD_ENUM),
    ("persons", person(1, 2, "head", "1985-03-10"), Code.PERSON_IN_TWO_FAMILIES),
    ("persons", person(9, 1, "child", "1984-01-01"), Code.CHILD_OLDER_THAN_PARENT),
    ("persons", person(9, 1, "spouse", "2016-01-01"), Code.CHILD_OLDER_THAN_PARENT),
    ("income", rec("income", iin=iin(4)), Code.AFTER_DEATH),
    (
        "employment",
        rec("employment", iin=iin(4), as_of="2024-12-31", job_lost_on="2025-01-05"),
        Code.AFTER_DEATH,
    ),
    ("persons", person(9, 2, "other", "2000-01-01", date_of_death="1999-01-01"), Code.AFTER_DEATH),
    ("persons", person(9, 1, "child", "2016-01-01", iban=iban()[:-1] + "6"), Code.INVALID_IBAN),
    ("persons", person(9, 1, "child", "2016-01-01", iban="KZ12"), Code.INVALID_IBAN),
    # Digits that are not ASCII digits (issue 13.7): full-width, Arabic-Indic, Cyrillic К.
    ("persons", person(9, 1, "child", "2016-01-01", iban=_wide(iban())), Code.INVALID_IBAN),
    ("persons", person(9, 1, "child", "2016-01-01", iban="К" + iban()[1:]), Code.INVALID_IBAN),
    ("persons", {**person(9, 1, "child", "2016-01-01"), "iin": _wide(iin(9))}, Code.INVALID_IIN),
    ("income", rec("income", iin=_wide(iin(1))), Code.INVALID_IIN),
    (
        "persons",
        person(9, 1, "child", "2016-01-01", phone="+7" + _wide("7011234567")),
        Code.BAD_FIELD,
    ),
    ("persons", person(9, 1, "child", "٢٠١٦-٠١-٠١"), Code.BAD_FIELD),
    ("health", rec("health", iin=iin(1), chronic_conditions=["E１1.9"]), Code.BAD_FIELD),
    (
        "income",
        rec("income", iin=iin(1), record_id=f"inc-{iin(2)}", monthly_income_tiyn=5),
        Code.RECORD_ID_REUSED,
    ),
]


def good_line(kind: str) -> dict:
    if kind == "housing":
        return rec("housing", family_id=1)
    # The record id embeds an IIN, as some sources' ids do: reasons must mask it.
    return rec(kind, iin=iin(2), record_id=f"{kind[:3]}-{iin(2)}")


@pytest.mark.parametrize(
    ("kind", "bad", "code"),
    BAD_LINES,
    ids=[f"{code}-{kind}-{i}" for i, (kind, _, code) in enumerate(BAD_LINES)],
)
async def test_a_bad_record_is_refused_with_its_file_line_and_code(
    tmp_path, run, session, kind, bad, code
):
    # given the registry, and a file whose last line is bad
    files = base_registry(tmp_path)
    lines = files[kind] if kind in files else [good_line(kind)]
    write(tmp_path, kind, [*lines, bad])

    # when
    report = await run(tmp_path)

    # then only that line is refused, with its code and a plain reason without any raw IIN
    assert problems(report) == [(f"{kind}.jsonl", len(lines) + 1, code)]
    (problem,) = report.refused
    assert problem.reason
    raw_iins = [iin(n) for n in range(1, 10)] + [iin(1)[:11] + str((int(iin(1)[11]) + 1) % 10)]
    assert not any(raw in str(problem) for raw in raw_iins)
    file = next(f for f in report.files if f.kind == kind)
    assert (file.read, file.imported, len(file.refused)) == (len(lines) + 1, len(lines), 1)
    # and the refused record left no trace
    assert await count(session, FactRecord) == sum(f.imported for f in report.files)


async def test_an_invalid_iin_is_shown_masked(tmp_path, run):
    bad = iin(1)[:11] + str((int(iin(1)[11]) + 1) % 10)
    write(tmp_path, "income", [rec("income", iin=bad)])

    (problem,) = (await run(tmp_path)).refused

    assert problem.code == Code.INVALID_IIN
    assert mask_iin(bad) in problem.reason and bad not in problem.reason


async def test_a_bad_record_among_good_ones_is_skipped_whole(tmp_path, run, session):
    # given a persons file with a refused line between good ones, and facts about each
    write(tmp_path, "families", [rec("families", family_id=1)])
    write(
        tmp_path,
        "persons",
        [
            person(1, 1, "head", "1985-03-10"),
            person(2, 1, "child", "1980-01-01"),  # older than the head: refused
            person(3, 1, "child", "2015-01-01"),
        ],
    )
    write(tmp_path, "income", [rec("income", iin=iin(n), monthly_income_tiyn=n) for n in (1, 2, 3)])

    # when
    report = await run(tmp_path)

    # then the refused person, and so their fact, are missing entirely; the rest is there
    assert problems(report) == [
        ("persons.jsonl", 2, Code.CHILD_OLDER_THAN_PARENT),
        ("income.jsonl", 2, Code.UNKNOWN_PERSON),
    ]
    kept = await session.scalars(select(Person.iin).order_by(Person.iin))
    assert set(kept) == {iin(1), iin(3)}
    assert [(await person_by(session, n)).monthly_income_tiyn for n in (1, 3)] == [1, 3]
    assert await count(session, FactRecord) == 1 + 2 + 2


async def test_a_database_refusal_costs_only_its_record(tmp_path, run, session):
    # given two persons the checks cannot tell apart from good ones: the source gave both the
    # same person_id, which only the database's primary key refuses
    write(tmp_path, "families", [rec("families", family_id=1)])
    write(
        tmp_path,
        "persons",
        [
            person(1, 1, "head", "1985-03-10", person_id=501),
            person(2, 1, "spouse", "1986-03-10", person_id=501),
            person(3, 1, "child", "2015-01-01"),
        ],
    )

    # when the chunk fails as a whole
    report = await run(tmp_path)

    # then it is redone record by record, and only the second person is refused
    assert problems(report) == [("persons.jsonl", 2, Code.DB_ERROR)]
    assert "IntegrityError" in report.refused[0].reason
    assert set(await session.scalars(select(Person.iin))) == {iin(1), iin(3)}
    assert (await person_by(session, 1)).id == 501
    assert await count(session, FactRecord) == 1 + 2


async def test_an_empty_directory_is_nothing_to_import(tmp_path, run):
    (tmp_path / "notes.txt").write_text("no data here")
    with pytest.raises(NothingToImport):
        await run(tmp_path)


# --- older and newer facts ----------------------------------------------------------------------


async def test_an_older_record_is_stored_but_does_not_overwrite_a_newer_fact(
    tmp_path, run, session
):
    # given a newer and then an older income record in one file
    base_registry(tmp_path)
    newer = rec("income", iin=iin(1), as_of="2025-05-01", monthly_income_tiyn=500)
    older = rec("income", iin=iin(1), as_of="2025-03-01", monthly_income_tiyn=100)
    write(tmp_path, "income", [newer, older])

    # when
    report = await run(tmp_path)

    # then the newer fact stays, the older record is kept, and a warning (not an error) says so
    assert report.ok
    assert [(w.file, w.line, w.code) for w in report.warnings] == [
        ("income.jsonl", 2, Code.OLDER_THAN_HELD)
    ]
    head = await person_by(session, 1)
    assert head.monthly_income_tiyn == 500
    assert head.provenance["income"] == {"source": "state_revenue", "as_of": "2025-05-01"}
    stored = await session.scalars(select(FactRecord.as_of).where(FactRecord.kind == "income"))
    assert sorted(stored) == [date(2025, 3, 1), date(2025, 5, 1)]

    # and in a later import an older record still loses, while a newer one wins
    later = tmp_path / "later"
    later.mkdir()
    write(
        later,
        "income",
        [
            rec("income", iin=iin(1), as_of="2025-04-01", monthly_income_tiyn=200),
            rec("income", iin=iin(2), as_of="2025-05-20", monthly_income_tiyn=300),
        ],
    )
    again = await run(later)
    assert [w.line for w in again.warnings] == [1]
    session.expire_all()
    assert (await person_by(session, 1)).monthly_income_tiyn == 500
    assert (await person_by(session, 2)).monthly_income_tiyn == 300


async def test_a_fact_kind_applies_to_an_orm_row_as_a_life_event_would(tmp_path, run, session):
    # given a person in the registry
    base_registry(tmp_path)
    await run(tmp_path)
    row = await person_by(session, 2)
    job_lost = {**rec("employment", iin=iin(2), status="job_lost", job_lost_on="2025-05-01")}

    # when an event pushes a fact through the same validator and applier
    kind = FACT_KINDS["employment"]
    clean = kind.validate(job_lost, today=TODAY)
    applied = kind.apply(row, clean)

    # then the row holds the fact and its provenance; an older fact would not replace it
    assert applied and (row.employment, row.job_lost_on) == ("job_lost", date(2025, 5, 1))
    assert row.provenance["employment"] == {"source": "labour_exchange", "as_of": AS_OF}
    stale = kind.validate({**job_lost, "as_of": "2025-01-01", "status": "employed"}, today=TODAY)
    assert not kind.apply(row, stale) and row.employment == "job_lost"
    with pytest.raises(RecordRefused) as refused:
        kind.validate({**job_lost, "status": "fired"}, today=TODAY)
    assert refused.value.code == Code.BAD_ENUM


def test_iban_checksum():
    assert is_valid_iban(iban())
    assert is_valid_iban("KZ86125KZT5004100100")  # the usual published example
    assert not is_valid_iban("KZ87125KZT5004100100")
    assert not is_valid_iban("kz86125kzt5004100100")
    assert not is_valid_iban(None)
    # The same account with full-width digits, or a Cyrillic К, is no IBAN.
    assert not is_valid_iban(_wide("KZ86125KZT5004100100"))
    assert not is_valid_iban("КZ86125KZT5004100100")


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def cli_database(tmp_path, monkeypatch) -> None:
    """A migrated scratch SQLite file as DATABASE_URL (the command commits what it imports)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("DATABASE_URL", url)

    async def migrate() -> None:
        engine = create_engine(Settings(database_url=url))
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())


def command_app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)  # keeps "import" a sub-command, as in the real CLI
    app.command("import")(import_command)
    return app


runner = CliRunner()


def test_the_command_exits_0_and_prints_the_summary(tmp_path, cli_database):
    data = tmp_path / "data"
    data.mkdir()
    base_registry(data)

    result = runner.invoke(command_app(), ["import", str(data)])

    assert result.exit_code == 0, result.output
    assert "Import summary" in result.output
    assert "families.jsonl" in result.output and "persons.jsonl" in result.output
    assert "lines/s" in result.output

    again = runner.invoke(command_app(), ["import", str(data)])
    assert again.exit_code == 0, again.output


def test_the_command_exits_1_and_lists_refused_lines(tmp_path, cli_database):
    data = tmp_path / "data"
    data.mkdir()
    base_registry(data)
    bad = iin(1)[:11] + str((int(iin(1)[11]) + 1) % 10)
    write(data, "income", [rec("income", iin=iin(1)), rec("income", iin=bad), "not json"])
    report_path = tmp_path / "report.json"

    result = runner.invoke(command_app(), ["import", str(data), "--report", str(report_path)])

    assert result.exit_code == 1, result.output
    assert "income.jsonl:2 INVALID_IIN" in result.output
    assert "income.jsonl:3 BAD_JSON" in result.output
    assert bad not in result.output
    document = json.loads(report_path.read_text(encoding="utf-8"))
    assert document["ok"] is False
    income = next(f for f in document["files"] if f["file"] == "income.jsonl")
    assert (income["read"], income["imported"], income["refused_count"]) == (3, 1, 2)
    assert [(p["line"], p["code"]) for p in income["refused"]] == [
        (2, "INVALID_IIN"),
        (3, "BAD_JSON"),
    ]


def test_the_command_exits_2_when_there_is_nothing_to_import(tmp_path, cli_database):
    empty = tmp_path / "empty"
    empty.mkdir()

    result = runner.invoke(command_app(), ["import", str(empty)])

    assert result.exit_code == 2
    assert "Nothing to import" in result.output


# The reasons in the reader's language: the same refusals, said from the one catalogue.
REFUSED_IN = {
    "kk": ("income.jsonl:2 INVALID_IIN iin жарамды ЖСН емес: ", "income.jsonl:3 BAD_JSON Жарамсыз JSON (1-баған)"),
    "ru": ("income.jsonl:2 INVALID_IIN iin не является действительным ИИН: ", "income.jsonl:3 BAD_JSON Недопустимый JSON (столбец 1)"),
    "en": ("income.jsonl:2 INVALID_IIN iin is not a valid IIN: ", "income.jsonl:3 BAD_JSON not valid JSON (column 1)"),
}  # fmt: skip


@pytest.mark.parametrize("language", ["kk", "ru", "en"])
def test_the_command_says_the_reasons_in_the_language_asked(tmp_path, cli_database, language):
    # Given a file with a bad IIN and a line that is no JSON
    data = tmp_path / "data"
    data.mkdir()
    base_registry(data)
    bad = iin(1)[:11] + str((int(iin(1)[11]) + 1) % 10)
    write(data, "income", [rec("income", iin=iin(1)), rec("income", iin=bad), "not json"])
    report_path = tmp_path / "report.json"

    # When it is imported with --language
    result = runner.invoke(
        command_app(),
        ["import", str(data), "--language", language, "--report", str(report_path)],
    )

    # Then the terminal and the JSON report give each reason in that language, the IIN masked
    assert result.exit_code == 1, result.output
    iin_reason, json_reason = REFUSED_IN[language]
    assert f"{iin_reason}{mask_iin(bad)}" in result.output
    assert json_reason in result.output
    income = next(
        f
        for f in json.loads(report_path.read_text(encoding="utf-8"))["files"]
        if f["file"] == "income.jsonl"
    )
    assert [(p["message_id"], p["reason"]) for p in income["refused"]] == [
        ("refusal.record.invalid_iin", iin_reason.split(" ", 2)[2] + mask_iin(bad)),
        ("refusal.record.json_at_column", json_reason.split(" ", 2)[2]),
    ]


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"LANG": "kk_KZ.UTF-8"}, "kk"),
        ({"LANG": "ru_RU.UTF-8", "LC_MESSAGES": "C"}, "en"),  # C is no language of ours
        ({"LANG": "C.UTF-8", "LANGUAGE": "ru:en"}, "ru"),
        ({"LANG": "de_DE.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_without_language_the_command_reads_the_terminals_locale(
    tmp_path, cli_database, monkeypatch, environment, expected
):
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    data = tmp_path / "data"
    data.mkdir()
    base_registry(data)
    write(data, "income", ["not json"])

    result = runner.invoke(command_app(), ["import", str(data)])

    assert result.exit_code == 1, result.output
    assert REFUSED_IN[expected][1].replace(":3 ", ":1 ") in result.output


def test_the_command_refuses_an_unknown_language(tmp_path, cli_database):
    result = runner.invoke(command_app(), ["import", str(tmp_path), "--language", "de"])
    assert result.exit_code == 2
    assert "Unknown language" in result.output
