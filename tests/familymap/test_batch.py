"""Eligibility runs against the database: the columns read back, the diff, the one-family run.

Runs on SQLite and on PostgreSQL (where the registry travels by binary COPY), with the same
expectations.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from datetime import date

import numpy as np
import polars as pl
import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    Table,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from familymap.batch import (
    _same_rows,
    bulk_insert,
    diff_entitlements,
    reevaluate_family,
    run_batch,
    run_families,
)
from familymap.engine.population import Population
from familymap.generator import generate_registry, person_frame
from familymap.iin import is_valid_iin
from familymap.pgcopy import binary_copy_frame
from familymap.registry_load import load_synthetic_registry
from familymap.situation import Family as FamilyFacts
from familymap.situation import Housing
from familymap.situation import Person as PersonFacts
from familymap.store import (
    FAMILY_FIELDS,
    PERSON_FIELDS,
    FamilySelection,
    _read_fields_binary,
    _read_fields_rows,
    read_entitlements,
    read_registry_slice,
)
from familymap.tables import (
    Decision,
    EligibilityRun,
    Entitlement,
    EntitlementChange,
    Family,
    Person,
)

ON = date(2025, 9, 15)


def _person(family_id: int, iin: str, **facts) -> Person:
    base = {
        "role": "head", "last_name": "Тест", "first_name": "Тест", "patronymic": None,
        "birth_date": date(1980, 5, 17), "sex": "M", "language": "kk",
    }  # fmt: skip
    return Person(family_id=family_id, iin=iin, **{**base, **facts})


@pytest.fixture
async def story(session):
    """A family of three: a head with a group-3 disability, a spouse, a pupil in grade 2."""
    family = Family(region="akmola", housing_owned=False, area_m2=54, rooms=2)
    session.add(family)
    await session.flush()
    head = _person(
        family.id, "800517300018", disability_group=3, disability_established_on=date(2024, 2, 1),
        employment="employed", monthly_income_tiyn=25_000_000, contribution_months=24,
        insured=True, polyclinic_attached=True,
    )  # fmt: skip
    spouse = _person(
        family.id, "820301400013", role="spouse", sex="F", birth_date=date(1982, 3, 1),
        chronic_conditions=["E11"], insured=True, polyclinic_attached=True,
    )  # fmt: skip
    pupil = _person(
        family.id, "170420600016", role="child", sex="F", birth_date=date(2017, 4, 20),
        school_grade=2, school_id="akmola-school-007", insured=True, polyclinic_attached=True,
    )  # fmt: skip
    session.add_all([head, spouse, pupil])
    await session.commit()
    return family, head, spouse, pupil


def test_story_iins_are_valid():
    assert all(is_valid_iin(i) for i in ("800517300018", "820301400013", "170420600016"))


async def _entitlements(session, family_id: int) -> dict[tuple[str, int | None], int]:
    rows = await session.execute(
        select(Entitlement.programme, Entitlement.person_id, Entitlement.amount_tiyn).where(
            Entitlement.family_id == family_id
        )
    )
    return {(programme, person): amount for programme, person, amount in rows}


async def test_columns_read_back_equal_the_facts(session, story):
    # Given the story family in the database
    family, head, spouse, pupil = story
    # When it is read back as engine columns
    connection = await session.connection()
    registry = await read_registry_slice(connection, families=FamilySelection.of(family.id))
    # Then they are exactly the columns of the same facts built in memory
    expected = Population.from_families(
        [
            FamilyFacts(
                family_id=str(family.id),
                region="akmola",
                housing=Housing(owned=False, area_m2=54, rooms=2),
                members=(
                    PersonFacts(str(head.id), head.iin, head.birth_date, "M", role="head",
                                disability_group=3, disability_established_on=date(2024, 2, 1),
                                employment="employed", monthly_income=25_000_000,
                                social_contributions_months=24, insured=True, polyclinic_attached=True),
                    PersonFacts(str(spouse.id), spouse.iin, spouse.birth_date, "F", role="spouse",
                                chronic_conditions=("E11",), insured=True, polyclinic_attached=True),
                    PersonFacts(str(pupil.id), pupil.iin, pupil.birth_date, "F", role="child",
                                school_grade=2, school_id="akmola-school-007", insured=True,
                                polyclinic_attached=True),
                ),
            )
        ]
    )  # fmt: skip
    for name, values in expected.person.items():
        assert np.array_equal(getattr(registry.population.person, name), values), name
    for name, values in expected.family.items():
        assert np.array_equal(getattr(registry.population.family, name), values), name
    assert registry.person_ids.tolist() == [head.id, spouse.id, pupil.id]


async def test_first_run_writes_everything_as_new_and_a_rerun_changes_nothing(session, story):
    family, head, spouse, pupil = story
    connection = await session.connection()
    # When the registry is evaluated for the first time
    first = await run_batch(connection, on=ON)
    entitled = await _entitlements(session, family.id)
    # Then the disabled head, the chronically ill spouse and the pupil are entitled
    assert ("DISABILITY_BENEFIT", head.id) in entitled
    assert ("MEDICINES", spouse.id) in entitled
    assert ("SCHOOL_MEALS", pupil.id) in entitled
    # and every entitlement is reported once as new
    new = (
        await session.execute(
            select(func.count())
            .select_from(EntitlementChange)
            .where(EntitlementChange.run_id == first.run_id, EntitlementChange.change == "new")
        )
    ).scalar_one()
    total = (await session.execute(select(func.count()).select_from(Entitlement))).scalar_one()
    assert first.new == first.eligible == new == total
    assert (first.changed, first.ended) == (0, 0)
    # When nothing changed and it runs again, then nothing is new, changed or ended
    ids_before = set((await session.execute(select(Entitlement.id))).scalars())
    second = await run_batch(connection, on=ON)
    assert (second.new, second.changed, second.ended) == (0, 0, 0)
    assert second.eligible == first.eligible
    assert set((await session.execute(select(Entitlement.id))).scalars()) == ids_before


async def test_a_changed_registry_gives_new_changed_and_ended(session, story):
    family, head, spouse, pupil = story
    connection = await session.connection()
    first = await run_batch(connection, on=ON)
    before = await _entitlements(session, family.id)
    # Given the head's disability becomes group 1, the pupil leaves school, and the spouse's
    # kandas status ends in three weeks
    await session.execute(update(Person).where(Person.id == head.id).values(disability_group=1))
    await session.execute(
        update(Person).where(Person.id == pupil.id).values(school_grade=None, school_id=None)
    )
    await session.execute(
        update(Person).where(Person.id == spouse.id).values(kandas_until=date(2025, 10, 6))
    )
    # When the registry is evaluated again
    run = await run_batch(connection, on=ON)
    after = await _entitlements(session, family.id)
    changes = {
        (c.programme, c.person_id): c
        for c in (
            await session.execute(
                select(EntitlementChange).where(EntitlementChange.run_id == run.run_id)
            )
        ).scalars()
    }
    # Then the disability benefit changed (a higher amount), meals ended, the notices (the
    # status valid, and it expiring soon) are new
    disability = changes[("DISABILITY_BENEFIT", head.id)]
    assert disability.change == "changed"
    assert disability.previous_amount_tiyn == before[("DISABILITY_BENEFIT", head.id)]
    assert (
        disability.amount_tiyn
        == after[("DISABILITY_BENEFIT", head.id)]
        > disability.previous_amount_tiyn
    )
    meals = changes[("SCHOOL_MEALS", pupil.id)]
    assert (meals.change, meals.amount_tiyn) == ("ended", None)
    assert ("SCHOOL_MEALS", pupil.id) not in after
    assert changes[("KANDAS_EXPIRY_NOTICE", spouse.id)].change == "new"
    assert changes[("KANDAS_STATUS_NOTICE", spouse.id)].change == "new"
    assert (run.new, run.changed, run.ended) == (2, 1, 1)
    assert run.run_id > first.run_id


async def test_one_family_run_records_every_decision_with_its_conditions(session, story):
    family, head, _spouse, pupil = story
    connection = await session.connection()
    summary, evaluation = await reevaluate_family(connection, family_id=family.id, on=ON)
    decisions = (
        (await session.execute(select(Decision).where(Decision.run_id == summary.run_id)))
        .scalars()
        .all()
    )
    # Every programme is decided for every unit, eligible or not, each with its conditions
    assert len(decisions) == len(evaluation.decisions) > 16
    by_key = {(d.programme, d.person_id): d for d in decisions}
    meals = by_key[("SCHOOL_MEALS", pupil.id)]
    assert meals.eligible and meals.amount_tiyn > 0
    assert {c["id"] for c in meals.conditions} >= {"in_school", "alive"}
    assert all(c["passed"] for c in meals.conditions)
    refused = by_key[("SCHOOL_MEALS", head.id)]
    assert not refused.eligible
    assert any(c["id"] == "in_school" and not c["passed"] for c in refused.conditions)
    # and the entitlements are the eligible decisions
    assert set(await _entitlements(session, family.id)) == {
        (d.programme, d.person_id) for d in decisions if d.eligible
    }
    assert summary.new == sum(d.eligible for d in decisions)


async def test_a_synthetic_registry_loads_and_evaluates(session):
    connection = await session.connection()
    families, persons = await load_synthetic_registry(connection, families=300, seed=11, as_of=ON)
    assert families == 300
    assert persons == (await session.execute(select(func.count()).select_from(Person))).scalar_one()
    iins = (await session.execute(select(Person.iin))).scalars().all()
    assert len(set(iins)) == len(iins) and all(is_valid_iin(i) for i in iins)
    summary = await run_batch(connection, on=ON, range_families=70)  # several ranges
    assert (summary.families, summary.persons) == (300, persons)
    assert (
        summary.eligible
        == (await session.execute(select(func.count()).select_from(Entitlement))).scalar_one()
    )
    assert summary.eligible > 0


def test_the_generator_is_deterministic():
    first = pl.concat(
        [
            person_frame(c)
            for c in generate_registry(families=500, seed=3, as_of=ON, chunk_families=200)
        ]
    )
    again = pl.concat(
        [
            person_frame(c)
            for c in generate_registry(families=500, seed=3, as_of=ON, chunk_families=200)
        ]
    )
    other = pl.concat(
        [
            person_frame(c)
            for c in generate_registry(families=500, seed=4, as_of=ON, chunk_families=200)
        ]
    )
    assert first.equals(again)
    assert not first.equals(other)


def test_diff_classifies_by_family_programme_and_unit():
    schema = {
        "family_id": pl.Int64, "person_id": pl.Int64, "beneficiary_key": pl.Int64, "programme": pl.String,
        "amount_tiyn": pl.Int64, "period_start": pl.Date, "period_end": pl.Date,
    }  # fmt: skip
    start, end = date(2025, 9, 1), date(2026, 8, 31)
    old = pl.DataFrame(
        [
            (1, 10, 10, "A", 100, start, end),  # unchanged
            (1, 10, 10, "B", 100, start, end),  # amount changes
            (1, 11, 11, "A", 100, start, end),  # period changes
            (2, None, 0, "F", 500, start, end),  # ends
        ],
        schema=schema,
        orient="row",
    ).with_columns(pl.Series("id", [1, 2, 3, 4]))
    new = pl.DataFrame(
        [
            (1, 10, 10, "A", 100, start, end),
            (1, 10, 10, "B", 150, start, end),
            (1, 11, 11, "A", 100, start, date(2026, 9, 30)),
            (3, None, 0, "F", 700, start, end),  # same programme, another family: new
        ],
        schema=schema,
        orient="row",
    )
    diff = diff_entitlements(old=old, new=new)
    assert diff.new.select("family_id", "programme").rows() == [(3, "F")]
    assert sorted(diff.changed.select("id", "previous_amount_tiyn", "amount_tiyn").rows()) == [
        (2, 100, 150),
        (3, 100, 100),
    ]
    assert diff.ended["id"].to_list() == [4]


async def test_run_families_evaluates_only_the_families_named(session, story):
    family, head, _spouse, _pupil = story
    connection = await session.connection()
    other = Family(region="astana")
    session.add(other)
    await session.flush()
    session.add(
        _person(
            other.id, "900101300126", disability_group=2, disability_established_on=date(2020, 1, 1)
        )
    )
    await session.commit()
    # When only the story family is evaluated (say an import changed its facts)
    summary = await run_families(connection, family_ids=[family.id], on=ON)
    # Then it has entitlements and the other family, though entitled too, was not touched
    assert summary.families == 1
    assert ("DISABILITY_BENEFIT", head.id) in await _entitlements(session, family.id)
    assert await _entitlements(session, other.id) == {}


@pytest.mark.postgres_only
async def test_pipelined_postgres_run_reads_what_its_transaction_sees(engine, tmp_path):
    kept = tmp_path / "kept"
    # Given a registry committed outside the test's transaction (a real batch runs in a fresh
    # transaction, where reads go through a second connection on an exported snapshot)
    async with engine.begin() as connection:
        await load_synthetic_registry(connection, families=400, seed=21, as_of=ON)
    try:
        # When it is evaluated twice in fresh transactions, over several ranges
        async with engine.begin() as connection:
            first = await run_batch(connection, on=ON, range_families=90, snapshot_directory=kept)
            assert (
                await connection.scalar(select(func.count()).select_from(Entitlement))
                == first.eligible
            )
        async with engine.begin() as connection:
            second = await run_batch(connection, on=ON, range_families=90, snapshot_directory=kept)
        # and once more inside a savepoint, where it must read on its own connection
        async with engine.connect() as connection, connection.begin():
            await connection.begin_nested()
            await connection.execute(Entitlement.__table__.delete())
            sequential = await run_batch(connection, on=ON, range_families=90)
            await connection.rollback()
        # Then every family was read once, the rerun found nothing to change, and the
        # pipelined and sequential runs decided the same
        assert (first.families, first.new, first.eligible) == (
            400,
            first.eligible,
            sequential.eligible,
        )
        assert (second.new, second.changed, second.ended) == (0, 0, 0)
        assert second.families_read == 0  # the first run's files, on the readers' snapshot
        assert sequential.new == first.eligible
    finally:
        async with engine.begin() as connection:
            for table in (EntitlementChange, Entitlement, Decision):
                await connection.execute(table.__table__.delete())
            await connection.execute(EligibilityRun.__table__.delete())
            await connection.execute(Person.__table__.delete())
            await connection.execute(Family.__table__.delete())


# The outputs of the three runs of `_three_runs` as the code before issue 18's fast paths
# wrote them (commit f204698, captured on SQLite and PostgreSQL alike): the rows of
# entitlements and entitlement_changes in id order, ids relative to the registry's first.
CAPTURED_BEFORE_FAST_PATHS = "add1a660a93a956e1f207dfe6dac1da13478e3aed822f1dfdb5fd9a4142d908e"


async def _three_runs(connection, **options) -> tuple[list, str, list]:
    """A first run, a run after some facts changed, and a run where nothing changed."""
    await load_synthetic_registry(connection, families=300, seed=11, as_of=ON)
    first_family = await connection.scalar(select(func.min(Family.id)))
    first_person = await connection.scalar(select(func.min(Person.id)))
    runs = [await run_batch(connection, on=ON, range_families=70, **options)]
    await connection.execute(
        update(Person).where((Person.id - first_person) % 7 == 0).values(disability_group=1)
    )
    await connection.execute(
        update(Person)
        .where((Person.id - first_person) % 5 == 0)
        .values(school_grade=None, school_id=None, monthly_income_tiyn=0)
    )
    runs.append(await run_batch(connection, on=ON, range_families=70, **options))
    runs.append(await run_batch(connection, on=ON, range_families=70, **options))
    ordinal = {run.run_id: index for index, run in enumerate(runs)}

    def person(value):
        return None if value is None else value - first_person

    entitlements = [
        (ordinal[r.run_id], r.family_id - first_family, person(r.person_id),
         r.beneficiary_key and r.beneficiary_key - first_person, r.programme, r.amount_tiyn,
         r.period_start, r.period_end)
        for r in await connection.execute(select(Entitlement).order_by(Entitlement.id))
    ]  # fmt: skip
    changes = [
        (ordinal[r.run_id], r.family_id - first_family, person(r.person_id), r.programme,
         r.change, r.previous_amount_tiyn, r.amount_tiyn, r.period_start, r.period_end)
        for r in await connection.execute(select(EntitlementChange).order_by(EntitlementChange.id))
    ]  # fmt: skip
    digest = hashlib.sha256(repr((entitlements, changes)).encode()).hexdigest()
    return [(r.new, r.changed, r.ended, r.eligible) for r in runs], digest, runs


@pytest.mark.parametrize("rebuild_indexes", [True, False])
async def test_runs_write_what_the_code_before_the_fast_paths_wrote(connection, rebuild_indexes):
    # Given a registry evaluated, changed and evaluated twice more, the first run loading
    # entitlements without their indexes (PostgreSQL) or not
    counts, digest, _ = await _three_runs(connection, rebuild_indexes=rebuild_indexes)
    # Then the rows are those the previous code wrote, and the last run found nothing to do
    assert counts == [(516, 0, 0, 516), (172, 16, 26, 662), (0, 0, 0, 662)]
    assert digest == CAPTURED_BEFORE_FAST_PATHS


async def test_runs_that_keep_the_registry_write_what_the_code_before_wrote(connection, tmp_path):
    # Given the same runs, each keeping the registry it read on disk for the next
    counts, digest, runs = await _three_runs(connection, snapshot_directory=tmp_path)
    # Then they wrote the same rows
    assert counts == [(516, 0, 0, 516), (172, 16, 26, 662), (0, 0, 0, 662)]
    assert digest == CAPTURED_BEFORE_FAST_PATHS
    # reading again only what changed (PostgreSQL; SQLite has no change log: it reads all)
    first_person = await connection.scalar(select(func.min(Person.id)))
    moved = Person.id - first_person
    touched = await connection.scalar(
        select(func.count(func.distinct(Person.family_id))).where(
            (moved % 7 == 0) | (moved % 5 == 0)
        )
    )
    read = [run.families_read for run in runs]
    assert read == ([300, touched, 0] if connection.dialect.name == "postgresql" else [300] * 3)


@contextmanager
def _statements(connection):
    """The SQL statements the connection runs inside the block."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", record)


