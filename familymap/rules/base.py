"""What a rule is: one class per programme, with its conditions and its award.

Design (why not two implementations): every condition is a function of (context, rows) that
returns (value, threshold, passed) as arrays over the given rows, elementwise, and reads
shared intermediates (ages, per-family counts and incomes) from the context. The same
function therefore serves

* decisions, for the whole population or for one family (a population of one): the engine
  calls the first condition on every row (a view), keeps the rows that passed, calls the next
  condition only on those rows, and so on, like a short-circuit AND; the award is computed on
  the surviving rows only. One family takes exactly the same path as a million;
* explanations: the engine calls every condition on every row of the family and keeps each
  value, threshold and verdict (done on first access, so callers that only need decisions do
  not pay for it).

Because each condition is elementwise and per-family intermediates depend only on the family's
own members, a family gets the same decisions alone and inside any population (a property
test checks it). A DSL compiled to two evaluators would give the same guarantee with more
machinery; plain numpy functions keep the law readable and let a condition use any array
expression.

Each rule has: a plain-language docstring, `reference` (legal basis), a stable `code`, `kind`
(benefit / voucher / notice), `unit` (person / family), `version`, its conditions in
declaration order (cheapest and most selective first, it is also the vectorised order), and
`award(ctx, rows) -> Award` for the eligible rows; `renewed` says whether a continuing
entitlement's next period is offered again, and `standing` whether consent to it stands for
the next periods (docs/money.md, "Renewals").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias

import numpy as np
from numpy.typing import DTypeLike, NDArray

from familymap.situation import EMPLOYMENT

if TYPE_CHECKING:  # the engine imports the rules, never the reverse at run time
    from familymap.engine.context import Context

BENEFIT, VOUCHER, NOTICE = "benefit", "voucher", "notice"
PERSON, FAMILY = "person", "family"

# How a condition's value and threshold read in an explanation.
DATE, TIYN, INT, BOOL, PCT, TEXT = "date", "tiyn", "int", "bool", "pct", "text"
EMPLOYMENT_LABELS = EMPLOYMENT


# The rows a condition or an award reads, of persons or of families (the rule's unit):
RowIndex: TypeAlias = NDArray[np.intp]  # the ascending row numbers still standing
Rows: TypeAlias = slice | RowIndex  # or context.ALL, every row (a slice, so a view)
# A value or threshold: one per row, or one for every row (a parameter, a constant).
# A tuple is a range or a set shown as the threshold of 'in'; None a value left unexplained.
Operand: TypeAlias = NDArray[Any] | int | bool | np.integer[Any] | np.bool_ | tuple[int, ...] | None
# What a condition returns: (value, threshold, passed), passed one bool per row.
Verdict: TypeAlias = tuple[Operand, Operand, NDArray[np.bool_]]
# How a condition's value reads in an explanation: DATE, TIYN, ... or an enumeration's labels.
Format: TypeAlias = str | tuple[str | None, ...]


class ConditionFn(Protocol):
    """The function of a condition: elementwise over `rows` of the context's population."""

    def __call__(self, ctx: Context, rows: Rows, /) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class Condition:
    """One test of a rule: `fn(ctx, rows) -> (value, threshold, passed)`, elementwise."""

    id: str
    label: str
    op: str  # how value compares with threshold, for the explanation: '>=', '<', 'in', ...
    fmt: Format  # DATE, TIYN, ... or a tuple of labels for an enumeration code
    fn: ConditionFn


def condition(
    id: str, label: str, *, op: str, fmt: Format = INT
) -> Callable[[ConditionFn], Condition]:
    """Decorator: turn `fn(ctx, rows)` in a rule's body into one of its conditions."""

    def wrap(fn: ConditionFn) -> Condition:
        return Condition(id, label, op, fmt, fn)

    return wrap


@dataclass(frozen=True, slots=True)
class Award:
    """Amounts and periods for the eligible rows (int64 tiyn, int32 day numbers)."""

    amount: np.ndarray
    start: np.ndarray
    end: np.ndarray
    # name -> (fmt, array over the same rows): the facts that set the amount, for explanations.
    factors: Mapping[str, tuple[Format, np.ndarray]] = field(default_factory=dict)


class Rule:
    """Base of every programme; subclasses declare conditions with @condition."""

    code: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[str]
    unit: ClassVar[str]
    version: ClassVar[str]
    reference: ClassVar[str]
    conditions: ClassVar[tuple[Condition, ...]]
    # Whether the entitlement's next period (it continues after its period ended: the next
    # quarter, the next school year) is offered again, with consent, as a renewal. False for
    # a programme whose period only moves within one award (monthly payments to a natural
    # end) or that is consented to once.
    renewed: ClassVar[bool] = False
    # Whether consent to a renewed programme stands for its next periods while the person
    # stays entitled (a standing consent: the monthly medicines voucher): a next period whose
    # previous one was consented to is funded without asking again (docs/money.md,
    # "Renewals"). Only a renewed programme can have it.
    standing: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Class bodies keep definition order, which is the evaluation and explanation order.
        cls.conditions = tuple(v for v in vars(cls).values() if isinstance(v, Condition))
        if not cls.__doc__ or not cls.conditions:
            raise TypeError(f"{cls.__name__}: a rule needs a docstring and at least one condition")
        if cls.kind not in (BENEFIT, VOUCHER, NOTICE) or cls.unit not in (PERSON, FAMILY):
            raise TypeError(f"{cls.__name__}: bad kind or unit")
        if cls.standing and not cls.renewed:
            raise TypeError(f"{cls.__name__}: a standing consent is for a renewed programme")

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:  # pragma: no cover - every rule overrides it
        raise NotImplementedError


def full(rows: RowIndex, value: int, dtype: DTypeLike = np.int32) -> np.ndarray:
    """A constant column over the given rows."""
    return np.full(len(rows), value, dtype=dtype)


# ----- conditions shared by several rules ---------------------------------------------------


@condition(
    "alive", "The person is alive (and born) on the evaluation date", op="none or >", fmt=DATE
)
def ALIVE(ctx: Context, rows: Rows) -> Verdict:
    return ctx.person.date_of_death[rows], ctx.day, ctx.alive[rows]


@condition(
    "below_pension_age", "Has not reached pension age (born after the cutoff)", op=">", fmt=DATE
)
def BELOW_PENSION_AGE(ctx: Context, rows: Rows) -> Verdict:
    return ctx.person.birth_date[rows], ctx.pension_cutoff_today[rows], ctx.below_pension_age[rows]


def contributions_condition(parameter: str) -> Condition:
    """Enough months with social contributions in the last 24 (threshold from `parameter`)."""

    @condition("contributions", "Months with social contributions in the last 24", op=">=")
    def fn(ctx: Context, rows: Rows) -> Verdict:
        months = ctx.person.contribution_months[rows]
        minimum = ctx.p.int(parameter)
        return months, minimum, months >= minimum

    return fn


@condition(
    "has_income", "An insured income on record to compute the payment from", op=">", fmt=TIYN
)
def HAS_INCOME(ctx: Context, rows: Rows) -> Verdict:
    income = ctx.person.monthly_income[rows]
    return income, 0, income > 0


@condition("has_carer", "The family has a living adult to care for the child", op=">=")
def HAS_CARER(ctx: Context, rows: Rows) -> Verdict:
    adults = ctx.of_family(ctx.family_adults, rows)
    return adults, 1, adults >= 1
