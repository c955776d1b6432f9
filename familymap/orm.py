"""The declarative base every package's tables share, with portable column types.

It lives at the bottom of the dependency stack (familymap) so that wallet and vouchers can
put their tables in the same metadata without importing upwards. Constraint names follow a
fixed convention so that alembic's autogenerate and `alembic check` compare like with like.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, MetaData, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

from familymap.clock import utc_now

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact), plain JSON text on SQLite.
PortableJSON = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (familymap.clock, the one clock)."""
    return utc_now()


def as_utc(moment: datetime) -> datetime:
    """A stored timestamp as an aware UTC time: SQLite hands them back without a zone, and
    every timestamp we write is in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_id() -> uuid.UUID:
    """A new random primary key."""
    return uuid.uuid4()


class Base(DeclarativeBase):
    """Base class of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        uuid.UUID: Uuid(as_uuid=True),
        datetime: DateTime(timezone=True),
        dict[str, Any]: PortableJSON,
    }