async def test_an_unchanged_run_writes_nothing_but_its_run_record(connection):
    # Given a registry evaluated once
    await load_synthetic_registry(connection, families=200, seed=5, as_of=ON)
    await run_batch(connection, on=ON, range_families=60)
    # When it is evaluated again with nothing changed
    with _statements(connection) as statements:
        again = await run_batch(connection, on=ON, range_families=60)
    # Then the run read and compared, and wrote only its own record: no staging, no insert,
    # no delete of entitlements or changes (on PostgreSQL it consumes the change log)
    assert (again.new, again.changed, again.ended) == (0, 0, 0) and again.eligible > 0
    writes = [
        s for s in statements
        if re.match(r"\s*(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|COPY)", s, re.IGNORECASE)
    ]  # fmt: skip
    consumed = (
        [["DELETE", "FROM", "registry_changes"]] if connection.dialect.name == "postgresql" else []
    )
    assert [w.split("(")[0].split()[:3] for w in writes] == [
        ["INSERT", "INTO", "eligibility_runs"],
        *consumed,
        ["UPDATE", "eligibility_runs", "SET"],
    ]


async def _index_definitions(connection) -> list[str]:
    rows = await connection.execute(
        text(
            "SELECT indexdef FROM pg_indexes WHERE tablename IN"
            " ('entitlements', 'entitlement_changes') ORDER BY indexname"
        )
    )
    return list(rows.scalars())


