"""The whole population as numpy columns: one row per person, one row per family.

Persons are stored grouped by family, in family order (family 0's members first, then
family 1's...). That single layout rule is what makes per-family sums cheap (a cumulative sum
read at the family boundaries, no sort, no hash) and lets the engine split the population into
contiguous chunks. A database loader gets it for free with `ORDER BY family_id, person_id`.

Build it either from `Family` objects (`from_families`, for one family or a test) or straight
from arrays (`from_arrays`, for a loader that never creates Python objects per person). The
column tables below are the contract for the latter.

Exceptions::

    ValueError
     └── PopulationError     .code == "POPULATION_INVALID"
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from familymap.engine.dates import NEVER, NO_DATE, to_day
from familymap.situation import AWARDS, EMPLOYMENT, REGIONS, ROLES, Family, Person


class PopulationError(ValueError):
    """Columns that cannot form a population; `code` is stable."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = "POPULATION_INVALID"


# name -> (dtype, default, missing-date sentinel or None). Date columns are int32 day numbers
# (see engine.dates) or datetime64[D] with NaT for "missing". Enumerations are the index of the
# value in the tuples of familymap.situation (ROLES, EMPLOYMENT, AWARDS, REGIONS).
# name -> (dtype, default or None if required, sentinel for a missing date or None)
ColumnSpec: TypeAlias = dict[str, tuple[type[np.generic], Any, int | None]]

PERSON_COLUMNS: ColumnSpec = {
    "family_index": (np.int32, None, None),  # 0..n_families-1, non-decreasing
    "birth_date": (np.int32, None, None),
    "is_female": (np.bool_, None, None),
    "role": (np.int8, ROLES.index("other"), None),
    "date_of_death": (np.int32, NEVER, NEVER),
    "monthly_income": (np.int64, 0, None),  # tiyn
    "contribution_months": (np.int8, 0, None),  # 0..24
    "employment": (np.int8, EMPLOYMENT.index("not_in_labour_force"), None),
    "job_lost_on": (np.int32, NO_DATE, NO_DATE),
    "registered_unemployed": (np.bool_, False, None),
    "disability_group": (np.int8, 0, None),  # 0 = none, 1..3
    "disability_child": (np.bool_, False, None),
    "disability_established_on": (np.int32, NO_DATE, NO_DATE),
    "capacity_loss_pct": (np.int8, 0, None),
    "full_time_student": (np.bool_, False, None),
    "school_grade": (np.int8, 0, None),  # 0 = not at school, 1..11
    "kindergarten": (np.bool_, False, None),
    "insured": (np.bool_, False, None),
    "polyclinic_attached": (np.bool_, False, None),
    "chronic_count": (np.int8, 0, None),
    "award": (np.int8, 0, None),  # index into AWARDS, 0 = none
    "kandas_until": (np.int32, NO_DATE, NO_DATE),
}
FAMILY_COLUMNS: ColumnSpec = {
    "region": (np.int8, None, None),
    "housing_owned": (np.bool_, True, None),
    "area_m2": (np.int32, 0, None),
    "rooms": (np.int16, 0, None),
    "housing_queue": (np.bool_, False, None),
}


