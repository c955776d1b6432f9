"""Tables of the family map: the registry, the facts the source systems sent, and the
eligibility core's runs, entitlements and their changes.

Keys are BIGINT: the national registry holds 20 million persons, and the batch run moves
every one of them through COPY; 8-byte integers sort, join and parse far faster than UUIDs.
Every family-owned table carries `family_id`: it is the key a sharded PostgreSQL (Citus)
would distribute by, so that one family's rows always live on one node.

The registry keeps the *current* facts on the person and family rows (one row read per person
in a batch run); `fact_records` keeps every record each source system sent, with its source
and as-of date, which is what makes a re-import idempotent and a decision traceable.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from familymap.orm import Base, PortableJSON, utcnow

# BIGINT on PostgreSQL; on SQLite only a column typed exactly INTEGER is the rowid alias that
# numbers itself, so the variant keeps autoincrement working there.
BigId = BigInteger().with_variant(Integer(), "sqlite")

LANGUAGES = ("kk", "ru")
MEMBER_ROLES = ("head", "spouse", "child", "dependant", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Family(Base):
    """A family as the state's information systems know it, with its housing facts."""

    __tablename__ = "families"
    __table_args__ = (CheckConstraint("area_m2 >= 0", name="area_m2"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    region: Mapped[str] = mapped_column(String(32))
    housing_owned: Mapped[bool] = mapped_column(Boolean, default=True)
    area_m2: Mapped[int] = mapped_column(Integer, default=0)
    rooms: Mapped[int] = mapped_column(SmallInteger, default=0)
    in_social_housing_queue: Mapped[bool] = mapped_column(Boolean, default=False)
    # {fact kind: {"source": ..., "as_of": "YYYY-MM-DD"}} for the facts held on this row.
    provenance: Mapped[dict[str, Any]] = mapped_column(
        PortableJSON, default=dict, server_default=text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Person(Base):
    """A person in the registry, in exactly one family, with the current facts about them."""

    __tablename__ = "persons"
    __table_args__ = (
        CheckConstraint("sex IN ('M', 'F')", name="sex"),
        CheckConstraint(_in("language", LANGUAGES), name="language"),
        CheckConstraint(_in("role", MEMBER_ROLES), name="role"),
        CheckConstraint("monthly_income_tiyn >= 0", name="income"),
        CheckConstraint("contribution_months BETWEEN 0 AND 24", name="contribution_months"),
        CheckConstraint(
            "employment IN ('employed', 'unemployed', 'job_lost', 'not_in_labour_force')",
            name="employment",
        ),
        CheckConstraint("disability_group IN (1, 2, 3)", name="disability_group"),
        CheckConstraint("capacity_loss_pct BETWEEN 0 AND 100", name="capacity_loss_pct"),
        CheckConstraint("school_grade BETWEEN 1 AND 11", name="school_grade"),
        CheckConstraint("award IN ('altyn_alqa', 'kumis_alqa')", name="award"),
        Index("ix_persons_family_id", "family_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    iin: Mapped[str] = mapped_column(String(12), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    last_name: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    patronymic: Mapped[str | None] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    phone: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(2), default="ru")
    iban: Mapped[str | None] = mapped_column(String(34))
    date_of_death: Mapped[date | None] = mapped_column(Date)
    # Income and social contributions (State Revenue Committee, pension fund).
    monthly_income_tiyn: Mapped[int] = mapped_column(BigInteger, default=0)
    contribution_months: Mapped[int] = mapped_column(SmallInteger, default=0)
    # Employment (labour market system).
    employment: Mapped[str] = mapped_column(String(24), default="not_in_labour_force")
    job_lost_on: Mapped[date | None] = mapped_column(Date)
    registered_unemployed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Disability (medical and social expertise).
    disability_group: Mapped[int | None] = mapped_column(SmallInteger)
    disability_child: Mapped[bool] = mapped_column(Boolean, default=False)
    disability_established_on: Mapped[date | None] = mapped_column(Date)
    capacity_loss_pct: Mapped[int] = mapped_column(SmallInteger, default=0)
    # Education (school, kindergarten, college and university registers).
    full_time_student: Mapped[bool] = mapped_column(Boolean, default=False)
    school_grade: Mapped[int | None] = mapped_column(SmallInteger)
    school_id: Mapped[str | None] = mapped_column(String(64))
    kindergarten: Mapped[bool] = mapped_column(Boolean, default=False)
    # Health (polyclinic attachment, insurance, chronic conditions).
    insured: Mapped[bool] = mapped_column(Boolean, default=False)
    polyclinic_attached: Mapped[bool] = mapped_column(Boolean, default=False)
    chronic_conditions: Mapped[list[str]] = mapped_column(
        PortableJSON, default=list, server_default=text("'[]'")
    )
    # Awards and kandas status.
    award: Mapped[str | None] = mapped_column(String(16))
    kandas_until: Mapped[date | None] = mapped_column(Date)
    # Server defaults too, so that bulk loads (COPY) may leave these columns out.
    provenance: Mapped[dict[str, Any]] = mapped_column(
        PortableJSON, default=dict, server_default=text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FactRecord(Base):
    """One record a source system sent (a file line or an event), kept as it came.

    `record_key` is the source's own id for the record (or a hash of its content): importing
    the same record twice finds the key taken and changes nothing.
    """

    __tablename__ = "fact_records"
    __table_args__ = (Index("ix_fact_records_family_id", "family_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_key: Mapped[str] = mapped_column(String(128), unique=True)
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("persons.id"))
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date] = mapped_column(Date)
    payload: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class EligibilityRun(Base):
    """One evaluation: the whole registry (batch), the families an import changed
    (families), or one family with explanations (family, after a life event)."""

    __tablename__ = "eligibility_runs"
    __table_args__ = (
        CheckConstraint("scope IN ('batch', 'families', 'family')", name="scope"),
        CheckConstraint("status IN ('running', 'finished', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="running")
    evaluated_on: Mapped[date] = mapped_column(Date)
    parameter_version: Mapped[str] = mapped_column(String(64))
    rule_versions: Mapped[dict[str, Any]] = mapped_column(PortableJSON, default=dict)
    family_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("families.id"))
    families: Mapped[int] = mapped_column(BigInteger, default=0)
    persons: Mapped[int] = mapped_column(BigInteger, default=0)
    eligible: Mapped[int] = mapped_column(BigInteger, default=0)
    new_count: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_count: Mapped[int] = mapped_column(BigInteger, default=0)
    ended_count: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    # The files of the registry a batch run read and the entitlements it left, kept on the
    # worker's disk (familymap/registry_snapshot.py); None when it kept none.
    registry_snapshot: Mapped[str | None] = mapped_column(String(64))


# Families whose facts or entitlements changed since the last batch run, with the writing
# transaction's id (pg_current_xact_id as a bigint). Filled by triggers on PostgreSQL
# (migration 0012); no key: rows are only appended, and a batch run reads and deletes them.
registry_changes = Table(
    "registry_changes",
    Base.metadata,
    Column("family_id", BigInteger),
    Column("xid", BigInteger, nullable=False),
)


class Entitlement(Base):
    """What a person or family is entitled to now, as the newest evaluation decided.

    The rule and parameter versions that decided it are those of its run (`run_id`), and the
    kind (benefit, voucher, notice) is the programme's: a national batch writes a million of
    these rows, so nothing that is the same for a whole run is repeated on each.
    `beneficiary_key` is the person's id for a person-level programme and 0 for a family-level
    one: a unique constraint cannot rely on a NULL person id (NULLs are distinct), and both
    databases must refuse a duplicate.
    """

    __tablename__ = "entitlements"
    __table_args__ = (
        UniqueConstraint("family_id", "programme", "beneficiary_key"),
        CheckConstraint("amount_tiyn >= 0", name="amount"),
    )

    # No foreign keys here or on entitlement_changes: only eligibility runs write these rows,
    # from registry rows read in the same transaction, and checking three foreign keys on each
    # of a batch's million inserts would cost more than the rest of the write together.
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    family_id: Mapped[int] = mapped_column(BigId)
    person_id: Mapped[int | None] = mapped_column(BigId)
    beneficiary_key: Mapped[int] = mapped_column(BigInteger)
    programme: Mapped[str] = mapped_column(String(48))
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    run_id: Mapped[int] = mapped_column(BigId)


class EntitlementChange(Base):
    """The diff of a run against the entitlements before it: new, changed or ended.

    The offer flow reads the rows it offers (wallet.offered: new ones, and the next period of
    a renewed programme) in id order, so an offer follows each exactly once. When it happened is the run's `finished_at`.
    """

    __tablename__ = "entitlement_changes"
    __table_args__ = (
        CheckConstraint("change IN ('new', 'changed', 'ended')", name="change"),
        Index("ix_entitlement_changes_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId)
    family_id: Mapped[int] = mapped_column(BigId)
    person_id: Mapped[int | None] = mapped_column(BigId)
    programme: Mapped[str] = mapped_column(String(48))
    change: Mapped[str] = mapped_column(String(8))
    previous_amount_tiyn: Mapped[int | None] = mapped_column(BigInteger)
    amount_tiyn: Mapped[int | None] = mapped_column(BigInteger)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    # A changed entitlement's period end before the change: whether its new period starts
    # after the old one ended (a renewal, wallet.offered) or is the same period recomputed.
    previous_period_end: Mapped[date | None] = mapped_column(Date)


class Decision(Base):
    """A decision with its full explanation (every condition, its value, pass or fail).

    Written when one family is evaluated (after a life event or a changed fact). A batch run
    writes only entitlements and their diff: its decisions are reproducible from the run's rule
    and parameter versions and the family's facts, and the wallet explains them on demand.
    """

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_family_id", "family_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("eligibility_runs.id"))
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("persons.id"))
    programme: Mapped[str] = mapped_column(String(48))
    eligible: Mapped[bool] = mapped_column(Boolean)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    conditions: Mapped[list[Any]] = mapped_column(PortableJSON)
    rule_version: Mapped[str] = mapped_column(String(32))
    parameter_version: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class LifeEvent(Base):
    """A life event a source system pushed; `event_id` is the source's own id (idempotency)."""

    __tablename__ = "life_events"
    __table_args__ = (Index("ix_life_events_family_id", "family_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    payload_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    family_id: Mapped[int] = mapped_column(BigId, ForeignKey("families.id"))
    person_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("persons.id"))
    occurred_on: Mapped[date] = mapped_column(Date)
    payload: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("eligibility_runs.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