@pytest.mark.postgres_only
async def test_a_first_run_builds_the_indexes_it_dropped(connection):
    # Given a registry and no entitlements yet
    await load_synthetic_registry(connection, families=120, seed=9, as_of=ON)
    indexes = await _index_definitions(connection)
    # When the first run loads them
    with _statements(connection) as statements:
        first = await run_batch(connection, on=ON, range_families=50)
    # Then it loaded them without indexes, and the indexes are back exactly as they were
    assert any("DROP CONSTRAINT uq_entitlements" in s for s in statements)
    assert await _index_definitions(connection) == indexes and len(indexes) == 4
    assert first.new == first.eligible > 0
    # and the unique key holds again
    row = (await connection.execute(select(Entitlement.__table__).limit(1))).one()
    with pytest.raises(IntegrityError):
        async with connection.begin_nested():
            await connection.execute(
                insert(Entitlement).values(
                    family_id=row.family_id, person_id=row.person_id, programme=row.programme,
                    beneficiary_key=row.beneficiary_key, amount_tiyn=1, run_id=first.run_id,
                )
            )  # fmt: skip
    # When a later run finds entitlements, then it keeps the indexes
    with _statements(connection) as statements:
        await run_batch(connection, on=ON, range_families=50)
    assert not any("DROP" in s for s in statements)


