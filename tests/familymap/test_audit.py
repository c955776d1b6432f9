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
    record_access,
    record_hash,
    records_for_subject,
    subject_hash,
    verify_chain,
)
from familymap.audit_tables import AuditRecord

KEY = b"test-audit-key"
ALICE = "900101300126"
BOB = "850615400016"


async def append(session: AsyncSession, n: int, *, subject: str = ALICE) -> None:
    for i in range(n):
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


async def head_seq(session: AsyncSession) -> int:
    return await session.scalar(text("SELECT seq FROM audit_chain_head"))


async def without_triggers(session: AsyncSession) -> None:
    """Take the append-only triggers away for this test's transaction."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
    else:
        for name in ("audit_records_no_update", "audit_records_no_delete"):
            await session.execute(text(f"DROP TRIGGER {name}"))


async def test_records_chain_and_the_chain_verifies(session):
    start = await head_seq(session)
    await append(session, 5)
    report = await verify_chain(session=session, key=KEY)
    assert report.ok and report.checked == start + 5
    assert await head_seq(session) == start + 5


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
    start = await head_seq(session)
    await append(session, 5)
    await without_triggers(session)
    await session.execute(
        text("UPDATE audit_records SET what = 'nothing to see' WHERE seq = :s"), {"s": start + 3}
    )
    report = await verify_chain(session=session, key=KEY)
    assert (report.broken_seq, report.reason) == (
        start + 3,
        "content does not match its hash (edited)",
    )


async def test_verify_finds_an_edit_that_recomputed_the_hash_without_the_key(session):
    # An editor without AUDIT_HASH_KEY recomputes the hash with some other key
    start = await head_seq(session)
    await append(session, 3)
    await without_triggers(session)
    record = await session.scalar(select(AuditRecord).where(AuditRecord.seq == start + 2))
    record.what = "forged"
    forged_hash = record_hash(record, key=b"guessed-key")
    await session.execute(
        text("UPDATE audit_records SET what = 'forged', hash = :h WHERE seq = :s"),
        {"h": forged_hash, "s": start + 2},
    )
    session.expunge_all()
    report = await verify_chain(session=session, key=KEY)
    assert report.broken_seq == start + 2


async def test_verify_finds_a_removed_record(session):
    start = await head_seq(session)
    await append(session, 5)
    await without_triggers(session)
    await session.execute(text("DELETE FROM audit_records WHERE seq = :s"), {"s": start + 2})
    report = await verify_chain(session=session, key=KEY)
    assert (report.broken_seq, report.reason) == (start + 2, "record missing (removed)")


async def test_verify_finds_a_removed_renumbered_record(session):
    # Removing a record and renumbering the ones after it leaves no gap in seq
    start = await head_seq(session)
    await append(session, 5)
    await without_triggers(session)
    await session.execute(text("DELETE FROM audit_records WHERE seq = :s"), {"s": start + 2})
    for seq in range(start + 3, start + 6):
        await session.execute(
            text("UPDATE audit_records SET seq = :new WHERE seq = :old"),
            {"new": seq - 1, "old": seq},
        )
    report = await verify_chain(session=session, key=KEY)
    assert report.broken_seq == start + 2


async def test_verify_finds_a_removed_tail(session):
    start = await head_seq(session)
    await append(session, 5)
    await without_triggers(session)
    await session.execute(text("DELETE FROM audit_records WHERE seq > :s"), {"s": start + 3})
    report = await verify_chain(session=session, key=KEY)
    assert (report.broken_seq, report.reason) == (
        start + 4, "records after this one are missing (removed)",
    )  # fmt: skip


async def test_verify_finds_reordered_records(session):
    start = await head_seq(session)
    await append(session, 5)
    await without_triggers(session)
    # Swap the places of records 2 and 4 (through a free seq, the column is unique)
    a, b = start + 2, start + 4
    for old, new in ((a, 999_999), (b, a), (999_999, b)):
        await session.execute(
            text("UPDATE audit_records SET seq = :new WHERE seq = :old"), {"new": new, "old": old}
        )
    report = await verify_chain(session=session, key=KEY)
    assert report.broken_seq == a


@pytest.mark.postgres_only
async def test_concurrent_appends_make_one_unbroken_chain(engine):
    # Given twenty sessions appending at once, each in its own committed transaction
    start = asyncio.Event()

    async def append_one(n: int) -> None:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(text("SELECT 1"))  # hold a connection before the start
            await start.wait()
            await record_access(
                session=session, key=KEY, actor=f"op-{n}", role="OPERATOR",
                subject_iin=ALICE, family_id=None, action="read", what="race",
                operation="Race", request_id=None,
            )  # fmt: skip

    async with AsyncSession(engine) as before:
        first_seq = await head_seq(before) + 1
    try:
        tasks = [asyncio.create_task(append_one(n)) for n in range(20)]
        await asyncio.sleep(0.2)
        start.set()
        await asyncio.gather(*tasks)
        # Then the chain is whole: twenty links, no seq taken twice, no fork
        async with AsyncSession(engine) as check:
            report = await verify_chain(session=check, key=KEY)
            assert report.ok, report
            assert await head_seq(check) == first_seq + 19
    finally:
        async with AsyncSession(engine) as cleanup, cleanup.begin():
            await cleanup.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
            await cleanup.execute(
                text("DELETE FROM audit_records WHERE seq >= :s"), {"s": first_seq}
            )
            await cleanup.execute(text("ALTER TABLE audit_records ENABLE TRIGGER USER"))
            last = await cleanup.scalar(
                text("SELECT hash FROM audit_records ORDER BY seq DESC LIMIT 1")
            )
            await cleanup.execute(
                text("UPDATE audit_chain_head SET seq = :s, hash = :h"),
                {"s": first_seq - 1, "h": last or "0" * 64},
            )
