"""Which role a caller acts in is a documented precedence, not the alphabet."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from familymap.access import ROLE_PRECEDENCE, NoActingRole, Principal, Role


def caller(*roles: Role) -> Principal:
    moment = datetime(2026, 11, 18, tzinfo=UTC)
    return Principal(subject="x", roles=frozenset(roles), issued_at=moment, expires_at=moment)


def test_the_role_that_reaches_least_acts():
    # Alphabetically OPERATOR < SCHOOL: `min(roles)` made a school's staff act as operator.
    assert caller(Role.OPERATOR, Role.SCHOOL).acting_role(set(Role)) is Role.SCHOOL
    assert caller(Role.OPERATOR, Role.PHARMACY).acting_role(set(Role)) is Role.PHARMACY
    assert caller(Role.OPERATOR, Role.SOURCE_SYSTEM).acting_role(set(Role)) is Role.SOURCE_SYSTEM
    assert caller(Role.CITIZEN, Role.OPERATOR).acting_role(set(Role)) is Role.CITIZEN


def test_only_a_role_the_call_admits_acts():
    both = caller(Role.OPERATOR, Role.SCHOOL)
    assert both.acting_role({Role.OPERATOR}) is Role.OPERATOR
    assert both.acting_role({Role.SCHOOL, Role.PHARMACY}) is Role.SCHOOL
    with pytest.raises(NoActingRole):
        both.acting_role({Role.CITIZEN})


def test_every_role_has_one_place():
    assert sorted(ROLE_PRECEDENCE) == sorted(Role) and len(set(ROLE_PRECEDENCE)) == len(Role)