@pytest.mark.postgres_only
async def test_entitlements_read_back_as_binary_equal_the_rows(connection):
    # Given entitlements of every shape: a person's, a family's, one without a period end,
    # and one of a programme no rule knows any more
    rows = [
        dict(family_id=7, person_id=70, beneficiary_key=70, programme="SCHOOL_MEALS",
             amount_tiyn=1_000, period_start=date(2025, 9, 1), period_end=date(2026, 5, 31)),
        dict(family_id=7, person_id=None, beneficiary_key=0, programme="ASP",
             amount_tiyn=2_000, period_start=date(2025, 9, 1), period_end=None),
    ]  # fmt: skip
    await connection.execute(insert(Entitlement), [{**r, "run_id": 1} for r in rows])
    expected = [(r["family_id"], r["person_id"], r["beneficiary_key"], r["programme"],
                 r["amount_tiyn"], r["period_start"], r["period_end"]) for r in rows]  # fmt: skip
    columns = ["family_id", "person_id", "beneficiary_key", "programme", "amount_tiyn",
               "period_start", "period_end"]  # fmt: skip
    # When they are read back
    frame = await read_entitlements(connection, families=FamilySelection.of(7))
    # Then they are the rows written
    assert sorted(frame.select(columns).rows(), key=str) == sorted(expected, key=str)
    # and a retired programme's rows come back too (as text)
    await connection.execute(
        insert(Entitlement).values(**{**rows[0], "programme": "RETIRED_RULE", "run_id": 1})
    )
    again = await read_entitlements(connection, families=FamilySelection.of(7))
    assert sorted(again["programme"].to_list()) == sorted(["SCHOOL_MEALS", "ASP", "RETIRED_RULE"])


