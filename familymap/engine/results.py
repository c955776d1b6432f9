"""What an evaluation returns.

* One family (`evaluate_family`): a `FamilyEvaluation` with one `Decision` per (programme,
  unit) - eligible or not - each listing every condition with the value it saw, the threshold
  and the verdict, plus the welfare assessment. Plain Python values, ready for an API.
* The population (`evaluate_population`): a `PopulationResult` of numpy columns, per rule only
  the eligible units (row index, amount, period), so a database writer can COPY it as is;
  `decision_columns()` concatenates every rule into one table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple, overload

import numpy as np

from familymap.welfare import WelfareAssessment, WelfareColumns


class ConditionResult(NamedTuple):
    """One condition of one decision: what it tested, the value seen, and the verdict."""

    id: str
    label: str
    value: Any
    op: str
    threshold: Any
    passed: bool


class Explanation(Sequence[ConditionResult]):
    """The conditions of one decision, computed on first access and then kept.

    `load()` returns the per-unit condition tuples of the whole rule (see
    engine.evaluate.explain_rule); this object picks its own unit's tuple.
    """

    __slots__ = ("_items", "_load", "_row")

    def __init__(self, load: Callable[[], list[tuple[ConditionResult, ...]]], row: int) -> None:
        self._load: Callable[[], list[tuple[ConditionResult, ...]]] | None = load
        self._row = row
        self._items: tuple[ConditionResult, ...] | None = None

    def _get(self) -> tuple[ConditionResult, ...]:
        if self._items is None:
            assert self._load is not None  # dropped only once _items is set
            self._items = self._load()[self._row]
            self._load = None  # drop the evaluation context once explained
        return self._items

    @overload
    def __getitem__(self, index: int) -> ConditionResult: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ConditionResult, ...]: ...
    def __getitem__(self, index: int | slice) -> ConditionResult | tuple[ConditionResult, ...]:
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())

    def __iter__(self) -> Iterator[ConditionResult]:
        return iter(self._get())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self._get()) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._get())


class Decision(NamedTuple):
    """A programme decided for one unit (a person, or the family) on one date.

    A NamedTuple rather than a frozen dataclass: equally immutable, and several times cheaper
    to create, which matters for the ~50 decisions of every one-family evaluation.
    """

    programme: str
    kind: str  # benefit | voucher | notice
    family_id: Any
    person_id: Any  # None for a family-unit programme
    eligible: bool
    amount_tiyn: int  # 0 when not eligible, and for notices
    period_start: date | None  # None when not eligible; start == end for a one-off
    period_end: date | None
    conditions: Sequence[
        ConditionResult
    ]  # an Explanation: every condition, computed on first access
    factors: tuple[tuple[str, Any], ...]  # facts that set the amount, e.g. ('birth_order', 4)
    rule_version: str
    parameters_version: str
    reference: str


@dataclass(frozen=True, slots=True)
class FamilyEvaluation:
    """Every decision and the welfare of one family on one date."""

    family_id: Any
    on: date
    parameters_version: str
    decisions: tuple[Decision, ...]
    welfare: WelfareAssessment

    def eligible(self) -> list[Decision]:
        """The decisions that grant something (offers and notices to send)."""
        return [d for d in self.decisions if d.eligible]

    def decision(self, programme: str, person_id: Any = None) -> Decision:
        """The decision for a programme (and person, for person-unit programmes)."""
        for d in self.decisions:
            if d.programme == programme and d.person_id == person_id:
                return d
        raise KeyError((programme, person_id))


@dataclass(frozen=True, slots=True)
class RuleColumns:
    """One rule over the population: the eligible units only, columnar."""

    code: str
    kind: str
    unit: str  # person | family: what `index` points at
    version: str
    index: np.ndarray  # int64 row numbers of eligible persons or families, ascending
    amount_tiyn: np.ndarray  # int64
    period_start: np.ndarray  # int32 day numbers (days since 1970-01-01)
    period_end: np.ndarray  # int32 day numbers

    def mask(self, n_units: int) -> np.ndarray:
        """Boolean eligibility over all units of the rule's kind."""
        mask = np.zeros(n_units, dtype=bool)
        mask[self.index] = True
        return mask


@dataclass(frozen=True, slots=True)
class PopulationResult:
    """Every rule and the welfare of every family, as columns."""

    on: date
    parameters_version: str
    n_persons: int
    n_families: int
    rules: dict[str, RuleColumns]
    welfare: WelfareColumns
    person_family: np.ndarray = field(repr=False)  # family row of each person row

    def decision_columns(self) -> dict[str, np.ndarray]:
        """All eligible decisions in one table: programme (code index), person_row (-1 for a
        family programme), family_row, amount_tiyn, period_start / period_end (datetime64[D])."""
        codes = list(self.rules)
        parts = []
        for i, rc in enumerate(self.rules.values()):
            if rc.unit == "person":
                person, family = rc.index, self.person_family[rc.index].astype(np.int64)
            else:
                person, family = np.full(len(rc.index), -1, dtype=np.int64), rc.index
            parts.append(
                (
                    np.full(len(rc.index), i, dtype=np.int16),
                    person,
                    family,
                    rc.amount_tiyn,
                    rc.period_start,
                    rc.period_end,
                )
            )
        columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
        return {
            "programme": columns[0],
            "person_row": columns[1],
            "family_row": columns[2],
            "amount_tiyn": columns[3],
            "period_start": columns[4].astype(np.int64).astype("datetime64[D]"),
            "period_end": columns[5].astype(np.int64).astype("datetime64[D]"),
            "programme_codes": np.array(codes),
        }

    def eligible_count(self) -> dict[str, int]:
        """Eligible units per programme."""
        return {code: len(rc.index) for code, rc in self.rules.items()}
