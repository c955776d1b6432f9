"""Which entitlement changes the offer flow acts on: one declaration, read by Python and SQL.

The family map's diff (familymap.batch) calls an entitlement `new`, `changed` or `ended`. Of
those, the offer flow makes an offer or a notice for:

- a `new` entitlement of any programme;
- a `changed` notice sent again when its date changes (wallet.notices.ON_CHANGE);
- a `changed` entitlement of a renewed programme (`Rule.renewed`: ASP's quarter, a school
  year's meals) whose new period starts after its previous period ended: the entitlement
  continues into a new period, which is offered again with consent (a **renewal**). The same
  period recomputed (another amount, an end moved, a start moved within the period) is not
  a new period and sends nothing. A renewal of a programme with a standing consent
  (`Rule.standing`: the monthly medicines voucher) whose previous period was consented to is
  not asked again: it is consented to and funded at once (wallet.offers, `STANDING`).

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

RENEWED = frozenset(rule.code for rule in RULES if rule.renewed)
# Renewed programmes whose consent stands for the next periods while the person is entitled.
STANDING = frozenset(rule.code for rule in RULES if rule.standing)


@dataclass(frozen=True, slots=True)
class Offered:
    """Changes of this kind, of these programmes (None: of every programme; the diff writes
    only the rules' codes), are offered; `new_period`: only when the period starts after the
    previous period's end (a renewal)."""

    change: str
    programmes: frozenset[str] | None
    new_period: bool = False


OFFERED = (
    Offered("new", None),
    Offered("changed", frozenset(notices.ON_CHANGE)),
    Offered("changed", RENEWED, new_period=True),
)


def _starts_after_previous(change: Any) -> bool:
    return (
        change.period_start is not None
        and change.previous_period_end is not None
        and change.period_start > change.previous_period_end
    )


def _lookups() -> tuple[dict[tuple[str, str], bool], dict[str, bool]]:
    """`OFFERED` as look-ups, (change, programme) and change (of every programme) -> whether
    only a new period is offered. (The offer job asks for every change of a national run,
    millions: a dictionary look-up costs a sixth of walking the list.) A change two lines
    name is offered if either line offers it."""
    by_programme: dict[tuple[str, str], bool] = {}
    by_change: dict[str, bool] = {}
    for rule in OFFERED:
        if rule.programmes is None:
            by_change[rule.change] = by_change.get(rule.change, True) and rule.new_period
            continue
        for programme in rule.programmes:
            key = (rule.change, programme)
            by_programme[key] = by_programme.get(key, True) and rule.new_period
    return by_programme, by_change


_BY_PROGRAMME, _BY_CHANGE = _lookups()


def offered(change: Any) -> bool:
    """Whether the offer flow acts on this change (a row with CHANGE_COLUMNS' fields)."""
    named = _BY_PROGRAMME.get((change.change, change.programme))
    every = _BY_CHANGE.get(change.change)
    if named is None and every is None:
        return False
    needs_new_period = every if named is None else named if every is None else named and every
    return not needs_new_period or _starts_after_previous(change)


def is_renewal(change: Any) -> bool:
    """An offered change that continues an entitlement into its next period."""
    return change.change == "changed" and change.programme in RENEWED and offered(change)


def offered_clause() -> ColumnElement[bool]:
    """`offered` as SQL over `entitlement_changes`."""
    return or_(*(_line_clause(rule) for rule in OFFERED))


def _line_clause(rule: Offered) -> ColumnElement[bool]:
    table = EntitlementChange
    conditions = [table.change == rule.change]
    if rule.programmes is not None:
        conditions.append(table.programme.in_(sorted(rule.programmes)))
    if rule.new_period:
        conditions.append(table.period_start > table.previous_period_end)
    return and_(*conditions)