def test_entitlement_rows_have_a_binary_copy_form():
    # Given entitlement and change rows as a run writes them (NULL persons, ends and amounts)
    frame = _rows_of_every_shape()
    # Then both tables' rows travel as binary COPY, not CSV (None would mean CSV)
    assert binary_copy_frame(Entitlement.__table__, frame.drop("change", "previous_amount_tiyn"))
    assert binary_copy_frame(EntitlementChange.__table__, frame.drop("beneficiary_key"))
    # and a column with no binary form here (a timestamp) makes the whole frame go as CSV
    stamped = pl.DataFrame({"id": [1]}).with_columns(pl.lit(ON).cast(pl.Datetime).alias("x"))
    assert binary_copy_frame(_STAMPED, stamped) is None


def _rows_of_every_shape() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "family_id": [7, 7, 8, 9],
            "person_id": [70, None, 80, None],
            "beneficiary_key": [70, 0, 80, 0],
            "programme": ["SCHOOL_MEALS", "ASP", "SCHOOL_MEALS", "ÄLEUMETTIK"],  # non-ASCII too
            "change": ["new", "changed", "ended", "new"],
            "previous_amount_tiyn": [None, 1_500, 3_000, None],
            "amount_tiyn": [1_000, 2_000, None, 0],
            "period_start": [date(2025, 9, 1), None, date(1999, 12, 31), date(2025, 9, 1)],
            "period_end": [date(2026, 5, 31), None, None, date(2025, 9, 30)],
            "run_id": [3, 3, 3, 3],
        },
        schema_overrides={"period_start": pl.Date, "period_end": pl.Date},
    )


