"""Read the registry into the eligibility engine's columns, and read/write entitlements.

One code path builds the columns from a polars frame of registry rows; only how the rows
arrive differs: PostgreSQL streams them with COPY (the national registry is 20 million rows),
SQLite answers a plain SELECT. Families are read in ranges of ids so that memory stays bounded
whatever the registry's size.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from familymap import pgcopy
from familymap.engine.dates import NEVER, NO_DATE, to_day
from familymap.engine.population import Population
from familymap.rules import RULE_CODES
from familymap.situation import AWARDS, EMPLOYMENT, REGIONS, ROLES
from familymap.tables import Entitlement, Family, Person


@dataclass(frozen=True, slots=True)
class FamilySelection:
    """Which families to read: an id range (a batch) or a list of ids (after an import)."""

    first: int | None = None
    last: int | None = None
    ids: tuple[int, ...] | None = None

    @classmethod
    def range(cls, first: int, last: int) -> FamilySelection:
        return cls(first=first, last=last)

    @classmethod
    def of(cls, *ids: int) -> FamilySelection:
        return cls(ids=tuple(sorted(ids)))

    def where(self, family_id_column: Any) -> Any:
        """The SQL condition that selects these families on a table's family id column."""
        if self.ids is not None:
            return family_id_column.in_(self.ids)
        return family_id_column.between(self.first, self.last)


@dataclass(frozen=True, slots=True)
class RegistrySlice:
    """The families of one id range as engine columns, with their database ids."""

    population: Population
    family_ids: np.ndarray  # int64, one per family row
    person_ids: np.ndarray  # int64, one per person row


@dataclass(frozen=True, slots=True)
class Field:
    """One column the engine reads: its name there, the table column, and how it travels.

    kind: "int8"/"int2" integers; "bool"; "date" (missing = NO_DATE) or "death" (missing =
    NEVER); "enum" or "position" (the position of the value in `values`, 0 when missing; see
    familymap.pgcopy for how each travels); "count" (length of a JSON list).
    """

    name: str
    column: Any
    kind: str
    values: tuple[Any, ...] = ()


PERSON_FIELDS = (
    Field("family_id", Person.family_id, "int8"),
    Field("person_id", Person.id, "int8"),
    Field("birth_date", Person.birth_date, "date"),
    Field("is_female", Person.sex, "enum", ("M", "F")),
    Field("role", Person.role, "enum", ROLES),
    Field("date_of_death", Person.date_of_death, "death"),
    Field("monthly_income", Person.monthly_income_tiyn, "int8"),
    Field("contribution_months", Person.contribution_months, "int2"),
    Field("employment", Person.employment, "enum", EMPLOYMENT),
    Field("job_lost_on", Person.job_lost_on, "date"),
    Field("registered_unemployed", Person.registered_unemployed, "bool"),
    Field("disability_group", Person.disability_group, "int2"),
    Field("disability_child", Person.disability_child, "bool"),
    Field("disability_established_on", Person.disability_established_on, "date"),
    Field("capacity_loss_pct", Person.capacity_loss_pct, "int2"),
    Field("full_time_student", Person.full_time_student, "bool"),
    Field("school_grade", Person.school_grade, "int2"),
    Field("kindergarten", Person.kindergarten, "bool"),
    Field("insured", Person.insured, "bool"),
    Field("polyclinic_attached", Person.polyclinic_attached, "bool"),
    Field("chronic_count", Person.chronic_conditions, "count"),
    Field("award", Person.award, "enum", AWARDS),
    Field("kandas_until", Person.kandas_until, "date"),
)
FAMILY_FIELDS = (
    Field("family_id", Family.id, "int8"),
    Field("region", Family.region, "position", REGIONS),
    Field("housing_owned", Family.housing_owned, "bool"),
    Field("area_m2", Family.area_m2, "int8"),
    Field("rooms", Family.rooms, "int2"),
    Field("housing_queue", Family.in_social_housing_queue, "bool"),
)
_ENGINE_TYPES = {"int8": np.int64, "int2": np.int16, "bool": np.bool_, "date": np.int32,
                 "death": np.int32, "enum": np.int8, "position": np.int8, "count": np.int16}  # fmt: skip


