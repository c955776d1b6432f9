"""The columnar population: built from objects or straight from arrays, validated, and the
columnar result a database writer copies."""

from __future__ import annotations

import typing
from datetime import date

import numpy as np
import pytest

from familymap.engine.dates import NEVER, NO_DATE, to_day
from familymap.engine.evaluate import evaluate_population
from familymap.engine.population import (
    FAMILY_COLUMNS,
    PERSON_COLUMNS,
    FamilyColumns,
    PersonColumns,
    Population,
    PopulationError,
)
from familymap.rules import RULE_CODES
from familymap.situation import REGIONS
from familymap.synthetic import REFERENCE_DATE, synthetic_population
from tests.familymap.familymap_builders import ON, adult, child, family

TWO_FAMILIES = [
    family(
        adult("a1", monthly_income=12_300),
        child("c1", born=date(2015, 4, 4), school_grade=4),
        region="shymkent",
    ),
    family(
        adult("b1", date_of_death=date(2025, 1, 2), kandas_until=date(2025, 8, 1)), family_id="fb"
    ),
]


def test_from_arrays_with_datetime64_and_nat_equals_from_families():
    # given the same two families as a loader would read them: dates as datetime64 with NaT
    persons = {
        "family_index": np.array([0, 0, 1]),
        "birth_date": np.array(["1985-03-10", "2015-04-04", "1985-03-10"], dtype="datetime64[D]"),
        "is_female": np.array([False, True, False]),
        "role": np.array([0, 2, 0]),
        "date_of_death": np.array(["NaT", "NaT", "2025-01-02"], dtype="datetime64[D]"),
        "monthly_income": np.array([12_300, 0, 30_000_000]),
        "contribution_months": np.array([24, 0, 24]),
        "employment": np.array([0, 3, 0]),
        "school_grade": np.array([0, 4, 0]),
        "insured": np.array([True, True, True]),
        "polyclinic_attached": np.array([True, True, True]),
        "kandas_until": np.array(["NaT", "NaT", "2025-08-01"], dtype="datetime64[D]"),
    }
    families = {
        "region": np.array([REGIONS.index("shymkent"), 0]),
        "area_m2": np.array([90, 90]),
        "rooms": [3, 3],
    }
    # when
    loaded = Population.from_arrays(persons=persons, families=families)
    built = Population.from_families(TWO_FAMILIES)
    # then every column is identical, sentinels included
    for name, column in built.person.items():
        assert np.array_equal(getattr(loaded.person, name), column), name
    for name, column in built.family.items():
        assert np.array_equal(getattr(loaded.family, name), column), name
    assert loaded.person.date_of_death.tolist() == [NEVER, NEVER, to_day(date(2025, 1, 2))]
    assert loaded.person.job_lost_on.tolist() == [NO_DATE] * 3
    assert loaded.family_start.tolist() == [0, 2] and loaded.family_size.tolist() == [2, 1]


@pytest.mark.parametrize(
    "persons, message",
    [
        ({"family_index": [1, 0], "birth_date": [0, 0], "is_female": [0, 0]}, "non-decreasing"),
        (
            {"family_index": [0, 0], "birth_date": [0, 0], "is_female": [0, 0]},
            "at least one person",
        ),
        ({"family_index": [0, 1], "birth_date": [0, 0]}, "is_female"),
        (
            {
                "family_index": [0, 1],
                "birth_date": [0, 0],
                "is_female": [0, 0],
                "shoe_size": [1, 2],
            },
            "unknown",
        ),
        ({"family_index": [0, 1], "birth_date": [0], "is_female": [0, 0]}, "shape"),
    ],
)
def test_invalid_columns_are_refused_with_a_stable_code(persons, message):
    with pytest.raises(PopulationError, match=message) as error:
        Population.from_arrays(persons=persons, families={"region": [0, 0]})
    assert error.value.code == "POPULATION_INVALID"


