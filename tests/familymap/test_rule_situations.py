"""Situation tables: (family, date, programme, unit) -> the expected decision, per rule.

Each case is evaluated one family at a time (with explanations) AND inside a population, and
both must give the expected eligibility, amount and period. Amounts are integer tiyn worked
out by hand from the 2025 parameters: MRP 393,200 tiyn, subsistence minimum 4,622,800 tiyn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from familymap.engine.dates import from_day
from familymap.engine.evaluate import evaluate_family, evaluate_population
from familymap.engine.population import Population
from familymap.rules import RULES_BY_CODE
from tests.familymap.familymap_builders import (
    HORIZON,
    MRP,
    ON,
    adult,
    child,
    family,
    parents,
    person,
)


@dataclass(frozen=True)
class Case:
    name: str
    family: object
    programme: str
    unit: str | None  # person_id, or None for a family programme
    eligible: bool
    amount: int = 0
    period: tuple[date, date] | None = None
    on: date = ON


def days_before(n: int, on: date = ON) -> date:
    return on - timedelta(days=n)


MOTHER = adult("mother", born=date(1975, 1, 1), sex="F", role="head")
FATHER_DEAD = adult(
    "father",
    born=date(1970, 1, 1),
    role="spouse",
    date_of_death=date(2025, 3, 3),
    monthly_income=40_000_000,
    social_contributions_months=24,
)
PENSIONER_DEAD = person(
    "grandpa", born=date(1940, 5, 5), role="dependant", date_of_death=date(2025, 4, 1)
)

CASES = [
    # ----- loss of working capacity: income x loss% x 0.6, cap 150 MRP ------------------------
    Case(
        "capacity loss of exactly 30% qualifies",
        family(adult("a", working_capacity_loss_pct=30, monthly_income=20_000_000)),
        "LOSS_OF_WORKING_CAPACITY",
        "a",
        True,
        20_000_000 * 30 * 6000 // 1_000_000,
        HORIZON,
    ),
    Case(
        "capacity loss of 29% does not",
        family(adult("a", working_capacity_loss_pct=29)),
        "LOSS_OF_WORKING_CAPACITY",
        "a",
        False,
    ),
    Case(
        "capacity loss at pension age does not",
        family(adult("a", born=date(1960, 1, 1), working_capacity_loss_pct=60)),
        "LOSS_OF_WORKING_CAPACITY",
        "a",
        False,
    ),
    Case(
        "a huge income is capped at 150 MRP",
        family(adult("a", working_capacity_loss_pct=100, monthly_income=900_000_000)),
        "LOSS_OF_WORKING_CAPACITY",
        "a",
        True,
        150 * MRP,
        HORIZON,
    ),
    # ----- job loss: 45% of income, 1-3 months by contributions ---------------------------------
    Case(
        "job lost 10 days ago, registered, 12 months of contributions: 2 months",
        family(
            adult(
                "a",
                employment="job_lost",
                job_lost_on=days_before(10),
                registered_unemployed=True,
                social_contributions_months=12,
                monthly_income=20_000_000,
            )
        ),
        "JOB_LOSS",
        "a",
        True,
        9_000_000,
        (days_before(10), date(2025, 8, 20)),
    ),
    Case(
        "job lost exactly 30 days ago still qualifies, 24 months: 3 months",
        family(
            adult(
                "a", employment="job_lost", job_lost_on=days_before(30), registered_unemployed=True
            )
        ),
        "JOB_LOSS",
        "a",
        True,
        13_500_000,
        (days_before(30), date(2025, 8, 31)),
    ),
    Case(
        "job lost 31 days ago is outside the window",
        family(
            adult(
                "a", employment="job_lost", job_lost_on=days_before(31), registered_unemployed=True
            )
        ),
        "JOB_LOSS",
        "a",
        False,
    ),
    Case(
        "not registered as unemployed",
        family(adult("a", employment="job_lost", job_lost_on=days_before(5))),
        "JOB_LOSS",
        "a",
        False,
    ),
    Case(
        "5 months of contributions are not enough",
        family(
            adult(
                "a",
                employment="job_lost",
                job_lost_on=days_before(5),
                registered_unemployed=True,
                social_contributions_months=5,
            )
        ),
        "JOB_LOSS",
        "a",
        False,
    ),
    # ----- loss of breadwinner: the deceased's income x rate by dependants ----------------------
    Case(
        "two children after the father's death: 50% of his income",
        family(MOTHER, FATHER_DEAD, child(born=date(2015, 1, 1)), child(born=date(2012, 1, 1))),
        "LOSS_OF_BREADWINNER",
        None,
        True,
        20_000_000,
        HORIZON,
    ),
    Case(
        "one dependant: 40%; a 20-year-old student counts",
        family(MOTHER, FATHER_DEAD, child(born=date(2005, 1, 1), full_time_student=True)),
        "LOSS_OF_BREADWINNER",
        None,
        True,
        16_000_000,
        HORIZON,
    ),
    Case(
        "no dependants left",
        family(MOTHER, FATHER_DEAD, child(born=date(2000, 1, 1))),
        "LOSS_OF_BREADWINNER",
        None,
        False,
    ),
    Case(
        "the deceased paid no contributions",
        family(
            MOTHER,
            adult(
                "f", role="spouse", date_of_death=date(2025, 1, 1), social_contributions_months=0
            ),
            child(born=date(2015, 1, 1)),
        ),
        "LOSS_OF_BREADWINNER",
        None,
        False,
    ),
    # ----- birth benefit: 38 MRP for 1st-3rd child, 63 MRP from the 4th ------------------------
    Case(
        "a first child born last month: 38 MRP",
        family(*parents(), child("baby", born=date(2025, 6, 3))),
        "BIRTH_BENEFIT",
        "baby",
        True,
        38 * MRP,
        (date(2025, 6, 3), date(2025, 6, 3)),
    ),
    Case(
        "the 4th child: 63 MRP",
        family(
            *parents(),
            child(born=date(2012, 1, 1)),
            child(born=date(2015, 1, 1)),
            child(born=date(2019, 1, 1)),
            child("baby", born=date(2025, 5, 1)),
        ),
        "BIRTH_BENEFIT",
        "baby",
        True,
        63 * MRP,
        (date(2025, 5, 1), date(2025, 5, 1)),
    ),
    Case(
        "the 3rd child: 38 MRP",
        family(
            *parents(),
            child(born=date(2015, 1, 1)),
            child(born=date(2019, 1, 1)),
            child("baby", born=date(2025, 5, 1)),
        ),
        "BIRTH_BENEFIT",
        "baby",
        True,
        38 * MRP,
        (date(2025, 5, 1), date(2025, 5, 1)),
    ),
    Case(
        "twins as 3rd and 4th: the second twin is the 4th child",
        family(
            *parents(),
            child(born=date(2015, 1, 1)),
            child(born=date(2019, 1, 1)),
            child("twin1", born=date(2025, 5, 1)),
            child("twin2", born=date(2025, 5, 1)),
        ),
        "BIRTH_BENEFIT",
        "twin2",
        True,
        63 * MRP,
        (date(2025, 5, 1), date(2025, 5, 1)),
    ),
    Case(
        "born exactly 12 months ago: the claim period is over",
        family(*parents(), child("baby", born=date(2024, 7, 1))),
        "BIRTH_BENEFIT",
        "baby",
        False,
    ),
    # ----- childcare until 1.5 years: max(minimum by order, 40% of the parents' insured income) --
    Case(
        "a child one day short of 1.5 years: last day of the benefit",
        family(*parents(monthly_income=10_000_000), child("baby", born=date(2024, 1, 2))),
        "CHILDCARE_TO_1_5",
        "baby",
        True,
        4_000_000,
        (date(2025, 7, 1), date(2025, 7, 1)),
    ),
    Case(
        "a child exactly 1.5 years old: no longer",
        family(*parents(), child("baby", born=date(2024, 1, 1))),
        "CHILDCARE_TO_1_5",
        "baby",
        False,
    ),
    Case(
        "born 31 Aug 2024, on 28 Feb 2026: 1.5 years reached (month-end)",
        family(*parents(), child("baby", born=date(2024, 8, 31))),
        "CHILDCARE_TO_1_5",
        "baby",
        False,
        on=date(2026, 2, 28),
    ),
    Case(
        "uninsured parents: the minimum for a first child, 5.76 MRP",
        family(
            adult(social_contributions_months=0, monthly_income=0),
            child("baby", born=date(2025, 3, 15)),
        ),
        "CHILDCARE_TO_1_5",
        "baby",
        True,
        2_264_832,
        (date(2025, 7, 1), date(2026, 9, 14)),
    ),
    Case(
        "a well-paid parent is capped at 120 MRP",
        family(adult(monthly_income=500_000_000), child("baby", born=date(2025, 3, 15))),
        "CHILDCARE_TO_1_5",
        "baby",
        True,
        120 * MRP,
        (date(2025, 7, 1), date(2026, 9, 14)),
    ),
    # ----- parent of a child with a disability: 1.05 x subsistence minimum ----------------------
    Case(
        "a 10-year-old with a disability",
        family(*parents(), child("c", born=date(2015, 2, 2), disability_child=True)),
        "DISABLED_CHILD_CARER",
        "c",
        True,
        4_853_940,
        HORIZON,
    ),
    Case(
        "the child turns 18 within the horizon: the benefit stops the day before",
        family(*parents(), child("c", born=date(2007, 12, 5), disability_child=True)),
        "DISABLED_CHILD_CARER",
        "c",
        True,
        4_853_940,
        (date(2025, 7, 1), date(2025, 12, 4)),
    ),
    Case(
        "exactly 18 on the date: no longer a child",
        family(*parents(), child("c", born=date(2007, 7, 1), disability_child=True)),
        "DISABLED_CHILD_CARER",
        "c",
        False,
    ),
    Case(
        "no adult in the family to receive it",
        family(child("c", born=date(2015, 2, 2), disability_child=True)),
        "DISABLED_CHILD_CARER",
        "c",
        False,
    ),
    # ----- disability benefit by group ------------------------------------------------------------
    Case(
        "group 2: 1.5 x subsistence minimum",
        family(adult("a", disability_group=2, disability_established_on=date(2020, 1, 1))),
        "DISABILITY_BENEFIT",
        "a",
        True,
        6_934_200,
        HORIZON,
    ),
    Case(
        "group 1 since childhood: 2.05 x subsistence minimum",
        family(
            adult(
                "a",
                disability_group=1,
                disability_child=True,
                disability_established_on=date(2010, 1, 1),
            )
        ),
        "DISABILITY_BENEFIT",
        "a",
        True,
        9_476_740,
        HORIZON,
    ),
    Case(
        "established later than the date",
        family(adult("a", disability_group=3, disability_established_on=date(2025, 8, 1))),
        "DISABILITY_BENEFIT",
        "a",
        False,
    ),
    Case(
        "established mid-month: the period starts on that day",
        family(adult("a", disability_group=3, disability_established_on=date(2025, 7, 1))),
        "DISABILITY_BENEFIT",
        "a",
        True,
        4_715_256,
        HORIZON,
    ),
    Case("no disability group", family(adult("a")), "DISABILITY_BENEFIT", "a", False),
    # ----- large family: 4+ children under 18 (23 if studying) -------------------------------------
    Case(
        "three children are not enough",
        family(*parents(), *(child(born=date(2010 + i, 1, 1)) for i in range(3))),
        "LARGE_FAMILY",
        None,
        False,
    ),
    Case(
        "the 4th child: 16.03 MRP",
        family(*parents(), *(child(born=date(2010 + i, 1, 1)) for i in range(4))),
        "LARGE_FAMILY",
        None,
        True,
        6_302_996,
        HORIZON,
    ),
    Case(
        "five children: 16.03 + 3.21 MRP",
        family(*parents(), *(child(born=date(2010 + i, 1, 1)) for i in range(5))),
        "LARGE_FAMILY",
        None,
        True,
        6_302_996 + 1_262_172,
        HORIZON,
    ),
    Case(
        "a 20-year-old full-time student counts as the 4th",
        family(
            *parents(),
            *(child(born=date(2010 + i, 1, 1)) for i in range(3)),
            child(born=date(2005, 1, 1), full_time_student=True),
        ),
        "LARGE_FAMILY",
        None,
        True,
        6_302_996,
        HORIZON,
    ),
    Case(
        "a 20-year-old not studying does not",
        family(
            *parents(),
            *(child(born=date(2010 + i, 1, 1)) for i in range(3)),
            child(born=date(2005, 1, 1)),
        ),
        "LARGE_FAMILY",
        None,
        False,
    ),
    Case(
        "a child who turns 18 on the date no longer counts",
        family(
            *parents(),
            *(child(born=date(2010 + i, 1, 1)) for i in range(3)),
            child(born=date(2007, 7, 1)),
        ),
        "LARGE_FAMILY",
        None,
        False,
    ),
    # ----- Altyn / Kumis alqa mothers ---------------------------------------------------------------
    Case(
        "Altyn alqa: 6.4 MRP",
        family(adult("m", sex="F", award="altyn_alqa")),
        "MOTHER_AWARD",
        "m",
        True,
        2_516_480,
        HORIZON,
    ),
    Case(
        "Kumis alqa: 5.2 MRP",
        family(adult("m", sex="F", award="kumis_alqa")),
        "MOTHER_AWARD",
        "m",
        True,
        2_044_640,
        HORIZON,
    ),
    Case("no pendant", family(adult("m", sex="F")), "MOTHER_AWARD", "m", False),
    Case(
        "a deceased holder",
        family(adult("m", sex="F", award="altyn_alqa", date_of_death=date(2025, 1, 1)), adult()),
        "MOTHER_AWARD",
        "m",
        False,
    ),
    # ----- targeted social assistance: per-capita income strictly below 70% of the minimum -------
    Case(
        "per-capita income exactly at the threshold: not eligible",
        family(
            adult(monthly_income=9_707_880),
            child(born=date(2015, 1, 1)),
            child(born=date(2017, 1, 1)),
        ),
        "ASP",
        None,
        False,
    ),
    Case(
        "one tiyn below the threshold: the gap, 1 tiyn",
        family(
            adult(monthly_income=9_707_879),
            child(born=date(2015, 1, 1)),
            child(born=date(2017, 1, 1)),
        ),
        "ASP",
        None,
        True,
        1,
        (date(2025, 7, 1), date(2025, 9, 30)),
    ),
    Case(
        "no income, three members: 3 x 70% of the minimum",
        family(
            adult(monthly_income=0, employment="unemployed", registered_unemployed=True),
            child(born=date(2015, 1, 1)),
            child(born=date(2017, 1, 1)),
        ),
        "ASP",
        None,
        True,
        3 * 3_235_960,
        (date(2025, 7, 1), date(2025, 9, 30)),
    ),
    Case(
        "an idle able-bodied adult (unemployed, not registered) blocks it",
        family(adult(monthly_income=0, employment="unemployed"), child(born=date(2015, 1, 1))),
        "ASP",
        None,
        False,
    ),
    Case(
        "a deceased member's income does not count, nor the member",
        family(
            adult(monthly_income=3_000_000),
            adult(role="spouse", monthly_income=90_000_000, date_of_death=date(2025, 2, 1)),
        ),
        "ASP",
        None,
        True,
        235_960,
        (date(2025, 7, 1), date(2025, 9, 30)),
    ),
    # ----- funeral payment: 52.4 MRP for a pensioner or a person with a disability ----------------
    Case(
        "a pensioner who died three months ago",
        family(MOTHER, PENSIONER_DEAD),
        "FUNERAL_PAYMENT",
        "grandpa",
        True,
        20_603_680,
        (date(2025, 4, 1), date(2025, 4, 1)),
    ),
    Case(
        "died exactly 12 months ago: too late",
        family(
            MOTHER,
            person("g", born=date(1940, 5, 5), role="dependant", date_of_death=date(2024, 7, 1)),
        ),
        "FUNERAL_PAYMENT",
        "g",
        False,
    ),
    Case(
        "a young adult without a disability",
        family(
            MOTHER, adult("s", role="other", born=date(1995, 1, 1), date_of_death=date(2025, 5, 1))
        ),
        "FUNERAL_PAYMENT",
        "s",
        False,
    ),
    Case(
        "a young adult with a disability",
        family(
            MOTHER,
            adult(
                "s",
                role="other",
                born=date(1995, 1, 1),
                disability_group=2,
                date_of_death=date(2025, 5, 1),
            ),
        ),
        "FUNERAL_PAYMENT",
        "s",
        True,
        20_603_680,
        (date(2025, 5, 1), date(2025, 5, 1)),
    ),
    Case(
        "nobody left alive in the family",
        family(PENSIONER_DEAD),
        "FUNERAL_PAYMENT",
        "grandpa",
        False,
    ),
    # ----- school meals: grades 1-4 all, 5-11 from ASP or large families --------------------------
    Case(
        "grade 3, any family: 165 school days (2025-26 calendar) x Astana's lunch and breakfast",
        family(*parents(), child("s", born=date(2016, 3, 3), school_grade=3, school_id="sch1")),
        "SCHOOL_MEALS",
        "s",
        True,
        (98_000 + 58_800) * 165,
        (date(2025, 9, 1), date(2026, 5, 31)),
    ),
    Case(
        "grade 7 from a comfortable family: no",
        family(*parents(), child("s", born=date(2012, 3, 3), school_grade=7)),
        "SCHOOL_MEALS",
        "s",
        False,
    ),
    Case(
        "grade 7 from an ASP family in Turkistan",
        family(
            adult(monthly_income=2_000_000),
            child("s", born=date(2012, 3, 3), school_grade=7),
            region="turkistan",
        ),
        "SCHOOL_MEALS",
        "s",
        True,
        (68_000 + 40_800) * 165,
        (date(2025, 9, 1), date(2026, 5, 31)),
    ),
    Case(
        "grade 7 from a large family",
        family(
            *parents(),
            child("s", born=date(2012, 3, 3), school_grade=7),
            *(child(born=date(2014 + i, 1, 1)) for i in range(3)),
        ),
        "SCHOOL_MEALS",
        "s",
        True,
        (98_000 + 58_800) * 165,
        (date(2025, 9, 1), date(2026, 5, 31)),
    ),
    Case(
        "in May the voucher is for the current school year",
        family(*parents(), child("s", born=date(2016, 3, 3), school_grade=3)),
        "SCHOOL_MEALS",
        "s",
        True,
        (90_000 + 54_000) * 163,  # the 2024-25 calendar's school days, 2024-25 prices
        (date(2024, 9, 1), date(2025, 5, 31)),
        on=date(2025, 5, 15),
    ),
    Case(
        "no published calendar for the school year: nothing to price, no voucher",
        family(*parents(), child("s", born=date(2016, 3, 3), school_grade=3)),
        "SCHOOL_MEALS",
        "s",
        False,
        on=date(2024, 3, 1),
    ),
    # ----- medicines: chronic, attached, insured ----------------------------------------------------
    Case(
        "two chronic conditions: 2 x 3 MRP a month",
        family(adult("a", chronic_conditions=("E11", "I10"))),
        "MEDICINES",
        "a",
        True,
        6 * MRP,
        (date(2025, 7, 1), date(2025, 7, 31)),
    ),
    Case(
        "four conditions: capped at 10 MRP",
        family(adult("a", chronic_conditions=("E11", "I10", "J45", "N18"))),
        "MEDICINES",
        "a",
        True,
        10 * MRP,
        (date(2025, 7, 1), date(2025, 7, 31)),
    ),
    Case(
        "not insured",
        family(adult("a", chronic_conditions=("E11",), insured=False)),
        "MEDICINES",
        "a",
        False,
    ),
    Case(
        "not attached to a polyclinic",
        family(adult("a", chronic_conditions=("E11",), polyclinic_attached=False)),
        "MEDICINES",
        "a",
        False,
    ),
    # ----- notices ------------------------------------------------------------------------------------
    Case(
        "a man turning 63 in 10 days",
        family(adult("a", born=date(1962, 7, 11))),
        "PENSION_AGE_NOTICE",
        "a",
        True,
        0,
        (date(2025, 7, 11), date(2025, 7, 11)),
    ),
    Case(
        "a woman turning 61 in exactly 30 days",
        family(adult("a", sex="F", born=date(1964, 7, 31))),
        "PENSION_AGE_NOTICE",
        "a",
        True,
        0,
        (date(2025, 7, 31), date(2025, 7, 31)),
    ),
    Case(
        "a woman turning 61 in 31 days: not yet",
        family(adult("a", sex="F", born=date(1964, 8, 1))),
        "PENSION_AGE_NOTICE",
        "a",
        False,
    ),
    Case(
        "a man who turned 63 forty days ago: already past",
        family(adult("a", born=date(1962, 5, 22))),
        "PENSION_AGE_NOTICE",
        "a",
        False,
    ),
    Case(
        "kandas status expiring in exactly 60 days",
        family(adult("a", kandas_until=date(2025, 8, 30))),
        "KANDAS_EXPIRY_NOTICE",
        "a",
        True,
        0,
        (date(2025, 8, 30), date(2025, 8, 30)),
    ),
    Case(
        "kandas status expiring in 61 days",
        family(adult("a", kandas_until=date(2025, 8, 31))),
        "KANDAS_EXPIRY_NOTICE",
        "a",
        False,
    ),
    Case(
        "kandas status expired yesterday",
        family(adult("a", kandas_until=date(2025, 6, 30))),
        "KANDAS_EXPIRY_NOTICE",
        "a",
        False,
    ),
    Case(
        "kandas status granted for three years",
        family(adult("a", kandas_until=date(2028, 7, 1))),
        "KANDAS_STATUS_NOTICE",
        "a",
        True,
        0,
        (date(2028, 7, 1), date(2028, 7, 1)),
    ),
    Case(
        "kandas status valid through today",
        family(adult("a", kandas_until=ON)),
        "KANDAS_STATUS_NOTICE",
        "a",
        True,
        0,
        (ON, ON),
    ),
    Case(
        "kandas status expired yesterday is not notified as valid",
        family(adult("a", kandas_until=date(2025, 6, 30))),
        "KANDAS_STATUS_NOTICE",
        "a",
        False,
    ),
    Case(
        "no kandas status",
        family(adult("a")),
        "KANDAS_STATUS_NOTICE",
        "a",
        False,
    ),
    Case(
        "a registered unemployed adult",
        family(adult("a", employment="unemployed", registered_unemployed=True)),
        "EMPLOYMENT_MEASURES_NOTICE",
        "a",
        True,
        0,
        (ON, ON),
    ),
    Case(
        "a registered unemployed adult's notice is about the day the job was lost",
        family(
            adult(
                "a",
                employment="job_lost",
                job_lost_on=date(2025, 6, 11),
                registered_unemployed=True,
            )
        ),
        "EMPLOYMENT_MEASURES_NOTICE",
        "a",
        True,
        0,
        (date(2025, 6, 11), date(2025, 6, 11)),
    ),
    Case(
        "a registered 15-year-old is too young",
        family(
            adult(), person("t", born=date(2010, 1, 1), role="child", registered_unemployed=True)
        ),
        "EMPLOYMENT_MEASURES_NOTICE",
        "t",
        False,
    ),
    Case(
        "a registered pensioner is past working age",
        family(adult("a", born=date(1955, 1, 1), registered_unemployed=True)),
        "EMPLOYMENT_MEASURES_NOTICE",
        "a",
        False,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_one_family_gives_the_expected_decision(case: Case):
    evaluation = evaluate_family(family=case.family, on=case.on)
    decision = evaluation.decision(case.programme, case.unit)
    assert decision.eligible is case.eligible
    assert decision.amount_tiyn == (case.amount if case.eligible else 0)
    assert (decision.period_start, decision.period_end) == (
        case.period if case.eligible else (None, None)
    )
    # The explanation agrees with the verdict: eligible exactly when every condition passed.
    assert all(c.passed for c in decision.conditions) is case.eligible
    assert decision.parameters_version == evaluation.parameters_version


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_population_gives_the_same_decision(case: Case):
    # The family sits between two unrelated families, so row offsets are exercised too.
    neighbours = family(*parents(), child(born=date(2025, 6, 1))), family(adult(disability_group=1))
    population = Population.from_families([neighbours[0], case.family, neighbours[1]])
    result = evaluate_population(population=population, on=case.on)
    columns = result.rules[case.programme]
    if RULES_BY_CODE[case.programme].unit == "family":
        unit_row = 1
    else:
        unit_row = list(population.person_ids).index(case.unit)
    hits = list(columns.index).count(unit_row)
    assert hits == (1 if case.eligible else 0)
    if case.eligible:
        i = list(columns.index).index(unit_row)
        assert int(columns.amount_tiyn[i]) == case.amount
        assert (
            from_day(int(columns.period_start[i])),
            from_day(int(columns.period_end[i])),
        ) == case.period


def test_every_rule_has_at_least_three_situations():
    counts = {code: 0 for code in RULES_BY_CODE}
    for case in CASES:
        counts[case.programme] += 1
    assert min(counts.values()) >= 3, counts
