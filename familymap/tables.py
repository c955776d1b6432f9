"""Registry tables of the family map: families and the persons in them.

Every family-owned table carries `family_id`: it is the key a sharded PostgreSQL (Citus)
would distribute by, so that one family's rows always live together.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from familymap.orm import Base, new_id, utcnow

LANGUAGES = ("kk", "ru")
MEMBER_ROLES = ("head", "spouse", "child", "dependant", "other")


class Family(Base):
    """A family as the state's information systems know it."""

    __tablename__ = "families"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    region: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Person(Base):
    """A person in the registry; belongs to exactly one family."""

    __tablename__ = "persons"
    __table_args__ = (
        CheckConstraint("sex IN ('M', 'F')", name="sex"),
        CheckConstraint("language IN ('kk', 'ru')", name="language"),
        CheckConstraint("role IN ('head', 'spouse', 'child', 'dependant', 'other')", name="role"),
        Index("ix_persons_family_id", "family_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("families.id"))
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
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