async def read_fields(
    connection: AsyncConnection, fields: tuple[Field, ...], where: Any, order_by: list[str]
) -> dict[str, np.ndarray]:
    """Read `fields` of the rows matching `where` as engine columns, ordered by `order_by`.

    PostgreSQL sends the rows through a binary COPY whose every field has a fixed width, so
    numpy reads the whole answer as one structured array (small fields packed four to a
    bigint, see `pgcopy.lane`). The database is not asked to sort:
    at national scale its sort spills to disk, while the rows mostly arrive in key order
    already and numpy checks (and if need be sorts) in milliseconds.
    """
    if connection.dialect.name == "postgresql":
        decoded = await _read_fields_binary(connection, fields, where)
    else:
        decoded = await _read_fields_rows(connection, fields, where)
    return _sorted(decoded, order_by)


async def _read_fields_rows(
    connection: AsyncConnection, fields: tuple[Field, ...], where: Any
) -> dict[str, np.ndarray]:
    """The fields by a plain SELECT, converted in Python (SQLite; the reference for the COPY)."""
    rows = (await connection.execute(select(*(f.column for f in fields)).where(where))).all()
    return {f.name: _from_python([row[i] for row in rows], f) for i, f in enumerate(fields)}


async def _read_fields_binary(
    connection: AsyncConnection, fields: tuple[Field, ...], where: Any
) -> dict[str, np.ndarray]:
    """The fields by binary COPY: ids, amounts and dates alone, small fields four to a word."""
    alone = [f for f in fields if f.kind not in pgcopy.LANE_KINDS]
    small = [f for f in fields if f.kind in pgcopy.LANE_KINDS]
    words = [small[i : i + pgcopy.LANES_PER_WORD] for i in range(0, len(small), 4)]
    columns = await pgcopy.copy_out_fixed(
        connection,
        select(
            *(pgcopy.fixed_width(f.column, f.kind, f.values).label(f.name) for f in alone),
            *(
                pgcopy.packed_word([pgcopy.lane(f.column, f.kind, f.values) for f in word]).label(
                    f"word_{index}"
                )
                for index, word in enumerate(words)
            ),
        ).where(where),
        [(f.name, pgcopy.wire_type(f.kind)) for f in alone]
        + [(f"word_{index}", pgcopy.WORD) for index in range(len(words))],
    )
    decoded = {f.name: _from_wire(columns[f.name], f) for f in alone}
    for index, word in enumerate(words):
        lanes = columns[f"word_{index}"]
        for position, f in enumerate(word):
            values = pgcopy.from_lane(lanes[:, position], f.kind, f.values)
            decoded[f.name] = values if f.kind == "enum" else _from_wire(values, f)
    return {f.name: decoded[f.name] for f in fields}


def _from_wire(values: np.ndarray, field: Field) -> np.ndarray:
    if field.kind in ("date", "death"):
        return pgcopy.days_since_1970(values)  # PostgreSQL's ±infinity are our sentinels
    if field.kind == "enum":
        return pgcopy.decode_initials(values, field.values)
    if field.kind == "position":  # 1-based over the non-None values, 0 when missing
        named = [i for i, v in enumerate(field.values) if v is not None]
        return np.array([0, *named], dtype=np.int8)[values.astype(np.int64)]
    return values.astype(_ENGINE_TYPES[field.kind])


def _from_python(values: list[Any], field: Field) -> np.ndarray:
    dtype = _ENGINE_TYPES[field.kind]
    if field.kind in ("date", "death"):
        missing = NEVER if field.kind == "death" else NO_DATE
        return np.array([missing if v is None else to_day(v) for v in values], dtype=dtype)
    if field.kind in ("enum", "position"):
        positions = {v: i for i, v in enumerate(field.values) if v is not None}
        return np.array([positions.get(v, 0) for v in values], dtype=dtype)
    if field.kind == "count":
        return np.array([len(v or ()) for v in values], dtype=dtype)
    return np.array([v or 0 for v in values], dtype=dtype)


