"""Who is calling: the `me` query's identity part, and for a citizen their wallet."""

from __future__ import annotations

from datetime import datetime

import strawberry

from familymap.access import MERCHANT_ROLES, Principal
from familymap.access import Role as RoleValue
from graphql_schema.scalars import IIN
from graphql_schema.types.wallet import CitizenWallet

Role = strawberry.enum(RoleValue, name="Role", description="What a caller is.")


@strawberry.type(
    description="The verified caller of this request; for a citizen also their wallet "
    "(family, welfare, entitlements, spending, payments), null for other callers."
)
class Viewer(CitizenWallet):
    subject: str = strawberry.field(
        description="The token's subject: an IIN, a merchant id, a staff or system id."
    )
    roles: list[Role]
    iin: IIN | None = strawberry.field(description="The citizen's own IIN (citizens only).")
    merchant_id: strawberry.ID | None = strawberry.field(
        description="The merchant a school or pharmacy token is bound to."
    )
    token_expires_at: datetime

    @classmethod
    def from_principal(cls, principal: Principal, *, language: str) -> Viewer:
        is_citizen = RoleValue.CITIZEN in principal.roles
        is_merchant = bool(principal.roles & MERCHANT_ROLES)
        return cls(
            subject=principal.subject,
            roles=sorted(principal.roles),
            iin=principal.subject if is_citizen else None,
            merchant_id=strawberry.ID(principal.subject) if is_merchant else None,
            token_expires_at=principal.expires_at,
            citizen_iin=principal.subject if is_citizen else None,
            language_code=language,
        )
