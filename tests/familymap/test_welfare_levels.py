"""Welfare on the five criteria: scores with their facts, and the level thresholds."""

from __future__ import annotations

from datetime import date

from familymap.engine.context import snapshot
from familymap.engine.evaluate import evaluate_family
from familymap.parameters import default_parameters
from familymap.welfare import LEVELS, _constants
from tests.familymap.familymap_builders import ON, adult, child, family, parents, person

COMFORTABLE = family(*parents(), child(born=date(2015, 1, 1), school_grade=5), area_m2=90)
# One parent, no income, uninsured, a disabled child out of school, renting 20 m2 in the queue.
STRUGGLING = family(
    adult(
        "mum",
        sex="F",
        monthly_income=0,
        employment="unemployed",
        registered_unemployed=True,
        insured=False,
    ),
    child("boy", born=date(2013, 1, 1), disability_child=True, insured=False),
    child("girl", born=date(2021, 1, 1)),
    owned=False,
    area_m2=20,
    in_social_housing_queue=True,
)


def scores(evaluation) -> dict:
    return {c.criterion: c.score for c in evaluation.welfare.criteria}


def test_a_comfortable_family_is_stable():
    evaluation = evaluate_family(family=COMFORTABLE, on=ON)
    # 600,000 tenge for 3 people is 432% of the minimum (band 100); 30 m2 each (band 100).
    assert scores(evaluation) == {
        "economic": 100,
        "health": 100,
        "housing": 100,
        "social": 100,
        "education": 100,
    }
    assert evaluation.welfare.total == 100 and evaluation.welfare.level == "stable"
    economic = evaluation.welfare.criteria[0]
    assert economic.facts == {
        "per_capita_income_tiyn": 20_000_000,
        "income_to_subsistence_pct": 432,
        "earners": 2,
    }


def test_a_struggling_family_is_in_crisis_risk_and_every_score_says_why():
    evaluation = evaluate_family(family=STRUGGLING, on=ON)
    facts = {c.criterion: c.facts for c in evaluation.welfare.criteria}
    # economic: no income (band 10) and no earner (-20) -> 0
    # health: two uninsured (-30), one disabled child (-15) -> 55
    # housing: 6 m2 each (band 40), rented (-20), queue (-10) -> 10
    # social: single adult with minors (-25), one registered unemployed (-10) -> 65
    # education: the 12-year-old is not at school (-40), the 4-year-old has no kindergarten (-15) -> 45
    assert scores(evaluation) == {
        "economic": 0,
        "health": 55,
        "housing": 10,
        "social": 65,
        "education": 45,
    }
    assert facts["health"] == {"uninsured": 2, "with_disability": 1, "chronic_not_attached": 0}
    assert facts["housing"] == {
        "area_m2_per_person": 6,
        "owned": False,
        "in_social_housing_queue": True,
    }
    assert facts["social"]["single_adult_with_minors"] is True
    assert facts["education"] == {
        "school_age_out_of_school": 1,
        "preschool_without_kindergarten": 1,
    }
    # (0*30 + 55*20 + 10*20 + 65*15 + 45*15) // 100 = 29
    assert evaluation.welfare.total == 29 and evaluation.welfare.level == "crisis_risk"


def test_a_lone_pensioner_after_a_death_loses_social_points():
    evaluation = evaluate_family(
        family=family(
            person("gran", born=date(1950, 1, 1), sex="F", monthly_income=12_000_000, insured=True),
            person("gramps", born=date(1948, 1, 1), role="spouse", date_of_death=date(2025, 3, 1)),
        ),
        on=ON,
    )
    social = evaluation.welfare.criteria[3]
    assert social.facts["lone_pensioner"] is True and social.facts["deaths_in_period"] == 1
    assert social.score == 100 - 20 - 20


def test_level_thresholds_come_from_the_parameters():
    table = _constants(snapshot(default_parameters(), ON)).level_of_total
    assert [LEVELS[table[t]] for t in (100, 80, 79, 60, 59, 40, 39, 20, 19, 0)] == [
        "stable",
        "stable",
        "satisfactory",
        "satisfactory",
        "unstable",
        "unstable",
        "crisis_risk",
        "crisis_risk",
        "crisis",
        "crisis",
    ]