def _sorted(columns: dict[str, np.ndarray], keys: list[str]) -> dict[str, np.ndarray]:
    """The columns ordered by the composite key; untouched if they already are."""
    in_order = np.ones(max(len(columns[keys[0]]) - 1, 0), dtype=bool)
    tied = np.ones_like(in_order)
    for key in keys:  # row i <= row i+1 on (k1, k2, ...), decided key by key
        current, following = columns[key][:-1], columns[key][1:]
        in_order &= ~tied | (current <= following)
        tied &= current == following
    if in_order.all():
        return columns
    order = np.lexsort([columns[key] for key in reversed(keys)])
    return {name: values[order] for name, values in columns.items()}


# Tables whose ids are given by the registry's sources or the generator.
_REGISTRY_TABLES = ("families", "persons")
_CATCH_UP = {
    table: text(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), top) "  # noqa: S608 - fixed names
        f"FROM (SELECT max(id) AS top FROM {table}) AS t WHERE top > coalesce("
        f"pg_sequence_last_value(pg_get_serial_sequence('{table}', 'id')::regclass), 0)"
    )
    for table in _REGISTRY_TABLES
}


async def catch_up_id_sequences(connection: AsyncConnection, *tables: str) -> None:
    """Move PostgreSQL's id sequences past the largest id after rows came with their own ids.

    An explicit id does not advance the sequence, so the next row the database numbers would
    collide. SQLite numbers from max(rowid) and needs nothing.
    """
    if connection.dialect.name == "postgresql":
        for table in tables:
            await connection.execute(_CATCH_UP[table])


async def family_id_bounds(connection: AsyncConnection) -> tuple[int, int] | None:
    """The smallest and largest family id, or None for an empty registry."""
    low, high = (await connection.execute(select(func.min(Family.id), func.max(Family.id)))).one()
    return None if low is None else (int(low), int(high))


RegistryColumns = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]  # persons, families


async def read_registry_slice(
    connection: AsyncConnection, *, families: FamilySelection
) -> RegistrySlice | None:
    """The selected families that have persons, as engine columns."""
    return registry_slice(await read_registry_columns(connection, families=families))


async def read_registry_columns(
    connection: AsyncConnection, *, families: FamilySelection
) -> RegistryColumns:
    """The selected families' persons (ordered by family and id) and families, as read.

    The families are not read when no person is (a family without persons is not evaluated).
    """
    persons = await read_fields(
        connection, PERSON_FIELDS, families.where(Person.family_id), ["family_id", "person_id"]
    )
    if len(persons["family_id"]) == 0:
        return persons, {f.name: np.empty(0, _ENGINE_TYPES[f.kind]) for f in FAMILY_FIELDS}
    family_columns = await read_fields(
        connection, FAMILY_FIELDS, families.where(Family.id), ["family_id"]
    )
    return persons, family_columns


def registry_slice(columns: RegistryColumns) -> RegistrySlice | None:
    """Engine columns of registry columns (left as they are), None when there are no persons."""
    persons, families = columns
    if len(persons["family_id"]) == 0:
        return None
    return slice_from_columns(persons=dict(persons), families=dict(families))


def slice_from_columns(
    *, persons: dict[str, np.ndarray], families: dict[str, np.ndarray]
) -> RegistrySlice:
    """Engine columns from registry columns; persons must be ordered by (family_id, id)."""
    person_family = persons.pop("family_id")
    person_ids = persons.pop("person_id")
    # Persons come ordered by family: a family starts where the family id changes (one pass,
    # where np.unique and np.searchsorted would hash or search every row).
    starts = np.empty(len(person_family), dtype=bool)
    starts[:1] = True
    np.not_equal(person_family[1:], person_family[:-1], out=starts[1:])
    family_ids = person_family[starts]  # families that have at least one person
    keep = np.isin(families["family_id"], family_ids)
    if keep.sum() != len(family_ids):
        raise ValueError("persons refer to families that are not in the registry")
    family_columns = {
        name: values[keep] for name, values in families.items() if name != "family_id"
    }
    persons["is_female"] = persons["is_female"].astype(bool)
    persons["family_index"] = (np.cumsum(starts, dtype=np.int32) - 1).astype(np.int32)
    population = Population.from_arrays(
        persons=persons, families=family_columns, person_ids=person_ids, family_ids=family_ids
    )
    return RegistrySlice(population, family_ids, person_ids)