_STAMPED = Table("stamped", MetaData(), Column("id", BigInteger), Column("x", DateTime))


@pytest.mark.postgres_only
async def test_binary_copy_writes_the_rows_as_given(connection):
    # Given rows of every shape, in an order that is not the key's
    frame = _rows_of_every_shape().reverse()
    changes = frame.drop("beneficiary_key")
    # When they are written by COPY (binary)
    await bulk_insert(connection, EntitlementChange.__table__, changes)
    # Then the table holds exactly them, in the order given (ids follow it)
    stored = await connection.execute(
        select(*(EntitlementChange.__table__.c[name] for name in changes.columns)).order_by(
            EntitlementChange.id
        )
    )
    assert [tuple(row) for row in stored] == changes.rows()


@pytest.mark.postgres_only
async def test_a_copy_first_in_a_transaction_is_rolled_back_with_it(engine):
    # Given a transaction whose first statement is the COPY (nothing went through SQLAlchemy
    # before it: the adapter had not opened the server's transaction yet)
    changes = _rows_of_every_shape().drop("beneficiary_key")
    marked = changes.with_columns(pl.lit(-4242).alias("run_id"))
    async with engine.connect() as connection:
        transaction = await connection.begin()
        await bulk_insert(connection, EntitlementChange.__table__, marked)
        # When it is rolled back
        await transaction.rollback()
    # Then the rows are gone with it (they were committed at once, outside it, before)
    async with engine.connect() as connection:
        left = await connection.scalar(
            select(func.count()).where(EntitlementChange.run_id == -4242)
        )
        await connection.execute(delete(EntitlementChange).where(EntitlementChange.run_id == -4242))
        await connection.commit()
    assert left == 0


