"""The audit trail: records chain, triggers refuse edits, and verify finds any tampering.

Tampering goes around the triggers inside the test's transaction (SQLite and PostgreSQL
both roll DDL back), as someone with the database's owner rights could.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.audit import (
    CHAINS,
    Caller,
    Entry,
    append_after,
    lock_head,
    record_access,
    record_hash,
    records_for_subject,
    subject_hash,
    verify_chain,
)
from familymap.audit_tables import AuditRecord
from tests.conftest import savepoint_sessions
from tests.familymap.audit_builders import audit_trail_restored

KEY = b"test-audit-key"
ALICE = "900101300126"
BOB = "850615400016"


async def append(session: AsyncSession, n: int, *, subject: str = ALICE) -> list[AuditRecord]:
    """`n` records in the session's transaction: all on the chain the session picked."""
    return [
        await record_access(
            session=session,
            key=KEY,
            actor=f"op-{i}",
            role="OPERATOR",
            subject_iin=subject,
            family_id=7,
            action="read",
            what=f"registry person #{i}",
            operation="Person",
            request_id=f"req-{i}",
        )
        for i in range(n)
    ]


async def head_seq(session: AsyncSession, chain: int) -> int:
    return await session.scalar(
        text("SELECT seq FROM audit_chain_head WHERE id = :c"), {"c": chain}
    )