async def read_frame(
    connection: AsyncConnection,
    statement: Any,
    schema: Mapping[str, pl.DataType | type[pl.DataType]],
) -> pl.DataFrame:
    """Run `statement` and return its rows as a polars frame (a CSV COPY on PostgreSQL)."""
    if connection.dialect.name != "postgresql":
        rows = (await connection.execute(statement)).all()
        return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    data = await pgcopy.copy_out(connection, statement, copy_format="csv")
    if not data:
        return pl.DataFrame(schema=schema)
    return pl.read_csv(io.BytesIO(data), has_header=False, new_columns=list(schema), schema=schema)


ENTITLEMENT_KEY = ["family_id", "programme", "beneficiary_key"]
_ENTITLEMENT_SCHEMA = {
    "id": pl.Int64, "family_id": pl.Int64, "person_id": pl.Int64, "beneficiary_key": pl.Int64,
    "programme": pl.String, "amount_tiyn": pl.Int64, "period_start": pl.Date, "period_end": pl.Date,
}  # fmt: skip


_ENTITLEMENT_FIELDS = (
    Field("id", Entitlement.id, "int8"),
    Field("family_id", Entitlement.family_id, "int8"),
    Field("person_id", Entitlement.person_id, "int8"),
    Field("beneficiary_key", Entitlement.beneficiary_key, "int8"),
    Field("programme", Entitlement.programme, "position", RULE_CODES),
    Field("amount_tiyn", Entitlement.amount_tiyn, "int8"),
    Field("period_start", Entitlement.period_start, "date"),
    Field("period_end", Entitlement.period_end, "date"),
)


async def read_entitlements(
    connection: AsyncConnection, *, families: FamilySelection
) -> pl.DataFrame:
    """Current entitlements of the selected families.

    PostgreSQL sends them as fixed-width binary (the programme as its position among the
    rules), which a steady-state run reads for every family: text would make the server format
    and polars parse two million rows to find that nothing changed. A programme no rule knows
    any more (a retired rule's rows) has no position, and then the rows come as text.
    """
    if connection.dialect.name == "postgresql":
        frame = await _read_entitlements_binary(connection, families)
        if frame is not None:
            return frame
    statement = select(
        Entitlement.id,
        Entitlement.family_id,
        Entitlement.person_id,
        Entitlement.beneficiary_key,
        Entitlement.programme,
        Entitlement.amount_tiyn,
        Entitlement.period_start,
        Entitlement.period_end,
    ).where(families.where(Entitlement.family_id))
    return await read_frame(connection, statement, _ENTITLEMENT_SCHEMA)


async def _read_entitlements_binary(
    connection: AsyncConnection, families: FamilySelection
) -> pl.DataFrame | None:
    fields = _ENTITLEMENT_FIELDS
    columns = await pgcopy.copy_out_fixed(
        connection,
        select(
            *(pgcopy.fixed_width(f.column, f.kind, f.values).label(f.name) for f in fields)
        ).where(families.where(Entitlement.family_id)),
        [(f.name, pgcopy.wire_type(f.kind)) for f in fields],
    )
    programme = columns["programme"].astype(np.int16)
    if (programme == 0).any():
        return None
    day = (
        pgcopy.days_since_1970(columns["period_start"]),
        pgcopy.days_since_1970(columns["period_end"]),
    )
    return pl.DataFrame(
        {
            "id": columns["id"].astype(np.int64),
            "family_id": columns["family_id"].astype(np.int64),
            "person_id": pl.Series(columns["person_id"].astype(np.int64)).replace(0, None),
            "beneficiary_key": columns["beneficiary_key"].astype(np.int64),
            "programme": pl.Series(programme).replace_strict(
                dict(enumerate(RULE_CODES, start=1)), return_dtype=pl.String
            ),
            "amount_tiyn": columns["amount_tiyn"].astype(np.int64),
            "period_start": _dates(day[0]),
            "period_end": _dates(day[1]),
        },
        schema=_ENTITLEMENT_SCHEMA,
    )


def _dates(days: np.ndarray) -> pl.Series:
    """Day numbers as dates; the missing (-infinity, as it travels) become null."""
    return pl.Series(days).replace(NO_DATE, None).cast(pl.Date)
