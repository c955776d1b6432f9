"""What a programme gives a family (or one member) as of a given day, by the rules themselves.

The wallet pays a month before the one its assignment was decided in (backpay) at the amount
of the family as it was in that month. That amount is not a second formula: it is the same
rule (its conditions and its award) evaluated on that day, with the registry's facts as they
stood then (a child born later is not yet alive) and the parameters in force then. Nothing is
written: an evaluation of a past day must not replace the family's current entitlements, so
this reads the registry and evaluates, without recording a run (unlike batch.reevaluate_family).

The families asked about are read once and evaluated once per distinct day, vectorised, so an
offer job that quotes a thousand families' past months costs a read and a few evaluations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from familymap.engine.context import Context
from familymap.engine.dates import to_day
from familymap.engine.evaluate import outcome
from familymap.parameters import ParameterSet, default_parameters
from familymap.rules import FAMILY, RULES_BY_CODE
from familymap.store import FamilySelection, read_registry_slice


@dataclass(frozen=True, slots=True)
class AsOf:
    """One question: what `programme` gives this family (or member) on `day`."""

    programme: str
    family_id: int
    person_id: int | None
    day: date


async def amounts_as_of(
    *,
    connection: AsyncConnection,
    questions: Iterable[AsOf],
    parameters: ParameterSet | None = None,
) -> dict[AsOf, int]:
    """The amount in tiyn each question's rule awards on its day; 0 where the unit is not
    eligible that day or the award's period does not cover it."""
    questions = list(dict.fromkeys(questions))
    answers = dict.fromkeys(questions, 0)
    if not questions:
        return answers
    parameters = parameters or default_parameters()
    registry = await read_registry_slice(
        connection, families=FamilySelection.of(*{q.family_id for q in questions})
    )
    if registry is None:
        return answers
    by_day: dict[date, list[AsOf]] = {}
    for question in questions:
        by_day.setdefault(question.day, []).append(question)
    for day, asked in sorted(by_day.items()):
        ctx = Context(registry.population, day, parameters, explain=False)
        number = to_day(day)
        for code in sorted({q.programme for q in asked}):
            rule = RULES_BY_CODE[code]
            result = outcome(ctx, rule)
            ids = registry.family_ids if rule.unit == FAMILY else registry.person_ids
            award = result.award
            granted = {
                int(unit): int(amount)
                for unit, amount, start, end in zip(
                    ids[result.rows].tolist(),
                    award.amount.tolist(),
                    award.start.tolist(),
                    award.end.tolist(),
                    strict=True,
                )
                if start <= number <= end
            }
            for question in asked:
                if question.programme != code:
                    continue
                unit = question.family_id if rule.unit == FAMILY else question.person_id
                answers[question] = granted.get(unit, 0) if unit is not None else 0
    return answers
