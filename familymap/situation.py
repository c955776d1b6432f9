"""The in-memory facts of one family: what the eligibility rules read.

These are plain frozen values, not ORM rows: the rules must run without a database, and a
family built here is exactly what a test table or an event from a state information system
describes. Money is integer tiyn (1 tenge = 100 tiyn) everywhere, so no amount is ever a float.

`familymap.engine.population.Population.from_families` turns a list of these into numpy
columns; a database loader can fill the same columns directly without creating these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

# 17 regions and 3 cities of republican significance. The position of a code in this tuple
# is its integer code in the columnar population, so append only: never reorder.
REGIONS: tuple[str, ...] = (
    "astana",
    "almaty_city",
    "shymkent",
    "abai",
    "akmola",
    "aktobe",
    "almaty_region",
    "atyrau",
    "east_kazakhstan",
    "zhambyl",
    "zhetysu",
    "west_kazakhstan",
    "karaganda",
    "kostanay",
    "kyzylorda",
    "mangystau",
    "pavlodar",
    "north_kazakhstan",
    "turkistan",
    "ulytau",
)

# The same "position is the integer code" convention holds for every enumeration below.
SEXES: tuple[str, ...] = ("M", "F")
ROLES: tuple[str, ...] = ("head", "spouse", "child", "dependant", "other")
EMPLOYMENT: tuple[str, ...] = ("employed", "unemployed", "job_lost", "not_in_labour_force")
# Index 0 means "no award", so that a zero-filled column is a valid "nobody has one".
AWARDS: tuple[str | None, ...] = (None, "altyn_alqa", "kumis_alqa")


@dataclass(frozen=True, slots=True)
class Person:
    """One member of a family, with every fact the rules may look at."""

    person_id: str
    iin: str
    birth_date: date
    sex: str  # 'M' | 'F'
    role: str = "other"  # one of ROLES
    date_of_death: date | None = None
    monthly_income: int = 0  # tiyn, last month, from all sources
    social_contributions_months: int = 0  # months with contributions in the last 24
    employment: str = "not_in_labour_force"  # one of EMPLOYMENT
    job_lost_on: date | None = None
    registered_unemployed: bool = False
    disability_group: int | None = None  # 1, 2, 3 or None
    disability_child: bool = False  # disabled since childhood / a child with a disability
    disability_established_on: date | None = None
    working_capacity_loss_pct: int = 0  # 0..100
    full_time_student: bool = False
    school_grade: int | None = None  # 1..11
    school_id: str | None = None
    kindergarten: bool = False
    insured: bool = False  # compulsory social health insurance
    polyclinic_attached: bool = False
    chronic_conditions: tuple[str, ...] = ()
    award: str | None = None  # one of AWARDS
    kandas_until: date | None = None

    def __post_init__(self) -> None:
        # Reject impossible facts at the boundary, so the vectorised columns never hold them.
        if self.sex not in SEXES:
            raise ValueError(f"sex must be one of {SEXES}, got {self.sex!r}")
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if self.employment not in EMPLOYMENT:
            raise ValueError(f"employment must be one of {EMPLOYMENT}, got {self.employment!r}")
        if self.award not in AWARDS:
            raise ValueError(f"award must be one of {AWARDS}, got {self.award!r}")
        if self.disability_group not in (None, 1, 2, 3):
            raise ValueError(
                f"disability_group must be 1, 2, 3 or None, got {self.disability_group!r}"
            )
        if not 0 <= self.working_capacity_loss_pct <= 100:
            raise ValueError("working_capacity_loss_pct must be within 0..100")
        if not 0 <= self.social_contributions_months <= 24:
            raise ValueError("social_contributions_months must be within 0..24")
        if self.school_grade is not None and not 1 <= self.school_grade <= 11:
            raise ValueError("school_grade must be within 1..11 or None")
        if not isinstance(self.monthly_income, int) or self.monthly_income < 0:
            raise ValueError("monthly_income must be a non-negative integer number of tiyn")


@dataclass(frozen=True, slots=True)
class Housing:
    """Where the family lives."""

    owned: bool = True
    area_m2: int = 0
    rooms: int = 0
    in_social_housing_queue: bool = False


@dataclass(frozen=True, slots=True)
class Family:
    """A family as the map sees it: region, housing and members (the deceased included)."""

    family_id: str
    region: str
    members: tuple[Person, ...]
    housing: Housing = field(default_factory=Housing)

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}")
        if not self.members:
            raise ValueError("a family has at least one member")
