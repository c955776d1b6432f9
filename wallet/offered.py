"""Which entitlement changes the offer flow acts on: one declaration, read by Python and SQL.

The family map's diff (familymap.batch) calls an entitlement `new`, `changed` or `ended`. Of
those, the offer flow makes an offer or a notice for:

- a `new` entitlement of any programme;
- a `changed` notice sent again when its date changes (wallet.notices.ON_CHANGE);
- a `changed` entitlement of a renewed programme (`Rule.renewed`: ASP's quarter, a school
  year's meals) whose new period starts after its previous period ended: the entitlement
  continues into a new period, which is offered again with consent (a **renewal**). The same
  period recomputed (another amount, an end moved, a start moved within the period) is not
  a new period and sends nothing.

`OFFERED` is that list. `offered(change)` evaluates it on a row in Python (the one-family
path, the planner); `offered_clause()` renders it as the WHERE clause the jobs read changes
with. Both are built from `OFFERED`, so they cannot disagree (tests/wallet/test_renewals.py
checks them against each other on every kind of row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from familymap.rules import RULES
from familymap.tables import EntitlementChange
from wallet import notices

KNOWN = frozenset(rule.code for rule in RULES)
RENEWED = frozenset(rule.code for rule in RULES if rule.renewed)


@dataclass(frozen=True, slots=True)
class Offered:
    """Changes of this kind, of these programmes, are offered; `new_period`: only when the
    period starts after the previous period's end (a renewal)."""

    change: str
    programmes: frozenset[str]
    new_period: bool = False


OFFERED = (
    Offered("new", KNOWN),
    Offered("changed", frozenset(notices.ON_CHANGE)),
    Offered("changed", RENEWED, new_period=True),
)


def _starts_after_previous(change: Any) -> bool:
    return (
        change.period_start is not None
        and change.previous_period_end is not None
        and change.period_start > change.previous_period_end
    )


def _by_change_and_programme() -> dict[tuple[str, str], bool]:
    """`OFFERED` as a lookup: (change, programme) -> whether only a new period is offered.
    (The offer job asks for every change of a national run, millions: one dictionary look-up
    costs a seventh of walking the list.) A pair two lines name is offered if either line
    offers it."""
    lookup: dict[tuple[str, str], bool] = {}
    for rule in OFFERED:
        for programme in rule.programmes:
            key = (rule.change, programme)
            lookup[key] = lookup.get(key, True) and rule.new_period
    return lookup


_NEEDS_NEW_PERIOD = _by_change_and_programme()


def offered(change: Any) -> bool:
    """Whether the offer flow acts on this change (a row with CHANGE_COLUMNS' fields)."""
    needs_new_period = _NEEDS_NEW_PERIOD.get((change.change, change.programme))
    if needs_new_period is None:
        return False
    return not needs_new_period or _starts_after_previous(change)


def is_renewal(change: Any) -> bool:
    """An offered change that continues an entitlement into its next period."""
    return change.change == "changed" and change.programme in RENEWED and offered(change)


def offered_clause() -> ColumnElement[bool]:
    """`offered` as SQL over `entitlement_changes`."""
    table = EntitlementChange
    return or_(
        *(
            and_(
                table.change == rule.change,
                table.programme.in_(sorted(rule.programmes)),
                *((table.period_start > table.previous_period_end,) if rule.new_period else ()),
            )
            for rule in OFFERED
        )
    )
