"""The audit trail's tables: append-only records, hash-chained, and the chain's head.

`audit_records` is append-only (triggers refuse UPDATE and DELETE, see migration 0007). Each
record's `hash` is an HMAC over its content and the previous record's hash, in `seq` order,
so an edited, removed or reordered record breaks the chain at that point. The single row of
`audit_chain_head` holds the last `seq` and `hash`: appending updates it first, which
serialises appends (a row lock on PostgreSQL, the write lock on SQLite), and it lets
`verify` see a removed tail, which a chain alone cannot.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from familymap.orm import Base, utcnow
from familymap.tables import BigId


class AuditRecord(Base):
    """Who did what to whose personal data, when, through which operation and request."""

    __tablename__ = "audit_records"
    __table_args__ = (
        CheckConstraint("action IN ('read', 'write')", name="action"),
        CheckConstraint("seq >= 1", name="seq"),
        # An operator lists a subject's records; a citizen lists the family's.
        Index("ix_audit_records_subject_hash_seq", "subject_hash", "seq"),
        Index("ix_audit_records_family_id_seq", "family_id", "seq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The chain's order: 1, 2, 3, ... with no gap.
    seq: Mapped[int] = mapped_column(BigId, unique=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The caller: staff id, merchant id, source system name; a citizen by the keyed hash of
    # the IIN (the trail holds no raw IIN).
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    # HMAC-SHA256 of the subject's IIN under AUDIT_HASH_KEY (hex), when there is a person.
    subject_hash: Mapped[str | None] = mapped_column(String(64))
    family_id: Mapped[int | None] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(8))
    what: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The chain's last link (one row, id 1)."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigId, default=0)
    hash: Mapped[str] = mapped_column(String(64))
