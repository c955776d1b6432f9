"""Who calls: the roles a caller may hold and the verified principal of one request.

It lives at the bottom (the family map, which every package stands on; it imports neither
strawberry nor starlette) so that the GraphQL layer reads the caller without importing the
app: `app.auth` verifies a token and builds the Principal, `graphql_schema` only reads it.
The audit trail (familymap.audit) records the role a caller acted in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    """What a caller is; a token carries one or more roles in its `roles` claim."""

    CITIZEN = "CITIZEN"  # subject: the citizen's IIN
    SCHOOL = "SCHOOL"  # subject: the merchant id of a school canteen
    PHARMACY = "PHARMACY"  # subject: the merchant id of a pharmacy or polyclinic
    OPERATOR = "OPERATOR"  # subject: the operator's staff id
    SOURCE_SYSTEM = "SOURCE_SYSTEM"  # subject: the state information system's name


MERCHANT_ROLES = frozenset({Role.SCHOOL, Role.PHARMACY})

# Which role a caller acts in when its token holds several that a field admits: the one
# that reaches least, first. A citizen sees one family, a merchant its own sales, a source
# system pushes the facts it observes, an operator sees every family. So a staff token that
# is both a school and an operator draws the school's own act as the school (as
# `_acting_merchant` decides) and the audit trail says SCHOOL, never the wider role.
ROLE_PRECEDENCE: tuple[Role, ...] = (
    Role.CITIZEN,
    Role.SCHOOL,
    Role.PHARMACY,
    Role.SOURCE_SYSTEM,
    Role.OPERATOR,
)
assert set(ROLE_PRECEDENCE) == set(Role), "every role has its place in ROLE_PRECEDENCE"


class NoActingRole(Exception):
    """The caller holds none of the roles a call admits (the permission check lets no such
    caller through, so this is a programming error, never a refusal)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller of one request."""

    subject: str
    roles: frozenset[Role]
    issued_at: datetime
    expires_at: datetime
    token_id: str | None = None

    def has_any(self, roles: Iterable[Role]) -> bool:
        return not self.roles.isdisjoint(roles)

    def acting_role(self, admitted: Iterable[Role]) -> Role:
        """The role this caller acts in for a call that admits `admitted`: of the roles it
        holds and the call admits, the first in ROLE_PRECEDENCE."""
        candidates = self.roles & frozenset(admitted)
        for role in ROLE_PRECEDENCE:
            if role in candidates:
                return role
        raise NoActingRole(f"the caller holds none of {sorted(frozenset(admitted))}")
