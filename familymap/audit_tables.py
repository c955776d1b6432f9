"""The audit trail's tables: append-only records, hash-chained, and the chain's head.

`audit_records` is append-only (triggers refuse UPDATE and DELETE, see migration 0007). Each
record's `hash` is an HMAC over its content and the previous record's hash, in `seq` order,
so an edited, removed or reordered record breaks the chain at that point. There are several
chains (`CHAINS`, migration 0008), each with its own `seq` and one row of `audit_chain_head`
holding its last `seq` and `hash`: appending updates that row first, which serialises appends
to one chain (a row lock on PostgreSQL, the write lock on SQLite), and it lets `verify` see a
removed tail, which a chain alone cannot. One chain made every audited transaction in the
country wait for the one before it to commit; a transaction appends to one chain, picked at
random, so concurrent ones rarely meet.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from familymap.orm import Base, utcnow
from familymap.tables import BigId


class AuditRecord(Base):
    """Who did what to whose personal data, when, through which operation and request."""

    __tablename__ = "audit_records"
    __table_args__ = (
        CheckConstraint("action IN ('read', 'write')", name="action"),
        CheckConstraint("seq >= 1", name="seq"),
        UniqueConstraint("chain", "seq"),
        # An operator lists a subject's records; a citizen lists the family's (newest first:
        # `id` is the order of appending across chains).
        Index("ix_audit_records_subject_hash_id", "subject_hash", "id"),
        Index("ix_audit_records_family_id_id", "family_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Which chain the record is a link of (an `audit_chain_head` id).
    chain: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    # The chain's order: 1, 2, 3, ... with no gap, within the chain.
    seq: Mapped[int] = mapped_column(BigId)
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
    """A chain's last link: one row per chain, its id the chain's number."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id BETWEEN 1 AND 64", name="chain_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigId, default=0)
    hash: Mapped[str] = mapped_column(String(64))
