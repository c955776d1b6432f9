"""A token with several roles acts in the one that reaches least (familymap.access): a
school's staff who is also an operator draws the school's act as the school, and the audit
trail says so (it used to say OPERATOR: `min(roles)` picked the alphabetically first)."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from sqlalchemy import select

from familymap.access import Role
from familymap.audit_tables import AuditRecord
from tests.vouchers.vouchers_builders import school

PREPARE = """
mutation($month: Date!) { prepareAct(month: $month) {
  __typename ... on ActView { id merchantId } ... on VoucherRefused { code } } }
"""
DECEMBER_2 = datetime(2026, 12, 2, 4, 30, tzinfo=UTC)


async def test_a_school_that_is_also_an_operator_acts_as_the_school(gql, dev_issuer, session):
    canteen = await school(session)
    await session.commit()
    with time_machine.travel(DECEMBER_2, tick=True):
        token = dev_issuer.mint(roles=[Role.OPERATOR, Role.SCHOOL], subject=str(canteen.id))
        body = await gql(PREPARE, {"month": "2026-11-01"}, token=token)
    act = body["data"]["prepareAct"]
    assert act["__typename"] == "ActView", body
    assert act["merchantId"] == str(canteen.id)
    roles = await session.scalars(
        select(AuditRecord.role).where(AuditRecord.what == f"act {act['id']} drawn")
    )
    assert list(roles) == ["SCHOOL"]