def test_a_region_code_out_of_range_is_refused():
    with pytest.raises(PopulationError, match="region"):
        Population.from_arrays(
            persons={"family_index": [0], "birth_date": [0], "is_female": [0]},
            families={"region": [len(REGIONS)]},
        )


def test_decision_columns_are_one_flat_table():
    result = evaluate_population(population=Population.from_families(TWO_FAMILIES), on=ON)
    table = result.decision_columns()
    codes = table["programme_codes"].tolist()
    assert codes == list(RULE_CODES)
    rows = list(
        zip(
            [codes[i] for i in table["programme"]],
            table["person_row"].tolist(),
            table["family_row"].tolist(),
            table["amount_tiyn"].tolist(),
            table["period_start"].astype(object).tolist(),
            table["period_end"].astype(object).tolist(),
            strict=True,
        )
    )
    # family 0 earns almost nothing: ASP for two members; the grade-4 pupil eats free;
    # family 1's only member is dead: no kandas notice for him.
    assert ("ASP", -1, 0, 2 * 3_235_960 - 12_300, date(2025, 7, 1), date(2025, 9, 30)) in rows
    # the voucher: the 2025-26 calendar's 165 school days x lunch and breakfast (60% of it)
    meals = (76_000 + 45_600) * 165
    assert ("SCHOOL_MEALS", 1, 0, meals, date(2025, 9, 1), date(2026, 5, 31)) in rows
    assert all(code != "KANDAS_EXPIRY_NOTICE" for code, *_ in rows)
    assert table["amount_tiyn"].dtype == np.int64 and table["period_start"].dtype == np.dtype(
        "datetime64[D]"
    )
    assert len({len(v) for k, v in table.items() if k != "programme_codes"}) == 1


def test_two_workers_give_the_same_result_as_one():
    population = synthetic_population(5_000, seed=3)
    one = evaluate_population(population=population, on=REFERENCE_DATE, workers=1)
    two = evaluate_population(population=population, on=REFERENCE_DATE, workers=2)
    for code in RULE_CODES:
        a, b = one.rules[code], two.rules[code]
        assert np.array_equal(a.index, b.index), code
        assert np.array_equal(a.amount_tiyn, b.amount_tiyn), code
        assert np.array_equal(a.period_start, b.period_start) and np.array_equal(
            a.period_end, b.period_end
        ), code
    assert np.array_equal(one.welfare.total, two.welfare.total)
    assert np.array_equal(one.welfare.level, two.welfare.level)
    assert sum(one.eligible_count().values()) > 1_000


def test_a_mask_reconstructs_eligibility():
    population = synthetic_population(500, seed=5)
    result = evaluate_population(population=population, on=REFERENCE_DATE)
    asp = result.rules["ASP"]
    mask = asp.mask(population.n_families)
    assert mask.sum() == len(asp.index) and mask[asp.index].all()


@pytest.mark.parametrize(
    ("columns_type", "spec"),
    [(PersonColumns, PERSON_COLUMNS), (FamilyColumns, FAMILY_COLUMNS)],
    ids=["person", "family"],
)
def test_typed_columns_name_every_column_with_its_dtype(columns_type, spec):
    # given the annotations mypy reads (PersonColumns.birth_date: NDArray[np.int32], ...)
    hints = typing.get_type_hints(columns_type)
    typed = {name: typing.get_args(typing.get_args(hint)[1])[0] for name, hint in hints.items()}
    # then they name exactly the columns a population holds, each with the dtype it is built with
    assert typed == {name: dtype for name, (dtype, _, _) in spec.items()}


def test_a_population_reads_its_columns_through_the_typed_classes():
    # given a population built either way
    population = Population.from_families(TWO_FAMILIES)
    sliced = population.slice_families(1, 2)
    # then persons and families are the typed column classes, holding the declared dtypes
    for pop in (population, sliced):
        assert isinstance(pop.person, PersonColumns)
        assert isinstance(pop.family, FamilyColumns)
        assert pop.person.birth_date.dtype == np.int32
        assert pop.family.region.dtype == np.int8