class Columns:
    """Named numpy columns read as attributes (`pop.person.birth_date`), all of one length."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.__dict__.update(columns)

    def items(self) -> ItemsView[str, np.ndarray]:
        """(name, array) pairs."""
        return self.__dict__.items()

    def names(self) -> list[str]:
        """Column names."""
        return list(self.__dict__)


class PersonColumns(Columns):
    """PERSON_COLUMNS read as attributes; the annotations only type them (a test keeps the two
    lists equal)."""

    family_index: NDArray[np.int32]
    birth_date: NDArray[np.int32]
    is_female: NDArray[np.bool_]
    role: NDArray[np.int8]
    date_of_death: NDArray[np.int32]
    monthly_income: NDArray[np.int64]
    contribution_months: NDArray[np.int8]
    employment: NDArray[np.int8]
    job_lost_on: NDArray[np.int32]
    registered_unemployed: NDArray[np.bool_]
    disability_group: NDArray[np.int8]
    disability_child: NDArray[np.bool_]
    disability_established_on: NDArray[np.int32]
    capacity_loss_pct: NDArray[np.int8]
    full_time_student: NDArray[np.bool_]
    school_grade: NDArray[np.int8]
    kindergarten: NDArray[np.bool_]
    insured: NDArray[np.bool_]
    polyclinic_attached: NDArray[np.bool_]
    chronic_count: NDArray[np.int8]
    award: NDArray[np.int8]
    kandas_until: NDArray[np.int32]


class FamilyColumns(Columns):
    """FAMILY_COLUMNS read as attributes (typed like PersonColumns)."""

    region: NDArray[np.int8]
    housing_owned: NDArray[np.bool_]
    area_m2: NDArray[np.int32]
    rooms: NDArray[np.int16]
    housing_queue: NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class Population:
    """Columnar facts of many families; build with `from_arrays` or `from_families`."""

    person: PersonColumns  # PERSON_COLUMNS, one row per person
    family: FamilyColumns  # FAMILY_COLUMNS, one row per family
    family_start: np.ndarray  # int64, first person row of each family
    family_size: np.ndarray  # int32, members of each family (the deceased included)
    # Any sequence of ids: a list, or a numpy array from a database loader.
    person_ids: Sequence[Any] | np.ndarray | None = None
    family_ids: Sequence[Any] | np.ndarray | None = None

    @property
    def n_persons(self) -> int:
        return len(self.person.family_index)

    @property
    def n_families(self) -> int:
        return len(self.family_start)

    @classmethod
    def from_arrays(
        cls,
        *,
        persons: Mapping[str, Any],
        families: Mapping[str, Any],
        person_ids: Sequence[Any] | np.ndarray | None = None,
        family_ids: Sequence[Any] | np.ndarray | None = None,
        copy: bool = False,
    ) -> Population:
        """Validate and type columns (see PERSON_COLUMNS / FAMILY_COLUMNS) into a Population."""
        if "family_index" not in persons:
            raise PopulationError("persons need a family_index column")
        n = len(persons["family_index"])
        person_cols = _typed(persons, PERSON_COLUMNS, n, copy=copy, table="person")
        n_families = _length(families, FAMILY_COLUMNS)
        family_cols = _typed(families, FAMILY_COLUMNS, n_families, copy=copy, table="family")
        index = person_cols["family_index"]
        if n and (index[0] < 0 or index[-1] >= n_families or np.any(index[1:] < index[:-1])):
            raise PopulationError("family_index must be non-decreasing within 0..n_families-1")
        size = np.bincount(index, minlength=n_families).astype(np.int32)
        if np.any(size == 0):
            raise PopulationError("every family needs at least one person row")
        if np.any(family_cols["region"] < 0) or np.any(family_cols["region"] >= len(REGIONS)):
            raise PopulationError("region code out of range")
        start = np.zeros(n_families, dtype=np.int64)
        np.cumsum(size[:-1], out=start[1:])
        return cls(
            PersonColumns(person_cols),
            FamilyColumns(family_cols),
            start,
            size,
            person_ids,
            family_ids,
        )

    @classmethod
    def from_families(cls, families: Iterable[Family]) -> Population:
        """Columns of the given families, in the given order, persons in member order."""
        families = list(families)
        rows = [_person_row(i, p) for i, f in enumerate(families) for p in f.members]
        # Family and Person validate their own fields, so the columns only need their dtypes.
        person = PersonColumns(
            {
                name: np.array(column, dtype=spec[0])
                for (name, spec), column in zip(
                    PERSON_COLUMNS.items(), zip(*rows, strict=True), strict=True
                )
            }
        )
        family = FamilyColumns(
            {
                name: np.array(column, dtype=spec[0])
                for (name, spec), column in zip(
                    FAMILY_COLUMNS.items(),
                    zip(*map(_family_row, families), strict=True),
                    strict=True,
                )
            }
        )
        size = np.array([len(f.members) for f in families], dtype=np.int32)
        start = np.zeros(len(families), dtype=np.int64)
        np.cumsum(size[:-1], out=start[1:])
        person_ids = [p.person_id for f in families for p in f.members]
        return cls(person, family, start, size, person_ids, [f.family_id for f in families])

    def slice_families(self, first: int, stop: int) -> Population:
        """Families first..stop-1 as a population of views (row indices rebased to 0)."""
        a = int(self.family_start[first]) if first < self.n_families else self.n_persons
        b = int(self.family_start[stop]) if stop < self.n_families else self.n_persons
        persons = {k: v[a:b] for k, v in self.person.items()}
        persons["family_index"] = persons["family_index"] - np.int32(first)
        families = {k: v[first:stop] for k, v in self.family.items()}
        return Population(
            PersonColumns(persons),
            FamilyColumns(families),
            self.family_start[first:stop] - a,
            self.family_size[first:stop],
            None if self.person_ids is None else self.person_ids[a:b],
            None if self.family_ids is None else self.family_ids[first:stop],
        )


def _length(columns: Mapping[str, Any], spec: ColumnSpec) -> int:
    for name in spec:
        if name in columns:
            return len(columns[name])
    raise PopulationError("no family columns given")


def _typed(
    columns: Mapping[str, Any], spec: ColumnSpec, n: int, *, copy: bool, table: str
) -> dict[str, np.ndarray]:
    unknown = set(columns) - set(spec)
    if unknown:
        raise PopulationError(f"unknown {table} columns: {sorted(unknown)}")
    typed: dict[str, np.ndarray] = {}
    for name, (dtype, default, sentinel) in spec.items():
        if name not in columns:
            if default is None:
                raise PopulationError(f"{table} column {name!r} is required")
            typed[name] = np.full(n, default, dtype=dtype)
            continue
        raw = columns[name]
        if isinstance(raw, np.ndarray) and raw.dtype.kind == "M":
            # datetime64 from a loader: NaT becomes the column's sentinel.
            days = raw.astype("datetime64[D]")
            missing = np.isnat(days)
            arr = days.astype(np.int64)
            arr[missing] = sentinel if sentinel is not None else 0
            if sentinel is None and missing.any():
                raise PopulationError(f"{table} column {name!r} must not contain NaT")
            arr = arr.astype(dtype)
        else:
            arr = np.array(raw, dtype=dtype, copy=copy or None)
        if arr.shape != (n,):
            raise PopulationError(f"{table} column {name!r} has shape {arr.shape}, expected ({n},)")
        typed[name] = arr
    return typed


def _day(d: date | None, missing: int) -> int:
    return missing if d is None else to_day(d)


_ROLE = {v: i for i, v in enumerate(ROLES)}
_EMPLOYMENT = {v: i for i, v in enumerate(EMPLOYMENT)}
_AWARD = {v: i for i, v in enumerate(AWARDS)}
_REGION = {v: i for i, v in enumerate(REGIONS)}


def _person_row(family_index: int, p: Person) -> tuple[int | bool, ...]:
    """One person's values in PERSON_COLUMNS order."""
    return (
        family_index,
        to_day(p.birth_date),
        p.sex == "F",
        _ROLE[p.role],
        _day(p.date_of_death, NEVER),
        p.monthly_income,
        p.social_contributions_months,
        _EMPLOYMENT[p.employment],
        _day(p.job_lost_on, NO_DATE),
        p.registered_unemployed,
        p.disability_group or 0,
        p.disability_child,
        _day(p.disability_established_on, NO_DATE),
        p.working_capacity_loss_pct,
        p.full_time_student,
        p.school_grade or 0,
        p.kindergarten,
        p.insured,
        p.polyclinic_attached,
        len(p.chronic_conditions),
        _AWARD[p.award],
        _day(p.kandas_until, NO_DATE),
    )


def _family_row(f: Family) -> tuple[int | bool, ...]:
    """One family's values in FAMILY_COLUMNS order."""
    h = f.housing
    return (_REGION[f.region], h.owned, h.area_m2, h.rooms, h.in_social_housing_queue)


assert len(_person_row(0, Person("p", "0", date(2000, 1, 1), "M"))) == len(PERSON_COLUMNS)
