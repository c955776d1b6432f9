"""One evaluation: a population, a date, the parameters in force, and shared intermediates.

Rules never compute an age, a family count or a per-capita income themselves: they ask the
context, which computes each intermediate once per evaluation (a cached property or a memo)
and hands the same array to every rule that needs it.

Per-family sums use one cumulative sum over the person rows read at the family boundaries.
Persons are grouped by family (see population.py), so this is two sequential passes and costs
about a third of `np.add.reduceat` on this machine, and it needs no sort.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Hashable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import numpy as np
from numpy.typing import DTypeLike, NDArray

from familymap.engine.dates import (
    add_months,
    month_end,
    month_start,
    quarter_bounds,
    reached_cutoff,
    to_day,
)
from familymap.engine.population import Population
from familymap.parameters import ParameterSet
from familymap.situation import EMPLOYMENT, ROLES

if TYPE_CHECKING:
    from familymap.engine.evaluate import Outcome
    from familymap.rules.base import RowIndex, Rows

_Owner = TypeVar("_Owner")
_Value = TypeVar("_Value")
_Figure = TypeVar("_Figure")


class cached_property(Generic[_Owner, _Value]):
    """functools.cached_property without its lock (Python 3.11 takes an RLock on every first
    access, which costs more than the tiny arrays of a one-family evaluation)."""

    def __init__(self, fn: Callable[[_Owner], _Value]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    @overload
    def __get__(
        self, obj: None, owner: type[_Owner] | None = None
    ) -> cached_property[_Owner, _Value]: ...
    @overload
    def __get__(self, obj: _Owner, owner: type[_Owner] | None = None) -> _Value: ...
    def __get__(
        self, obj: _Owner | None, owner: type[_Owner] | None = None
    ) -> cached_property[_Owner, _Value] | _Value:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


ALL = slice(None)  # "every row": the first condition of a rule sees the whole column as a view

HEAD, SPOUSE, CHILD, DEPENDANT, OTHER = (ROLES.index(r) for r in ROLES)
EMPLOYED, UNEMPLOYED, JOB_LOST, NOT_IN_LABOUR_FORCE = (EMPLOYMENT.index(e) for e in EMPLOYMENT)


class Snapshot:
    """The parameters in force on one date, with integer conversions done once."""

    def __init__(self, parameters: ParameterSet, on: date) -> None:
        self.parameters = parameters
        self.on = on
        self.version = parameters.version
        self._memo: dict[tuple[str, ...] | tuple[str, str, int], Any] = {}
        self._values: dict[str, Any] = {}
        self._ints: dict[str, int] = {}
        # Date-only figures (cutoff birth days, month and quarter bounds) live as long as the
        # snapshot, so a stream of one-family evaluations computes each of them once.
        self.cutoffs: dict[int, int] = {}
        self.days: dict[Hashable, Any] = {}

    def value(self, name: str) -> Any:
        """The raw value in force (int, float or mapping)."""
        try:
            return self._values[name]
        except KeyError:
            value = self._values[name] = self.parameters.get(name, self.on)
            return value

    def int(self, name: str) -> int:  # `int` below this line is this method: builtins.int
        """An integer parameter (months, days, counts, tiyn)."""
        # The hottest call of a one-family evaluation: a plain dict hit after the first time.
        try:
            return self._ints[name]
        except KeyError:
            value = self._ints[name] = int(self.value(name))
            return value

    def scaled(self, name: str, base: builtins.int) -> builtins.int:
        """round_half_up(parameter × base): turns '16.03 MRP' into tiyn without float error."""
        key = ("s", name, base)
        if key not in self._memo:
            self._memo[key] = _scale(self.value(name), base)
        scaled: builtins.int = self._memo[key]
        return scaled

    def by_index(self, name: str, base: builtins.int) -> NDArray[np.int64]:
        """A {1: x, 2: y, ...} parameter as an int64 array indexed by its key, × base, [0] = 0.

        Used for amounts by group or by order; clip the index to the last key for "and more".
        """
        key = ("i", name, base)
        if key not in self._memo:
            mapping = self.value(name)
            top = max(int(k) for k in mapping)
            values = {int(k): v for k, v in mapping.items()}
            self._memo[key] = np.array(
                [0] + [_scale(values[k], base) for k in range(1, top + 1)], dtype=np.int64
            )
        by_index: NDArray[np.int64] = self._memo[key]
        return by_index

    def table(self, key: str, build: Callable[[], _Figure]) -> _Figure:
        """A derived constant (e.g. an amount table by group), built once per date."""
        memo_key = ("t", key)
        if memo_key not in self._memo:
            self._memo[memo_key] = build()
        table: _Figure = self._memo[memo_key]
        return table

    def mrp(self, name: str) -> builtins.int:
        """A parameter expressed in MRP, converted to tiyn."""
        return self.scaled(name, self.int("mrp"))

    def bp(self, name: str) -> builtins.int:
        """A rate (0.45) as integer basis points (4500), so rates multiply integer tiyn."""
        return self.scaled(name, 10_000)


def _scale(value: Any, base: int) -> int:
    return int((Decimal(str(value)) * base).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@lru_cache(maxsize=64)
def snapshot(parameters: ParameterSet, on: date) -> Snapshot:
    """A shared Snapshot per (parameter set, date): single-family evaluations reuse it."""
    return Snapshot(parameters, on)


class Context:
    """Population + date + parameters, and every intermediate the rules share."""

    def __init__(
        self, population: Population, on: date, parameters: ParameterSet, *, explain: bool
    ) -> None:
        self.pop = population
        self.person = population.person
        self.family = population.family
        self.on = on
        self.day = to_day(on)
        self.p = snapshot(parameters, on)
        self._cutoffs = self.p.cutoffs
        self._days = self.p.days
        self.explain = explain  # keep every condition's values for every unit (single family)
        self.outcomes: dict[str, Outcome] = {}  # rule code -> Outcome, filled by engine.evaluate
        self.memo: dict[str, Any] = {}  # intermediates private to one rule module
        self._reached: dict[int, NDArray[np.bool_]] = {}

    # ----- dates ---------------------------------------------------------------------------
    def cutoff(self, months: int, *, on: date | None = None) -> int:
        """Latest birth day of someone who has reached `months` months of age on `on`."""
        if on is not None and on != self.on:
            return reached_cutoff(on, months)
        try:
            return self._cutoffs[months]
        except KeyError:
            value = self._cutoffs[months] = reached_cutoff(self.on, months)
            return value

    def _date_figure(self, name: Hashable, build: Callable[[], _Figure]) -> _Figure:
        """A figure that depends only on the date and the parameters, kept on the snapshot."""
        try:
            figure: _Figure = self._days[name]
        except KeyError:
            figure = self._days[name] = build()
        return figure

    def reached(self, months: int) -> NDArray[np.bool_]:
        """Person mask: has reached `months` months of age on the evaluation date."""
        if months not in self._reached:
            self._reached[months] = self.person.birth_date <= self.cutoff(months)
        return self._reached[months]

    @cached_property
    def month_start_day(self) -> int:
        return self._date_figure("month_start", lambda: to_day(month_start(self.on)))

    @cached_property
    def month_end_day(self) -> int:
        return self._date_figure("month_end", lambda: to_day(month_end(self.on)))

    @cached_property
    def horizon_end_day(self) -> int:
        """Last day of an assignment of a monthly benefit that has no natural end earlier."""

        def build() -> int:
            months = self.p.int("assignment_months")
            return to_day(month_end(add_months(month_start(self.on), months - 1)))

        return self._date_figure("horizon_end", build)

    @cached_property
    def quarter_days(self) -> tuple[int, int]:
        def build() -> tuple[int, int]:
            start, end = quarter_bounds(self.on)
            return to_day(start), to_day(end)

        return self._date_figure("quarter", build)

    def pension_months(self, rows: Rows) -> NDArray[np.int32]:
        """For person rows: pension age in months by sex."""
        f, m = self._date_figure("pension_months", self._pension_months_by_sex)
        return np.where(self.person.is_female[rows], f, m)

    def _pension_months_by_sex(self) -> tuple[np.int32, np.int32]:
        ages = self.p.value("pension_age_months")
        return np.int32(ages["F"]), np.int32(ages["M"])

    def pension_cutoff(self, rows: Rows = ALL, *, on: date | None = None) -> NDArray[np.int32]:
        """For person rows: latest birth day that has reached pension age on `on`."""
        on = on or self.on
        f, m = self._date_figure(("pension_cutoff", on), lambda: self._pension_cutoffs(on))
        return np.where(self.person.is_female[rows], f, m)

    def _pension_cutoffs(self, on: date) -> tuple[np.int32, np.int32]:
        ages = self.p.value("pension_age_months")
        return np.int32(reached_cutoff(on, ages["F"])), np.int32(reached_cutoff(on, ages["M"]))

    @cached_property
    def pension_cutoff_today(self) -> NDArray[np.int32]:
        return self.pension_cutoff()

    @cached_property
    def below_pension_age(self) -> NDArray[np.bool_]:
        return self.person.birth_date > self.pension_cutoff_today

    # ----- persons -------------------------------------------------------------------------
    @cached_property
    def alive(self) -> NDArray[np.bool_]:
        """Born on or before the date and not dead on it."""
        return (self.person.date_of_death > self.day) & (self.person.birth_date <= self.day)

    @cached_property
    def adult(self) -> NDArray[np.bool_]:
        return self.alive & self.reached(self.p.int("adult_age_months"))

    @cached_property
    def dependent_child(self) -> NDArray[np.bool_]:
        """A living child under 18, or under 23 in full-time study (counts for a large family)."""
        child = self.alive & (self.person.role == CHILD)
        under_child_age = ~self.reached(self.p.int("large_family.child_age_months"))
        under_student_age = ~self.reached(self.p.int("large_family.student_age_months"))
        # ndarray == int is typed Any (numpy's __eq__ takes any object): name the mask's type.
        mask: NDArray[np.bool_] = child & (
            under_child_age | (under_student_age & self.person.full_time_student)
        )
        return mask

    @cached_property
    def idle_able_bodied(self) -> NDArray[np.bool_]:
        """Working age, no disability, not studying, unemployed and not registered as such."""
        p = self.person
        mask: NDArray[np.bool_] = (
            self.adult
            & self.below_pension_age
            & (p.disability_group == 0)
            & ~p.full_time_student
            & (p.employment == UNEMPLOYED)
            & ~p.registered_unemployed
        )
        return mask

    # ----- families ------------------------------------------------------------------------
    def family_sum(self, values: np.ndarray, dtype: DTypeLike = np.int64) -> np.ndarray:
        """Per-family sum of a person column (bool columns count)."""
        if len(self.pop.family_start) == 1:
            # One family (the explain path): the same integer sum, without the boundary reads.
            one: np.ndarray = np.add.reduce(values, dtype=dtype, keepdims=True)
            return one
        cs = np.empty(len(values) + 1, dtype=dtype)
        cs[0] = 0
        np.cumsum(values, dtype=dtype, out=cs[1:])
        at_bounds = cs[self.family_bounds]
        sums: np.ndarray = at_bounds[1:] - at_bounds[:-1]
        return sums

    @cached_property
    def family_bounds(self) -> np.ndarray:
        """First person row of each family, then n_persons: the boundaries of the groups."""
        return np.append(self.pop.family_start, self.pop.n_persons)

    def family_groups(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For ascending person rows: their distinct families and, per row, the family's position.

        Rows come out of the engine ascending and persons are grouped by family, so the
        families appear in runs and no sort is needed (unlike np.unique).
        """
        if len(self.pop.family_start) == 1:
            # One family: every row is in family 0 (same dtypes as below).
            return (
                np.zeros(min(len(rows), 1), dtype=self.person.family_index.dtype),
                np.zeros(len(rows), dtype=np.int64),
            )
        family = self.person.family_index[rows]
        new = np.empty(len(family), dtype=bool)
        new[:1] = True
        np.not_equal(family[1:], family[:-1], out=new[1:])
        return family[new], np.cumsum(new) - 1

    def family_sums(self, masks: list[np.ndarray]) -> list[np.ndarray]:
        """Per-family counts of several person masks (int32), one array per mask."""
        if len(self.pop.family_start) == 1:
            return list(np.add.reduce(np.array(masks), axis=1, dtype=np.int32)[:, None])
        return [self.family_sum(mask, np.int32) for mask in masks]

    def family_count_rows(self, rows: np.ndarray) -> np.ndarray:
        """Per-family count of the given (sparse) person rows."""
        return np.bincount(self.person.family_index[rows], minlength=self.pop.n_families).astype(
            np.int32
        )

    def of_family(self, family_values: np.ndarray, rows: Rows) -> np.ndarray:
        """A family column read for person rows."""
        return family_values[self.person.family_index[rows]]

    def members(self, families: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person rows of the given families, and for each row the position of its family."""
        if len(families) == 1 and len(self.pop.family_start) == 1:
            # One family (the explain path): all the rows, in order.
            n = self.pop.n_persons
            return np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        sizes = self.pop.family_size[families]
        group = np.repeat(np.arange(len(families)), sizes)
        first = np.repeat(self.pop.family_start[families], sizes)
        offset = np.arange(len(group)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return first + offset, group

    @cached_property
    def family_living(self) -> np.ndarray:
        return self.family_sum(self.alive, np.int32)

    @cached_property
    def family_income(self) -> np.ndarray:
        """Monthly income of the living members, tiyn."""
        return self.family_sum(np.where(self.alive, self.person.monthly_income, 0))

    @cached_property
    def family_adults(self) -> np.ndarray:
        return self.family_sum(self.adult, np.int32)

    @cached_property
    def family_dependent_children(self) -> np.ndarray:
        return self.family_sum(self.dependent_child, np.int32)

    @cached_property
    def family_idle(self) -> np.ndarray:
        return self.family_sum(self.idle_able_bodied, np.int32)

    @cached_property
    def young_child_order(self) -> np.ndarray:
        """Person column: birth order among the family's living children, for young children.

        Only children young enough for the birth or childcare benefit get a number (0 elsewhere).
        Every child born after such a child is itself young, so the order is the family's count
        of living children minus the young ones born after it; ties (twins) break by row.
        """
        p = self.person
        months = max(self.p.int("birth_benefit.claim_months"), self.p.int("childcare.until_months"))
        young = (p.birth_date > self.cutoff(months)).nonzero()[0]
        young = young[self.alive[young] & (p.role[young] == CHILD)]
        order = np.zeros(self.pop.n_persons, dtype=np.int16)
        if young.size == 0:
            return order
        families, group = self.family_groups(young)
        # Rows are already in family order; a stable sort on (group, birth) keeps row order for twins.
        key = group.astype(np.int64) << 32 | (p.birth_date[young].astype(np.int64) + 2**31)
        sort = np.argsort(key, kind="stable")
        group_sorted = group[sort]
        first_of_group = np.searchsorted(group_sorted, np.arange(len(families)))
        rank = np.arange(len(sort)) - first_of_group[group_sorted]  # 0 = the eldest young child
        young_in_family = np.diff(np.append(first_of_group, len(sort)))[group_sorted]
        rows, _ = self.members(families)
        is_child = self.alive[rows] & (p.role[rows] == CHILD)
        children = np.add.reduceat(is_child.astype(np.int32), self.member_starts(families))
        order[young[sort]] = children[group_sorted] - young_in_family + rank + 1
        return order

    def member_starts(self, families: np.ndarray) -> np.ndarray:
        """Offsets of each family's first row within `members(families)` (for reduceat)."""
        if len(families) == 1:
            return np.zeros(1, dtype=np.int64)
        sizes = self.pop.family_size[families]
        starts = np.zeros(len(families), dtype=np.int64)
        np.cumsum(sizes[:-1], out=starts[1:])
        return starts

    def family_max(
        self,
        families: np.ndarray,
        values: Callable[[RowIndex], np.ndarray],
        mask: Callable[[RowIndex], np.ndarray],
    ) -> NDArray[np.int64]:
        """For each given family, the max of values(rows) over member rows where mask(rows) (else 0)."""
        if len(families) == 0:
            return np.zeros(0, dtype=np.int64)
        rows, _ = self.members(families)
        masked = np.where(mask(rows), values(rows), 0).astype(np.int64)
        return np.maximum.reduceat(masked, self.member_starts(families))

    def on_plus(self, days: int) -> date:
        """The evaluation date moved by `days` (negative: earlier)."""
        return self._date_figure(("on_plus", days), lambda: self.on + timedelta(days=days))

    def eligible_families(self, code: str) -> np.ndarray:
        """Family mask: eligible for the family-unit rule `code` (evaluated once, memoised)."""
        key = "eligible_families:" + code
        if key not in self.memo:
            from familymap.engine.evaluate import (
                outcome,  # the engine imports rules, not the reverse
            )
            from familymap.rules import RULES_BY_CODE

            mask = np.zeros(self.pop.n_families, dtype=bool)
            mask[outcome(self, RULES_BY_CODE[code]).rows] = True
            self.memo[key] = mask
        eligible: np.ndarray = self.memo[key]
        return eligible

    def after_days(self, days: int) -> int:
        """Day number `days` after the evaluation date."""
        return self._date_figure(("after", days), lambda: to_day(self.on + timedelta(days=days)))
