"""Run the rules: one family with explanations, or the whole population vectorised.

Both modes call the same condition and award functions (see rules/base.py); only the set of
rows differs. The vectorised mode narrows the rows condition by condition; the explain mode
evaluates every condition on every row of one family so each verdict can be shown.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from functools import lru_cache, partial
from typing import Any

import numpy as np

from familymap import welfare
from familymap.engine.context import ALL, Context
from familymap.engine.dates import from_day
from familymap.engine.population import Population
from familymap.engine.results import (
    ConditionResult,
    Decision,
    Explanation,
    FamilyEvaluation,
    PopulationResult,
    RuleColumns,
)
from familymap.parameters import ParameterSet, default_parameters
from familymap.rules import FAMILY, RULES
from familymap.rules.base import BOOL, DATE, Award, Format, Rows, Rule
from familymap.situation import Family


@dataclass(slots=True)
class Outcome:
    """A rule evaluated in a context: the eligible rows and their award."""

    rule: type[Rule]
    rows: np.ndarray
    award: Award


_NO_AWARD = Award(
    np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
)


def outcome(ctx: Context, rule: type[Rule]) -> Outcome:
    """Evaluate `rule` in `ctx` once; later calls (rules that depend on it) reuse the result.

    Conditions run as a short-circuit AND: the first sees every row (a view), each later one
    only the rows still standing. Conditions are elementwise, so the order changes the cost,
    never the answer.
    """
    done = ctx.outcomes.get(rule.code)
    if done is not None:
        return done
    rows: Rows = ALL
    for cond in rule.conditions:
        hits = cond.fn(ctx, rows)[2].nonzero()[0]
        rows = hits if isinstance(rows, slice) else rows[hits]  # the first sees ALL, a slice
        if len(rows) == 0:
            break
    assert not isinstance(rows, slice)  # every rule has a condition (Rule.__init_subclass__)
    award = rule.award(ctx, rows) if len(rows) else _NO_AWARD
    result = Outcome(rule, rows, award)
    ctx.outcomes[rule.code] = result
    return result


def explain_rule(ctx: Context, rule: type[Rule]) -> list[tuple[ConditionResult, ...]]:
    """Every condition of `rule` on every unit of `ctx`: one tuple of ConditionResult per unit.

    Runs the same condition functions as `outcome`, on all rows instead of the surviving ones.
    """
    key = "explain:" + rule.code
    if key in ctx.memo:
        explained: list[tuple[ConditionResult, ...]] = ctx.memo[key]
        return explained
    n = ctx.pop.n_families if rule.unit == FAMILY else ctx.pop.n_persons
    per_condition = []
    new = _new_condition
    for cond in rule.conditions:
        value, threshold, passed = cond.fn(ctx, ALL)
        cid, label, op = cond.id, cond.label, cond.op
        per_condition.append(
            [
                new(ConditionResult, (cid, label, v, op, t, ok))
                for v, t, ok in zip(
                    _column(value, n, cond.fmt),
                    _column(threshold, n, cond.fmt),
                    passed.tolist(),
                    strict=True,
                )
            ]
        )
    ctx.memo[key] = result = list(zip(*per_condition, strict=True))
    return result


def evaluate_population(
    *, population: Population, on: date, parameters: ParameterSet | None = None, workers: int = 1
) -> PopulationResult:
    """Evaluate every rule and the welfare of every family of `population` on `on`."""
    parameters = parameters or default_parameters()
    chunks = _chunks(population.n_families, workers)
    if len(chunks) == 1:
        parts = [_evaluate_chunk(population, on, parameters)]
    else:
        # numpy releases the GIL inside its loops, so contiguous family chunks run in parallel.
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            parts = list(
                pool.map(
                    lambda c: _evaluate_chunk(population.slice_families(*c), on, parameters), chunks
                )
            )
    offsets = [
        (int(population.family_start[a]) if a < population.n_families else 0, a) for a, _ in chunks
    ]
    rules = {}
    for rule in RULES:
        pieces = [part[0][rule.code] for part in parts]
        shift = [(f if rule.unit == FAMILY else p) for p, f in offsets]
        rules[rule.code] = RuleColumns(
            rule.code,
            rule.kind,
            rule.unit,
            rule.version,
            np.concatenate(
                [o.rows.astype(np.int64) + s for o, s in zip(pieces, shift, strict=True)]
            ),
            np.concatenate([o.award.amount.astype(np.int64) for o in pieces]),
            np.concatenate([o.award.start.astype(np.int32) for o in pieces]),
            np.concatenate([o.award.end.astype(np.int32) for o in pieces]),
        )
    columns = [part[1] for part in parts]
    welfare_columns = columns[0] if len(columns) == 1 else _concat_welfare(columns)
    return PopulationResult(
        on,
        parameters.version,
        population.n_persons,
        population.n_families,
        rules,
        welfare_columns,
        population.person.family_index,
    )


def evaluate_family(
    *, family: Family, on: date, parameters: ParameterSet | None = None
) -> FamilyEvaluation:
    """Evaluate every rule for one family, explaining every condition, and its welfare."""
    return explain_population_family(
        population=Population.from_families([family]),
        on=on,
        parameters=parameters or default_parameters(),
    )


def family_welfare(
    *, family: Family, on: date, parameters: ParameterSet | None = None
) -> welfare.WelfareAssessment:
    """One family's welfare, explained, without evaluating the rules.

    The same assessment as `evaluate_family(...).welfare`: welfare reads the facts, never a
    decision, so a screen that shows only the welfare (the wallet's) need not evaluate and
    keep some fifty decisions for it.
    """
    ctx = Context(
        Population.from_families([family]), on, parameters or default_parameters(), explain=False
    )
    return welfare.explain(welfare.assess(ctx), 0)


def explain_population_family(
    *, population: Population, on: date, parameters: ParameterSet | None = None
) -> FamilyEvaluation:
    """Evaluate a one-family Population (e.g. loaded from the database as columns), explained.

    Decisions come from the same short-circuit evaluation as the population mode; each
    decision's `conditions` are computed from the retained context on first access (all the
    rule's conditions on all the family's units at once), so callers that only need the
    decisions do not pay for the explanations.
    """
    parameters = parameters or default_parameters()
    if population.n_families != 1:
        raise ValueError("explain_population_family expects exactly one family")
    ctx = Context(population, on, parameters, explain=True)
    family_id = population.family_ids[0] if population.family_ids is not None else 0
    person_ids = (
        population.person_ids
        if population.person_ids is not None
        else list(range(population.n_persons))
    )
    version = parameters.version
    decisions: list[Decision] = []
    new = _new_decision
    for rule in RULES:
        result = outcome(ctx, rule)
        units = _FAMILY_UNIT if rule.unit == FAMILY else person_ids
        load = partial(explain_rule, ctx, rule)
        code, kind, rule_version, reference = rule.code, rule.kind, rule.version, rule.reference
        # Every unit starts as "not eligible" (one comprehension, no per-unit branching), then
        # the few eligible units are replaced, keeping their Explanation.
        batch = [
            new(
                Decision,
                (
                    code,
                    kind,
                    family_id,
                    person_id,
                    False,
                    0,
                    None,
                    None,
                    Explanation(load, row),
                    (),
                    rule_version,
                    version,
                    reference,
                ),
            )
            for row, person_id in enumerate(units)
        ]
        if len(result.rows):
            award = result.award
            amounts, starts, ends = award.amount.tolist(), award.start.tolist(), award.end.tolist()
            factor_columns = [
                (name, _column(v, len(amounts), fmt)) for name, (fmt, v) in award.factors.items()
            ]
            for i, row in enumerate(result.rows.tolist()):
                batch[row] = new(
                    Decision,
                    (
                        code,
                        kind,
                        family_id,
                        batch[row][3],
                        True,
                        amounts[i],
                        _date(starts[i]),
                        _date(ends[i]),
                        batch[row][8],
                        tuple((name, col[i]) for name, col in factor_columns),
                        rule_version,
                        version,
                        reference,
                    ),
                )
        decisions += batch
    assessment = welfare.explain(welfare.assess(ctx), 0)
    return FamilyEvaluation(family_id, on, version, tuple(decisions), assessment)


_FAMILY_UNIT = (None,)
# NamedTuple's generated __new__ is Python code; the C tuple constructor takes the same fields
# in order and is several times faster, which shows with ~50 decisions per family and the
# ~160 conditions a screen of entitlements explains.
_new_decision = _new_condition = tuple.__new__


def _evaluate_chunk(
    population: Population, on: date, parameters: ParameterSet
) -> tuple[dict[str, Outcome], welfare.WelfareColumns]:
    ctx = Context(population, on, parameters, explain=False)
    outcomes = {rule.code: outcome(ctx, rule) for rule in RULES}
    return outcomes, welfare.assess(ctx)


def _chunks(n: int, workers: int) -> list[tuple[int, int]]:
    workers = max(1, min(workers, n)) if n else 1
    bounds = np.linspace(0, n, workers + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def _concat_welfare(columns: list[welfare.WelfareColumns]) -> welfare.WelfareColumns:
    first = columns[0]
    return welfare.WelfareColumns(
        {c: np.concatenate([w.scores[c] for w in columns]) for c in first.scores},
        np.concatenate([w.total for w in columns]),
        np.concatenate([w.level for w in columns]),
        {
            c: {k: np.concatenate([w.facts[c][k] for w in columns]) for k in first.facts[c]}
            for c in first.facts
        },
    )


@lru_cache(maxsize=65536)
def _date(day: int) -> date | None:
    return from_day(day)


def _column(values: Any, n: int, fmt: Format) -> list[Any]:
    """A value or threshold column (array, or one scalar for every unit) as plain Python values."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        items: list[Any] = values.tolist()
    else:
        item = values.item() if isinstance(values, np.generic | np.ndarray) else values
        items = [item] * n
    if fmt == DATE:
        return [_date(v) if type(v) is int else v for v in items]
    if fmt == BOOL:
        return [v if v is None else bool(v) for v in items]
    if isinstance(fmt, tuple):
        return [fmt[v] if isinstance(v, int) else v for v in items]
    return items