@pytest.mark.postgres_only
async def test_packed_binary_columns_equal_a_plain_select(connection):
    # Given a synthetic registry (every role, enumeration, missing date and count it makes)
    # and a person with every optional fact missing
    await load_synthetic_registry(connection, families=300, seed=5, as_of=ON)
    family_id = await connection.scalar(select(func.min(Family.id)))
    await connection.execute(
        update(Person)
        .where(Person.id == select(func.min(Person.id)).scalar_subquery())
        .values(disability_group=None, school_grade=None, award=None, job_lost_on=None)
    )
    everyone = Person.family_id >= family_id
    for fields, where in ((PERSON_FIELDS, everyone), (FAMILY_FIELDS, Family.id >= family_id)):
        # When the fields travel by binary COPY (small ones packed four to a bigint)
        packed = await _read_fields_binary(connection, fields, where)
        # Then each column is the one a plain SELECT converted in Python gives, row for row
        plain = await _read_fields_rows(connection, fields, where)
        order_packed = np.lexsort([packed[fields[1].name], packed[fields[0].name]])
        order_plain = np.lexsort([plain[fields[1].name], plain[fields[0].name]])
        for field in fields:
            assert packed[field.name].dtype == plain[field.name].dtype, field.name
            assert np.array_equal(
                packed[field.name][order_packed], plain[field.name][order_plain]
            ), field.name


def test_the_unchanged_check_sees_every_difference_and_no_order():
    # Given the current entitlements and a run's rows: the same, in another order
    current = _rows_of_every_shape().drop("change", "previous_amount_tiyn", "run_id")
    run = current.reverse()
    # Then they are the same rows (the run writes nothing)
    assert _same_rows(current.with_columns(pl.Series("id", [1, 2, 3, 4])), run)
    # and any one value changed, a row more or a row less, is a difference
    for changed in (
        run.with_columns(
            pl.when(pl.col("family_id") == 8)
            .then(1)
            .otherwise(pl.col("amount_tiyn"))
            .alias("amount_tiyn")
        ),
        run.with_columns(pl.col("period_end").fill_null(date(2030, 1, 1))),
        run.with_columns(pl.col("person_id").fill_null(1)),
        run.with_columns(pl.col("programme").str.replace("ASP", "ASQ")),
        run.head(3),
        pl.concat([run, run.head(1)]),
    ):
        assert not _same_rows(current, changed)
