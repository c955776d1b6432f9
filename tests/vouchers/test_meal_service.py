"""The one service that serves meals (vouchers/meal_service.py): whichever path it picks, a
served meal is audited by it, with the same record; a batch's records, one per family, go in
with it. The portable path runs on SQLite and PostgreSQL; the hot path and group commit only
exist on PostgreSQL, where all three are compared."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.driver_db import session_transactions
from familymap.audit import Caller, subject_hash, verify_chain
from familymap.audit_tables import AuditRecord
from tests.conftest import on_postgres
from tests.vouchers.test_meals import issued
from tests.vouchers.vouchers_builders import NOW, QR_KEY, SCHOOL_DAY, family_with_pupil, school
from vouchers import meal_service
from vouchers.errors import NotASchoolDay
from vouchers.meal_groups import MealCoalescer
from vouchers.meal_service import MealPaths
from vouchers.meals import MealRequest

AUDIT_KEY = b"test-audit-key"


def caller_of(merchant, n: int) -> Caller:
    return Caller(
        key=AUDIT_KEY, actor=str(merchant.id), role="SCHOOL", operation="RedeemMeal",
        request_id=f"req-{n}",
    )  # fmt: skip


def every_path(session_factory, settings) -> dict[str, MealPaths]:
    paths = {"portable": MealPaths(sessions=session_factory)}
    if on_postgres(settings):
        driver = session_transactions(session_factory)
        coalescer = MealCoalescer(transactions=driver, qr_key=lambda: QR_KEY)
        paths["hot"] = MealPaths(sessions=session_factory, driver=driver)
        paths["group"] = MealPaths(sessions=session_factory, driver=driver, coalescer=coalescer)
    return paths


async def newest_record(session) -> AuditRecord:
    return await session.scalar(
        select(AuditRecord)
        .order_by(AuditRecord.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )


async def test_every_path_audits_a_served_meal_alike(session, session_factory, settings):
    canteen = await school(session, code="service-1")
    records = {}
    for n, (name, paths) in enumerate(every_path(session_factory, settings).items()):
        # Given a pupil of the school with a voucher
        _, parent, child = await family_with_pupil(session, school_code=canteen.external_code)
        await issued(session, child, parent)
        await session.commit()
        request = MealRequest(f"svc-{n}", "lunch", SCHOOL_DAY, child_person_id=child.id)
        # When the service serves the pupil's lunch on this path, and the request comes again
        for replay in (False, True):
            redeemed = await meal_service.redeem_meal(
                paths=paths, merchant_id=canteen.id, request=request, qr_key=QR_KEY, now=NOW,
                caller=caller_of(canteen, n),
            )  # fmt: skip
            assert redeemed.replayed is replay
            # Then the service wrote the record, about the child, by the canteen's caller
            record = await newest_record(session)
            meal_id = redeemed.redemption.id
            assert (record.what, record.subject_hash, record.family_id) == (
                f"meal {meal_id} served" + (" (replay)" if replay else ""),
                subject_hash(iin=child.iin, key=AUDIT_KEY),
                child.family_id,
            )
            records[name, replay] = (
                record.actor, record.role, record.action, record.operation, record.request_id,
            )  # fmt: skip
    # And every path wrote the same record for the same request
    assert set(records.values()) == {
        (str(canteen.id), "SCHOOL", "write", "RedeemMeal", f"req-{n}")
        for n in range(len(records) // 2)
    }
    assert len(records) == 2 * len(every_path(session_factory, settings))
    assert (await verify_chain(session=session, key=AUDIT_KEY)).ok


async def test_a_refused_meal_writes_no_record_on_any_path(session, session_factory, settings):
    canteen = await school(session, code="service-2")
    _, parent, child = await family_with_pupil(session, school_code=canteen.external_code)
    await issued(session, child, parent)
    await session.commit()
    before = await newest_record(session)
    for n, paths in enumerate(every_path(session_factory, settings).values()):
        # When a meal for a day not yet come is asked for
        request = MealRequest(f"tomorrow-{n}", "lunch", SCHOOL_DAY.replace(day=19),
                              child_person_id=child.id)  # fmt: skip
        with pytest.raises(NotASchoolDay):
            await meal_service.redeem_meal(
                paths=paths, merchant_id=canteen.id, request=request, qr_key=QR_KEY, now=NOW,
                caller=caller_of(canteen, n),
            )  # fmt: skip
    # Then no path left a record
    after = await newest_record(session)
    assert (after.id if after else None) == (before.id if before else None)


async def test_a_batch_is_audited_once_per_family_with_its_meals(session, session_factory):
    # Given three pupils of one school, two of them siblings
    canteen = await school(session, code="service-3")
    _, parent, first = await family_with_pupil(session, school_code=canteen.external_code)
    await issued(session, first, parent)
    _, other_parent, other = await family_with_pupil(session, school_code=canteen.external_code)
    await issued(session, other, other_parent)
    await session.commit()
    requests = [
        MealRequest("b-1", "lunch", SCHOOL_DAY, child_person_id=first.id),
        MealRequest("b-2", "breakfast", SCHOOL_DAY, child_person_id=first.id),
        MealRequest("b-3", "lunch", SCHOOL_DAY, child_person_id=other.id),
        MealRequest("b-4", "lunch", SCHOOL_DAY, child_person_id=other.id),  # served already
    ]
    # When the batch is served
    results = await meal_service.redeem_meals_batch(
        paths=MealPaths(sessions=session_factory), merchant_id=canteen.id, requests=requests,
        qr_key=QR_KEY, now=NOW, caller=caller_of(canteen, 9),
    )  # fmt: skip
    assert [r.code for r in results] == [None, None, None, "ALREADY_REDEEMED"]
    meal_ids = [r.redeemed.redemption.id for r in results[:3]]
    # Then each family has one record naming its meals, about its one child
    records = (
        await session.scalars(
            select(AuditRecord)
            .where(AuditRecord.request_id == "req-9")
            .order_by(AuditRecord.family_id)
            .execution_options(populate_existing=True)
        )
    ).all()
    assert sorted((r.family_id, r.what, r.subject_hash) for r in records) == sorted(
        [
            (
                first.family_id,
                f"meal batch: 2 served, 0 replayed (meals {meal_ids[0]}, {meal_ids[1]})",
                subject_hash(iin=first.iin, key=AUDIT_KEY),
            ),
            (
                other.family_id,
                f"meal batch: 1 served, 0 replayed (meals {meal_ids[2]})",
                subject_hash(iin=other.iin, key=AUDIT_KEY),
            ),
        ]
    )
    # And the records are consecutive links of one chain
    assert len({r.chain for r in records}) == 1
    seqs = sorted(r.seq for r in records)
    assert seqs == [seqs[0], seqs[0] + 1]
    assert (await verify_chain(session=session, key=AUDIT_KEY)).ok
