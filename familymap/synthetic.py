"""A quick synthetic population and the eligibility benchmark behind `socialwallet bench eligibility`.

The generator is numpy only (no Python loop over persons) and aims at plausible shapes, not at
statistics: about 3.3 persons per family, heads of 22..85 years, children, some grandparents,
employment, incomes, disability, schooling, insurance, a few deaths, kandas and awards.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from familymap.engine.dates import NEVER, NO_DATE, from_day, to_day
from familymap.engine.population import Population
from familymap.situation import AWARDS, EMPLOYMENT, REGIONS, ROLES, Family, Housing, Person

REFERENCE_DATE = date(2025, 7, 1)
_YEAR = 365.25
_SIZE_P = np.array([0.17, 0.22, 0.21, 0.18, 0.10, 0.06, 0.03, 0.02, 0.01])


def synthetic_population(
    n_families: int, seed: int, *, reference: date = REFERENCE_DATE
) -> Population:
    """A random Kazakhstan-like population of `n_families` families, built with numpy."""
    rng = np.random.default_rng(seed)
    today = to_day(reference)
    sizes = rng.choice(np.arange(1, 10), size=n_families, p=_SIZE_P / _SIZE_P.sum()).astype(
        np.int32
    )
    family = np.repeat(np.arange(n_families, dtype=np.int32), sizes)
    n = len(family)
    start = np.zeros(n_families, dtype=np.int64)
    np.cumsum(sizes[:-1], out=start[1:])
    position = np.arange(n) - np.repeat(start, sizes)
    u = rng.random((8, n))

    # Roles: the first member heads the family, most second members are spouses, then children.
    role = np.full(n, ROLES.index("child"), dtype=np.int8)
    role[position == 0] = ROLES.index("head")
    role[(position == 1) & (u[0] < 0.8)] = ROLES.index("spouse")
    later = position >= 2
    role[later & (u[0] > 0.88)] = ROLES.index("dependant")
    role[later & (u[0] > 0.96)] = ROLES.index("other")

    head_age = np.repeat(rng.uniform(22, 85, n_families), sizes)
    age = head_age.copy()
    spouse = role == ROLES.index("spouse")
    # Reflected at 18 and 90 rather than clipped: clipping piles thousands of spouses onto one
    # birth day, which no registry has (and which would exhaust that day's IIN serials).
    spouse_age = head_age[spouse] + rng.normal(-2, 4, spouse.sum())
    spouse_age = np.where(spouse_age < 18, 36 - spouse_age, spouse_age)
    age[spouse] = np.where(spouse_age > 90, 180 - spouse_age, spouse_age)
    child = role == ROLES.index("child")
    # Children: at least 18 years younger than the head, at most 30 years old.
    max_child = np.clip(head_age[child] - 18, 0, 30)
    age[child] = max_child * u[1][child]
    dependant = role == ROLES.index("dependant")
    age[dependant] = rng.uniform(58, 92, dependant.sum())
    other = role == ROLES.index("other")
    age[other] = rng.uniform(0, 40, other.sum())
    birth = (today - age * _YEAR).astype(np.int32)

    is_female = np.where(role == ROLES.index("head"), u[2] < 0.3, u[2] < 0.5)
    head_female = np.repeat(is_female[start], sizes)
    is_female[spouse] = ~head_female[spouse]

    adult = age >= 18
    pensioner = age >= np.where(is_female, 61, 63)
    working = adult & ~pensioner
    employment = np.full(n, EMPLOYMENT.index("not_in_labour_force"), dtype=np.int8)
    employment[working & (u[3] < 0.68)] = EMPLOYMENT.index("employed")
    employment[working & (u[3] >= 0.68) & (u[3] < 0.74)] = EMPLOYMENT.index("unemployed")
    employment[working & (u[3] >= 0.74) & (u[3] < 0.77)] = EMPLOYMENT.index("job_lost")
    employed = employment == EMPLOYMENT.index("employed")
    job_lost = employment == EMPLOYMENT.index("job_lost")

    income = np.zeros(n, dtype=np.int64)
    income[employed] = (rng.lognormal(np.log(250_000), 0.6, employed.sum()) * 100).astype(np.int64)
    income[job_lost] = (
        rng.lognormal(np.log(180_000), 0.5, job_lost.sum()) * 100 * (u[4][job_lost] < 0.7)
    ).astype(np.int64)
    income[pensioner] = (rng.lognormal(np.log(110_000), 0.3, pensioner.sum()) * 100).astype(
        np.int64
    )
    # A tenth of families are poor: their incomes are cut, so that ASP has a realistic share.
    poor = np.repeat(rng.random(n_families) < 0.12, sizes)
    income[poor] //= 6
    contributions = np.where(employed, rng.integers(6, 25, n), 0)
    contributions = np.where(job_lost, rng.integers(0, 25, n), contributions).astype(np.int8)
    job_lost_on = np.where(job_lost, today - rng.integers(0, 120, n), NO_DATE).astype(np.int32)
    unemployed = employment == EMPLOYMENT.index("unemployed")
    registered = (unemployed & (u[4] < 0.5)) | (job_lost & (u[4] < 0.7))

    disability_group = np.where(u[5] < 0.03 + 0.05 * pensioner, rng.integers(1, 4, n), 0).astype(
        np.int8
    )
    disability_child = (age < 18) & (u[5] > 0.99)
    disability_on = np.where(
        (disability_group > 0) | disability_child, today - rng.integers(30, 3000, n), NO_DATE
    )
    disability_on = np.maximum(disability_on, birth).astype(np.int32)
    disability_on[(disability_group == 0) & ~disability_child] = NO_DATE
    capacity_loss = np.where(working & (u[6] < 0.01), rng.integers(30, 101, n), 0).astype(np.int8)

    student = (age >= 17) & (age < 23) & (u[6] > 0.4)
    school_grade = np.where(
        (age >= 6) & (age < 17) & (u[7] < 0.96), np.clip(age - 5, 1, 11), 0
    ).astype(np.int8)
    kindergarten = (age >= 3) & (age < 6) & (u[7] < 0.7)
    insured = u[0] < 0.86
    polyclinic = u[1] > 0.04
    chronic = np.minimum(rng.poisson(np.clip((age - 30) / 40, 0.02, 2.0)), 6).astype(np.int8)

    death = np.full(n, NEVER, dtype=np.int32)
    dies = u[2] > 1 - np.where(pensioner, 0.03, 0.002)
    death[dies] = today - rng.integers(0, 700, dies.sum())
    death = np.where(death < birth, NEVER, death).astype(np.int32)

    mother = is_female & (age > 40) & (role <= 1)
    award = np.where(mother & (u[3] < 0.02), 1, np.where(mother & (u[3] > 0.97), 2, 0)).astype(
        np.int8
    )
    kandas_until = np.where(u[4] > 0.995, today + rng.integers(-200, 500, n), NO_DATE).astype(
        np.int32
    )

    persons = {
        "family_index": family,
        "birth_date": birth,
        "is_female": is_female,
        "role": role,
        "date_of_death": death,
        "monthly_income": income,
        "contribution_months": contributions,
        "employment": employment,
        "job_lost_on": job_lost_on,
        "registered_unemployed": registered,
        "disability_group": disability_group,
        "disability_child": disability_child,
        "disability_established_on": disability_on,
        "capacity_loss_pct": capacity_loss,
        "full_time_student": student,
        "school_grade": school_grade,
        "kindergarten": kindergarten,
        "insured": insured,
        "polyclinic_attached": polyclinic,
        "chronic_count": chronic,
        "award": award,
        "kandas_until": kandas_until,
    }
    region_p = rng.dirichlet(np.full(len(REGIONS), 8.0))
    families = {
        "region": rng.choice(len(REGIONS), n_families, p=region_p).astype(np.int8),
        "housing_owned": rng.random(n_families) < 0.8,
        "area_m2": rng.integers(18, 140, n_families).astype(np.int32),
        "rooms": rng.integers(1, 6, n_families).astype(np.int16),
        "housing_queue": rng.random(n_families) < 0.05,
    }
    return Population.from_arrays(persons=persons, families=families)


def family_from_population(population: Population, family_row: int) -> Family:
    """Rebuild the `Family` object of one family row (tests and the single-family benchmark)."""
    p, f = population.person, population.family
    a = int(population.family_start[family_row])
    b = a + int(population.family_size[family_row])
    members = []
    for row in range(a, b):
        group = int(p.disability_group[row])
        grade = int(p.school_grade[row])
        born = from_day(int(p.birth_date[row]))
        assert born is not None  # birth_date is a required column: never a sentinel
        members.append(
            Person(
                person_id=str(population.person_ids[row])
                if population.person_ids is not None
                else f"p{row}",
                iin="000000000000",
                birth_date=born,
                sex="F" if p.is_female[row] else "M",
                role=ROLES[p.role[row]],
                date_of_death=from_day(int(p.date_of_death[row])),
                monthly_income=int(p.monthly_income[row]),
                social_contributions_months=int(p.contribution_months[row]),
                employment=EMPLOYMENT[p.employment[row]],
                job_lost_on=from_day(int(p.job_lost_on[row])),
                registered_unemployed=bool(p.registered_unemployed[row]),
                disability_group=group or None,
                disability_child=bool(p.disability_child[row]),
                disability_established_on=from_day(int(p.disability_established_on[row])),
                working_capacity_loss_pct=int(p.capacity_loss_pct[row]),
                full_time_student=bool(p.full_time_student[row]),
                school_grade=grade or None,
                school_id=f"school-{int(f.region[family_row])}" if grade else None,
                kindergarten=bool(p.kindergarten[row]),
                insured=bool(p.insured[row]),
                polyclinic_attached=bool(p.polyclinic_attached[row]),
                chronic_conditions=tuple(f"C{i}" for i in range(int(p.chronic_count[row]))),
                award=AWARDS[p.award[row]],
                kandas_until=from_day(int(p.kandas_until[row])),
            )
        )
    housing = Housing(
        owned=bool(f.housing_owned[family_row]),
        area_m2=int(f.area_m2[family_row]),
        rooms=int(f.rooms[family_row]),
        in_social_housing_queue=bool(f.housing_queue[family_row]),
    )
    family_id = (
        str(population.family_ids[family_row])
        if population.family_ids is not None
        else f"f{family_row}"
    )
    return Family(family_id, REGIONS[f.region[family_row]], tuple(members), housing)
