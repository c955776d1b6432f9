"""Queries of the bank's side for operators: payments no bank statement has booked yet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from familymap.access import Role
from familymap.clock import utc_now
from graphql_schema.context import Context
from graphql_schema.errors import ApiError
from graphql_schema.permissions import requires
from graphql_schema.scalars import Tiyn
from wallet.reconcile import Unreconciled, unreconciled_payments

MAX_DAYS = 3650
MAX_ROWS = 500


@strawberry.type(description="A payment the bank's API took (or not yet) and no statement booked.")
class UnreconciledPayment:
    payment_id: strawberry.ID
    payment_key: str = strawberry.field(description="The end-to-end id the statement should carry.")
    programme: str
    amount_tiyn: Tiyn
    iban_masked: str
    state: str = strawberry.field(description="ordered (not yet taken by the bank) or sent.")
    ordered_at: datetime
    sent_at: datetime | None
    bank_reference: str | None
    days_waiting: int

    @classmethod
    def from_row(cls, row: Unreconciled) -> UnreconciledPayment:
        return cls(
            payment_id=strawberry.ID(str(row.payment_id)),
            payment_key=row.payment_key,
            programme=row.programme,
            amount_tiyn=Tiyn(row.amount_tiyn),
            iban_masked=row.iban_masked,
            state=row.state,
            ordered_at=row.ordered_at,
            sent_at=row.sent_at,
            bank_reference=row.bank_reference,
            days_waiting=row.days_waiting,
        )


@strawberry.type
class BankQueries:
    @strawberry.field(
        description=(
            "Payments ordered more than `olderThanDays` days ago that no bank statement has "
            "booked paid or returned, oldest first (at most 500). Operators only."
        ),
        extensions=requires(Role.OPERATOR),
    )
    async def unreconciled_payments(
        self, info: Info[Context, Any], older_than_days: int = 3
    ) -> list[UnreconciledPayment]:
        if not 0 <= older_than_days <= MAX_DAYS:
            raise ApiError("error.older_than_days", code="INVALID_PERIOD", values={"max": MAX_DAYS})
        async with info.context.session_factory() as session:
            rows = await unreconciled_payments(
                session=session, older_than_days=older_than_days, now=utc_now(), limit=MAX_ROWS
            )
        return [UnreconciledPayment.from_row(row) for row in rows]
