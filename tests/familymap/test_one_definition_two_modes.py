"""One definition, two modes: a family evaluated alone (explained) and the same family embedded
in a population of random families (vectorised) get identical decisions and welfare."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from familymap.engine.dates import from_day
from familymap.engine.evaluate import evaluate_family, evaluate_population, family_welfare
from familymap.engine.population import Population
from familymap.situation import AWARDS, EMPLOYMENT, REGIONS, ROLES, Family, Housing, Person
from familymap.welfare import CRITERIA, LEVELS

DATES = [date(2025, 7, 1), date(2026, 2, 28), date(2024, 12, 31), date(2025, 9, 1)]
ANCHOR = date(2025, 7, 1)


def near(days_before: int, days_after: int = 0):
    return st.integers(-days_before, days_after).map(lambda d: ANCHOR + timedelta(days=d))


# Births cluster where the rules have boundaries: infants (12 and 18 months), school and
# student ages, pension ages (61/63), the very old.
BIRTHS = st.one_of(
    st.dates(date(2023, 6, 1), date(2026, 2, 28)),
    st.dates(date(2002, 1, 1), date(2020, 12, 31)),
    st.dates(date(1960, 1, 1), date(1966, 12, 31)),
    st.dates(date(1930, 1, 1), date(2001, 12, 31)),
)

PERSON = st.builds(
    Person,
    person_id=st.just("?"),
    iin=st.just("000000000000"),
    birth_date=BIRTHS,
    sex=st.sampled_from(["M", "F"]),
    role=st.sampled_from(ROLES),
    date_of_death=st.one_of(st.none(), st.none(), st.none(), near(800, 200)),
    monthly_income=st.one_of(st.just(0), st.integers(0, 60_000_000), st.integers(0, 3_000_000)),
    social_contributions_months=st.integers(0, 24),
    employment=st.sampled_from(EMPLOYMENT),
    job_lost_on=st.one_of(st.none(), near(60, 10)),
    registered_unemployed=st.booleans(),
    disability_group=st.sampled_from([None, None, None, 1, 2, 3]),
    disability_child=st.booleans(),
    disability_established_on=st.one_of(st.none(), near(400, 100)),
    working_capacity_loss_pct=st.sampled_from([0, 0, 29, 30, 55, 100]),
    full_time_student=st.booleans(),
    school_grade=st.one_of(st.none(), st.integers(1, 11)),
    kindergarten=st.booleans(),
    insured=st.booleans(),
    polyclinic_attached=st.booleans(),
    chronic_conditions=st.lists(st.sampled_from(["E11", "I10", "J45"]), max_size=4).map(tuple),
    award=st.sampled_from(AWARDS),
    kandas_until=st.one_of(st.none(), near(60, 300)),
)

FAMILY = st.builds(
    Family,
    family_id=st.just("?"),
    region=st.sampled_from(REGIONS),
    members=st.lists(PERSON, min_size=1, max_size=8).map(tuple),
    housing=st.builds(
        Housing,
        owned=st.booleans(),
        area_m2=st.integers(0, 200),
        rooms=st.integers(0, 6),
        in_social_housing_queue=st.booleans(),
    ),
)


def with_ids(families: list[Family]) -> list[Family]:
    """Give every family and person a unique id (the strategies leave placeholders)."""
    out = []
    for i, f in enumerate(families):
        members = tuple(
            dataclasses.replace(p, person_id=f"f{i}p{j}") for j, p in enumerate(f.members)
        )
        out.append(dataclasses.replace(f, family_id=f"f{i}", members=members))
    return out


def from_population(result, population: Population, family_row: int) -> dict:
    """Eligible decisions of one family in a PopulationResult: (programme, unit) -> (amount, start, end)."""
    a = int(population.family_start[family_row])
    b = a + int(population.family_size[family_row])
    out = {}
    for code, columns in result.rules.items():
        for i, row in enumerate(columns.index.tolist()):
            if columns.unit == "family" and row == family_row:
                unit = None
            elif columns.unit == "person" and a <= row < b:
                assert population.person_ids is not None  # from_families names every person
                unit = population.person_ids[row]
            else:
                continue
            out[(code, unit)] = (
                int(columns.amount_tiyn[i]),
                from_day(int(columns.period_start[i])),
                from_day(int(columns.period_end[i])),
            )
    return out


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    target=FAMILY,
    before=st.lists(FAMILY, max_size=3),
    after=st.lists(FAMILY, max_size=3),
    on=st.sampled_from(DATES),
)
def test_single_family_and_population_modes_agree(target, before, after, on):
    families = with_ids([*before, target, *after])
    row = len(before)
    alone = evaluate_family(family=families[row], on=on)
    single = {
        (d.programme, d.person_id): (d.amount_tiyn, d.period_start, d.period_end)
        for d in alone.decisions
        if d.eligible
    }
    # Every condition explained, and the explanation agrees with each verdict.
    for d in alone.decisions:
        assert all(c.passed for c in d.conditions) is d.eligible, (d.programme, d.person_id)

    for embedded_in in (families, [families[row]]):
        population = Population.from_families(embedded_in)
        result = evaluate_population(population=population, on=on, workers=2)
        family_row = embedded_in.index(families[row])
        assert from_population(result, population, family_row) == single
        welfare = result.welfare
        assert LEVELS[int(welfare.level[family_row])] == alone.welfare.level
        assert int(welfare.total[family_row]) == alone.welfare.total
        assert [int(welfare.scores[c][family_row]) for c in CRITERIA] == [
            c.score for c in alone.welfare.criteria
        ]


def test_the_synthetic_population_agrees_family_by_family():
    """A deterministic cross-check on generated data: 300 families, each re-evaluated alone."""
    from familymap.synthetic import REFERENCE_DATE, family_from_population, synthetic_population

    population = synthetic_population(300, seed=11)
    result = evaluate_population(population=population, on=REFERENCE_DATE)
    eligible_somewhere = 0
    for row in range(population.n_families):
        fam = family_from_population(population, row)
        alone = evaluate_family(family=fam, on=REFERENCE_DATE)
        single = {
            (d.programme, d.person_id): (d.amount_tiyn, d.period_start, d.period_end)
            for d in alone.decisions
            if d.eligible
        }
        # family_from_population names persons p<row>, as `from_population` reads them back.
        named = dataclasses.replace(
            population, person_ids=[f"p{r}" for r in range(population.n_persons)]
        )
        assert from_population(result, named, row) == single, row
        eligible_somewhere += bool(single)
        assert int(result.welfare.total[row]) == alone.welfare.total
    assert eligible_somewhere > 100  # the data exercises the rules, not just "nobody qualifies"
    assert np.all(result.welfare.total <= 100)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=FAMILY, on=st.sampled_from(DATES))
def test_the_welfare_alone_is_the_welfare_of_the_whole_evaluation(family, on):
    # The wallet screen asks family_welfare, the entitlements screen evaluate_family: a family
    # must get the same level, scores and explained facts from both.
    (family,) = with_ids([family])
    assert family_welfare(family=family, on=on) == evaluate_family(family=family, on=on).welfare
