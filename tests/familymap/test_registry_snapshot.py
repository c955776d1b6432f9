"""A batch run that keeps the registry it read on disk: it must never be silently stale.

Every write path (an import, a life event, SQL by hand) after a kept run is seen by the next;
a run that fails after writing its files leaves the last committed files in force; and the
kept files equal what a full read of the database gives. On PostgreSQL the runs re-read only
the changed families (change log filled by triggers); SQLite has no log, and there every run
reads everything, with the same expectations.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from sqlalchemy import func, select, text, update

from familymap import registry_snapshot
from familymap.batch import _COMPARED, _differing_families, run_batch
from familymap.events import record_life_event
from familymap.importer import import_directory
from familymap.registry_load import load_synthetic_registry
from familymap.registry_snapshot import SnapshotFiles, recorded_token
from familymap.store import ENTITLEMENT_KEY, FamilySelection, read_registry_columns
from familymap.tables import Entitlement, Family, Person
from tests.familymap.test_importer import TODAY, base_registry, iban, iin, person, rec, write

ON = TODAY


def _postgres(connection) -> bool:
    return connection.dialect.name == "postgresql"


async def _kept_files_equal_the_database(connection, directory) -> None:
    """The files the last run recorded hold exactly what a full read gives now."""
    token = await recorded_token(connection)
    if not _postgres(connection):
        assert token is None  # SQLite keeps nothing
        return
    database = await connection.scalar(text("SELECT current_database()"))
    files = SnapshotFiles.open(directory / database, recorded=token, range_families=1)
    families = (await connection.execute(select(Family.id))).scalars().all()
    assert set(files.previous) == set(families) and families
    for first, kept in files.previous.items():
        persons, family_columns = await read_registry_columns(
            connection, families=FamilySelection.range(first, first)
        )
        for columns, name in ((persons, kept.persons), (family_columns, kept.families)):
            on_disk = files.read_columns(name)
            if len(columns["family_id"]):
                assert on_disk.keys() == columns.keys()
                assert all(np.array_equal(on_disk[k], columns[k]) for k in columns), first
        rows = (
            await connection.execute(
                select(*(getattr(Entitlement, c) for c in _COMPARED)).where(
                    Entitlement.family_id == first
                )
            )
        ).all()
        written = files.read_entitlements(kept.entitlements).select(_COMPARED)
        current = pl.DataFrame([tuple(r) for r in rows], schema=written.schema, orient="row")
        assert written.sort(ENTITLEMENT_KEY).equals(current.sort(ENTITLEMENT_KEY)), first


async def _nothing_left_for_a_full_run(connection) -> None:
    """A run that reads everything (no files) finds the entitlements already right."""
    full = await run_batch(connection, on=ON, range_families=1)
    assert (full.new, full.changed, full.ended) == (0, 0, 0)


def _counts(summary) -> tuple[int, int, int]:
    return summary.new, summary.changed, summary.ended


@pytest.fixture
def import_into(session_factory, tmp_path):
    async def run(files: dict[str, list]) -> None:
        directory = tmp_path / f"import-{len(list(tmp_path.glob('import-*')))}"
        directory.mkdir()
        for kind, lines in files.items():
            write(directory, kind, lines)
        report = await import_directory(
            directory=directory, session_factory=session_factory, today=TODAY
        )
        assert report.ok

    return run


async def test_every_write_path_after_a_kept_run_is_seen_by_the_next(
    connection, session, import_into, tmp_path
):
    kept = tmp_path / "kept"
    # Given a registry imported and evaluated once, keeping its files
    await import_into(base_registry(tmp_path))
    first = await run_batch(connection, on=ON, range_families=1, snapshot_directory=kept)
    assert first.new > 0
    await _kept_files_equal_the_database(connection, kept)

    # When an import brings a childhood disability to the pupil of family 1
    await import_into(
        {"disability": [rec("disability", iin=iin(3), group=2, child=True,
                            established_on="2020-01-10")]}
    )  # fmt: skip
    after_import = await run_batch(connection, on=ON, range_families=1, snapshot_directory=kept)
    # Then the next kept run decides on it, and read only that family again (PostgreSQL)
    assert after_import.new > 0
    assert after_import.families_read == (1 if _postgres(connection) else 2)
    await _kept_files_equal_the_database(connection, kept)

    # When SQL by hand gives family 2 a living head with a disability
    await connection.execute(
        text(
            "UPDATE persons SET date_of_death = NULL, disability_group = 1,"
            " disability_established_on = :established WHERE family_id = 2"
        ),
        {"established": date(2019, 5, 1)},
    )
    by_hand = await run_batch(connection, on=ON, range_families=1, snapshot_directory=kept)
    assert by_hand.new > 0
    await _kept_files_equal_the_database(connection, kept)

    # When a life event gives the spouse of family 1 a disability (the event re-evaluates the
    # family itself: its entitlements change outside any batch run)
    result = await record_life_event(
        session=session, event_id="kept-1", kind="disability_established", source="gbdfl",
        occurred_on=date(2025, 4, 20), subject_iin=iin(2),
        data={"disability_group": 2, "capacity_loss_pct": 40}, today=ON,
    )  # fmt: skip
    assert result.new
    after_event = await run_batch(connection, on=ON, range_families=1, snapshot_directory=kept)
    # Then the kept run finds the event's entitlements already right, and its files follow
    assert _counts(after_event) == (0, 0, 0)
    await _kept_files_equal_the_database(connection, kept)

    # And a new family imported later is read and kept too
    await import_into(
        {"families": [rec("families", family_id=3, region="almaty_city")],
         "persons": [person(5, 3, "head", "1990-02-02", iban=iban("125KZT1001300336"))]}
    )  # fmt: skip
    await run_batch(connection, on=ON, range_families=1, snapshot_directory=kept)
    await _kept_files_equal_the_database(connection, kept)
    await _nothing_left_for_a_full_run(connection)


class _Crash(Exception):
    pass


async def test_a_run_that_fails_after_writing_its_files_loses_no_change(connection, tmp_path):
    kept = tmp_path / "kept"
    # Given a registry evaluated once, keeping its files
    await load_synthetic_registry(connection, families=40, seed=3, as_of=ON)
    await run_batch(connection, on=ON, range_families=10, snapshot_directory=kept)
    first_person = await connection.scalar(select(func.min(Person.id)))
    # and a change that moves entitlements
    await connection.execute(
        update(Person).where((Person.id - first_person) % 3 == 0).values(disability_group=1)
    )
    # When a run consumes the change log and writes its files, then fails before its commit
    with pytest.raises(_Crash):
        async with connection.begin_nested():
            crashed = await run_batch(connection, on=ON, range_families=10, snapshot_directory=kept)
            assert crashed.new + crashed.changed > 0
            raise _Crash
    # Then the next run still sees the change (the log rows and the old files came back)
    again = await run_batch(connection, on=ON, range_families=10, snapshot_directory=kept)
    assert _counts(again) == _counts(crashed)
    if _postgres(connection):
        assert 0 < again.families_read < again.families  # the kept files were used
    await _nothing_left_for_a_full_run(connection)


@pytest.mark.postgres_only  # SQLite keeps no files
async def test_files_the_database_did_not_record_are_not_used(connection, tmp_path, monkeypatch):
    kept = tmp_path / "kept"
    # Given a registry evaluated once, keeping its files
    await load_synthetic_registry(connection, families=30, seed=4, as_of=ON)
    await run_batch(connection, on=ON, range_families=10, snapshot_directory=kept)
    unchanged = await run_batch(connection, on=ON, range_families=10, snapshot_directory=kept)
    assert unchanged.families_read == 0
    # When one of the files is not what the run recorded (another size)
    files = sorted(p for p in kept.rglob("*.npz"))
    with files[0].open("ab") as file:
        file.write(b"\0")
    # Then the next run reads everything, and drops the files no run recorded
    full = await run_batch(connection, on=ON, range_families=10, snapshot_directory=kept)
    assert full.families_read == 30 and _counts(full) == (0, 0, 0)
    assert not files[0].exists()
    # When the code keeps its numbers another way (fields, their values' order, the rules),
    # then the files written before are not used either
    monkeypatch.setattr(registry_snapshot, "_LAYOUT", "another layout")
    other = await run_batch(connection, on=ON, range_families=10, snapshot_directory=kept)
    assert other.families_read == 30


def test_differing_families_are_those_whose_rows_differ_in_any_way():
    # Given kept rows, and new rows in another order where a few families differ: an amount,
    # a period end gone, a row gone, a row more, another programme, another person
    rows = pl.DataFrame(
        {
            "family_id": [1, 1, 2, 3, 4, 5, 6, 7, 8],
            "person_id": [10, None, 20, 30, None, 50, 60, 70, 80],
            "beneficiary_key": [10, 0, 20, 30, 0, 50, 60, 70, 80],
            "programme": ["ASP", "HOUSING", "ASP", "ASP", "ASP", "ASP", "ASP", "ASP", "ASP"],
            "amount_tiyn": [100, 200, 300, 400, 500, 600, 700, 800, 900],
            "period_start": [date(2025, 1, 1)] * 9,
            "period_end": [date(2025, 12, 31)] * 9,
        }
    )
    new = pl.concat(
        [
            rows.filter(pl.col("family_id").is_in([1, 7])),  # unchanged
            rows.filter(pl.col("family_id") == 2).with_columns(amount_tiyn=pl.lit(301, pl.Int64)),
            rows.filter(pl.col("family_id") == 3).with_columns(period_end=pl.lit(None, pl.Date)),
            # family 4's row gone; family 5 gains a row
            rows.filter(pl.col("family_id") == 5),
            rows.filter(pl.col("family_id") == 5).with_columns(programme=pl.lit("HOUSING")),
            rows.filter(pl.col("family_id") == 6).with_columns(programme=pl.lit("HOUSING")),
            rows.filter(pl.col("family_id") == 8).with_columns(
                person_id=pl.lit(81, pl.Int64), beneficiary_key=pl.lit(81, pl.Int64)
            ),
        ]
    ).reverse()
    # Then exactly the families that differ are found, and none when nothing differs
    assert _differing_families(rows, new).tolist() == [2, 3, 4, 5, 6, 8]
    assert _differing_families(rows, rows.reverse()).tolist() == []