async def without_triggers(session: AsyncSession) -> None:
    """Take the append-only triggers away for this test's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
    else:
        for name in ("audit_records_no_update", "audit_records_no_delete"):
            await session.execute(text(f"DROP TRIGGER {name}"))


async def test_records_chain_and_the_chain_verifies(session):
    records = await append(session, 5)
    chain, start = records[0].chain, records[0].seq - 1
    assert {r.chain for r in records} == {chain}
    assert [r.seq for r in records] == list(range(start + 1, start + 6))
    report = await verify_chain(session=session, key=KEY)
    assert report.ok
    assert report.checked == await session.scalar(text("SELECT count(*) FROM audit_records"))
    assert await head_seq(session, chain) == start + 5


async def test_the_trail_holds_no_raw_iin(session):
    await record_access(
        session=session, key=KEY, actor=BOB, role="CITIZEN", subject_iin=ALICE, family_id=None,
        action="read", what="family", operation="MyFamily", request_id=None,
    )  # fmt: skip
    dump = await session.execute(text("SELECT * FROM audit_records"))
    assert not any(ALICE in str(row) or BOB in str(row) for row in dump)
    [record] = await records_for_subject(session=session, key=KEY, subject_iin=ALICE)
    assert record.subject_hash == subject_hash(iin=ALICE, key=KEY)
    assert record.actor == subject_hash(iin=BOB, key=KEY)


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_records SET what = 'x'", "DELETE FROM audit_records"]
)
async def test_triggers_refuse_updates_and_deletes(session, statement):
    await append(session, 1)
    with pytest.raises((IntegrityError, DBAPIError), match="append-only"):
        async with session.begin_nested():
            await session.execute(text(statement))


async def test_the_head_cannot_be_deleted(session):
    with pytest.raises((IntegrityError, DBAPIError), match="cannot be deleted"):
        async with session.begin_nested():
            await session.execute(text("DELETE FROM audit_chain_head"))


async def test_verify_finds_an_edited_record(session):
    records = await append(session, 5)
    chain, start = records[0].chain, records[0].seq - 1
    await without_triggers(session)
    await session.execute(
        text("UPDATE audit_records SET what = 'nothing to see' WHERE chain = :c AND seq = :s"),
        {"c": chain, "s": start + 3},
    )
    report = await verify_chain(session=session, key=KEY)
    assert (report.broken_chain, report.broken_seq, report.reason) == (
        chain,
        start + 3,
        "content does not match its hash (edited)",
    )


async def test_verify_finds_an_edit_that_recomputed_the_hash_without_the_key(session):
    # An editor without AUDIT_HASH_KEY recomputes the hash with some other key
    records = await append(session, 3)
    chain, start = records[0].chain, records[0].seq - 1
    await without_triggers(session)
    record = await session.scalar(
        select(AuditRecord).where(AuditRecord.chain == chain, AuditRecord.seq == start + 2)
    )
    record.what = "forged"
    forged_hash = record_hash(record, key=b"guessed-key")
    await session.execute(
        text("UPDATE audit_records SET what = 'forged', hash = :h WHERE chain = :c AND seq = :s"),
        {"h": forged_hash, "c": chain, "s": start + 2},
    )
    session.expunge_all()
    report = await verify_chain(session=session, key=KEY)
    assert report.broken_seq == start + 2


async def test_verify_finds_a_removed_record(session):
    records = await append(session, 5)
    chain, start = records[0].chain, records[0].seq - 1
    await without_triggers(session)
    await session.execute(
        text("DELETE FROM audit_records WHERE chain = :c AND seq = :s"),
        {"c": chain, "s": start + 2},
    )
    report = await verify_chain(session=session, key=KEY)
    assert (report.broken_chain, report.broken_seq, report.reason) == (
        chain, start + 2, "record missing (removed)",
    )  # fmt: skip


async def test_verify_finds_a_removed_renumbered_record(session):
    # Removing a record and renumbering the ones after it leaves no gap in seq
    records = await append(session, 5)
    chain, start = records[0].chain, records[0].seq - 1
    await without_triggers(session)
    await session.execute(
        text("DELETE FROM audit_records WHERE chain = :c AND seq = :s"),
        {"c": chain, "s": start + 2},
    )
    for seq in range(start + 3, start + 6):
        await session.execute(
            text("UPDATE audit_records SET seq = :new WHERE chain = :c AND seq = :old"),
            {"new": seq - 1, "c": chain, "old": seq},
        )
    report = await verify_chain(session=session, key=KEY)
    assert report.broken_seq == start + 2


async def test_verify_finds_a_removed_tail(session):
    records = await append(session, 5)
    chain, start = records[0].chain, records[0].seq - 1
    await without_triggers(session)
    await session.execute(
        text("DELETE FROM audit_records WHERE chain = :c AND seq > :s"),
        {"c": chain, "s": start + 3},
    )
    report = await verify_chain(session=session, key=KEY)
    assert (report.broken_seq, report.reason) == (
        start + 4, "records after this one are missing (removed)",
    )  # fmt: skip


async def test_verify_finds_reordered_records(session):
    records = await append(session, 5)
    chain, start = records[0].chain, records[0].seq - 1
    await without_triggers(session)
    # Swap the places of records 2 and 4 (through a free seq, the column is unique)
    a, b = start + 2, start + 4
    for old, new in ((a, 999_999), (b, a), (999_999, b)):
        await session.execute(
            text("UPDATE audit_records SET seq = :new WHERE chain = :c AND seq = :old"),
            {"new": new, "c": chain, "old": old},
        )
    report = await verify_chain(session=session, key=KEY)
    assert report.broken_seq == a


async def test_each_session_keeps_to_one_chain_and_sessions_spread(connection):
    # Given forty sessions (forty requests), each appending two records
    chains_used = []
    for n in range(40):
        async with savepoint_sessions(connection)() as session, session.begin():
            records = await append(session, 2, subject=BOB if n % 2 else ALICE)
            # Then a session's records are links of one chain, one after the other
            assert records[0].chain == records[1].chain
            assert records[1].seq == records[0].seq + 1
            chains_used.append(records[0].chain)
    # And the sessions did not all queue on one chain (all forty on one: 64**-39)
    assert len(set(chains_used)) > 1
    assert set(chains_used) <= set(range(1, CHAINS + 1))
    async with savepoint_sessions(connection)() as check:
        assert (await verify_chain(session=check, key=KEY)).ok


async def test_verify_names_the_broken_chain_among_whole_ones(connection):
    # Given records on several chains
    by_chain: dict[int, list[AuditRecord]] = {}
    while len(by_chain) < 3:
        async with savepoint_sessions(connection)() as session, session.begin():
            records = await append(session, 2)
            by_chain.setdefault(records[0].chain, []).extend(records)
    async with savepoint_sessions(connection)() as session:
        await without_triggers(session)
        # When one record of one chain is edited
        victim = sorted(by_chain)[1]
        seq = by_chain[victim][-1].seq
        await session.execute(
            text("UPDATE audit_records SET what = 'x' WHERE chain = :c AND seq = :s"),
            {"c": victim, "s": seq},
        )
        # Then verify names that chain and that record
        report = await verify_chain(session=session, key=KEY)
        assert (report.broken_chain, report.broken_seq) == (victim, seq)


async def test_verify_refuses_a_record_moved_to_another_chain(session):
    records = await append(session, 3)
    chain = records[0].chain
    other = chain % CHAINS + 1
    await without_triggers(session)
    await session.execute(
        text("UPDATE audit_records SET chain = :o WHERE chain = :c AND seq = :s"),
        {"o": other, "c": chain, "s": records[-1].seq},
    )
    report = await verify_chain(session=session, key=KEY)
    assert not report.ok and report.broken_chain in (chain, other)


@pytest.mark.postgres_only
async def test_appends_on_asyncpg_make_links_verify_accepts(session):
    # Given the hot paths' append on the driver's connection, inside the test's transaction
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    appended = []
    for n in range(3):
        head = await lock_head(connection=driver, chain=5)
        entry = Entry(
            caller=Caller(
                key=KEY, actor=BOB, role="CITIZEN", operation="RedeemMeal", request_id=f"r{n}"
            ),
            subject_iin=ALICE,
            family_id=7,
            action="write",
            what=f"meal {n} served",
        )
        await append_after(connection=driver, chain=5, head=head, entries=[entry])
        appended.append(head[0] + 1)
    # Then they are consecutive links of chain 5, with no raw IIN, and the chains verify
    assert appended == [appended[0] + n for n in range(3)]
    rows = (
        await session.scalars(
            select(AuditRecord).where(AuditRecord.chain == 5).order_by(AuditRecord.seq.desc())
        )
    ).all()
    assert [row.seq for row in rows[:3]] == appended[::-1]
    assert rows[0].what == "meal 2 served" and rows[0].actor == subject_hash(iin=BOB, key=KEY)
    assert rows[0].subject_hash == subject_hash(iin=ALICE, key=KEY)
    assert (await verify_chain(session=session, key=KEY)).ok


@pytest.mark.postgres_only
async def test_concurrent_appends_make_unbroken_chains(engine):
    # Given twenty sessions appending at once, each in its own committed transaction
    start = asyncio.Event()

    async def append_one(n: int) -> tuple[int, int]:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(text("SELECT 1"))  # hold a connection before the start
            await start.wait()
            record = await record_access(
                session=session, key=KEY, actor=f"op-{n}", role="OPERATOR",
                subject_iin=ALICE, family_id=None, action="read", what="race",
                operation="Race", request_id=None,
            )  # fmt: skip
            return record.chain, record.seq

    async with audit_trail_restored(engine) as heads_before:
        tasks = [asyncio.create_task(append_one(n)) for n in range(20)]
        await asyncio.sleep(0.2)
        start.set()
        appended = await asyncio.gather(*tasks)
        # Then every chain is whole: twenty new links, no (chain, seq) taken twice, no fork
        assert len(set(appended)) == 20
        async with AsyncSession(engine) as check:
            report = await verify_chain(session=check, key=KEY)
            assert report.ok, report
            for chain, (seq, _) in heads_before.items():
                new = sum(c == chain for c, _ in appended)
                assert await head_seq(check, chain) == seq + new
