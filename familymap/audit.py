"""The audit trail of personal data: who read or changed whose data, when, and why.

    AuditError                  a refusal of the audit service; `code` is stable
    └── AuditChainMissing       AUDIT_CHAIN_MISSING: the chain head row is not there

Every read of personal data about someone other than the caller, and every state change,
calls `record_access` inside its own transaction, so the record commits (or rolls back) with
what it records. Call it last in the transaction: appending locks the chain head until the
transaction ends, so every audited transaction after it waits that long.

Records are chained: `hash = HMAC-SHA256(key, prev_hash || canonical content)`. The key is
AUDIT_HASH_KEY, so someone who can write to the database but does not hold the key cannot
rebuild a consistent chain after editing it. `verify_chain` walks the chain and reports the
first broken record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.audit_tables import AuditChainHead, AuditRecord
from familymap.orm import utcnow

GENESIS_HASH = "0" * 64
ACTIONS = ("read", "write")
# Roles whose subject is an IIN: the trail keeps their identity as a keyed hash.
IIN_ROLES = frozenset({"CITIZEN"})


class AuditError(Exception):
    code = "AUDIT_ERROR"


class AuditChainMissing(AuditError):
    code = "AUDIT_CHAIN_MISSING"


def subject_hash(*, iin: str, key: bytes) -> str:
    """The keyed hash that stands for an IIN in the trail (hex)."""
    return hmac.new(key, iin.encode(), hashlib.sha256).hexdigest()


def _utc_text(moment: datetime) -> str:
    # SQLite hands back naive datetimes; both databases hold UTC.
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def record_hash(record: AuditRecord, *, key: bytes) -> str:
    """The HMAC of a record's content chained to its predecessor's hash."""
    content = json.dumps(
        [
            record.seq,
            _utc_text(record.recorded_at),
            record.actor,
            record.role,
            record.subject_hash,
            record.family_id,
            record.action,
            record.what,
            record.operation,
            record.request_id,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hmac.new(key, f"{record.prev_hash}|{content}".encode(), hashlib.sha256).hexdigest()


async def record_access(
    *,
    session: AsyncSession,
    key: bytes,
    actor: str,
    role: str,
    subject_iin: str | None,
    family_id: int | None,
    action: str,
    what: str,
    operation: str,
    request_id: str | None,
) -> AuditRecord:
    """Append one audit record to the chain, in the caller's transaction."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}")
    # Move the head first: the UPDATE takes the head's row lock (PostgreSQL) or the write
    # lock (SQLite) until this transaction ends, so no two appends read the same head.
    head = (
        await session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == 1)
            .values(seq=AuditChainHead.seq + 1)
            .returning(AuditChainHead.seq, AuditChainHead.hash)
        )
    ).one_or_none()
    if head is None:
        raise AuditChainMissing("the audit chain head is missing (run the migrations)")
    seq, prev_hash = head
    record = AuditRecord(
        seq=seq,
        recorded_at=utcnow(),
        actor=subject_hash(iin=actor, key=key) if role in IIN_ROLES else actor,
        role=role,
        subject_hash=subject_hash(iin=subject_iin, key=key) if subject_iin else None,
        family_id=family_id,
        action=action,
        what=what[:200],
        operation=operation[:100],
        request_id=request_id,
        prev_hash=prev_hash,
    )
    record.hash = record_hash(record, key=key)
    session.add(record)
    await session.execute(
        update(AuditChainHead).where(AuditChainHead.id == 1).values(hash=record.hash)
    )
    await session.flush()
    return record


async def records_for_subject(
    *, session: AsyncSession, key: bytes, subject_iin: str, limit: int = 100
) -> Sequence[AuditRecord]:
    """The newest records about one person (an operator's view)."""
    hashed = subject_hash(iin=subject_iin, key=key)
    result = await session.scalars(
        select(AuditRecord)
        .where(AuditRecord.subject_hash == hashed)
        .order_by(AuditRecord.seq.desc())
        .limit(limit)
    )
    return result.all()


async def records_for_family(
    *,
    session: AsyncSession,
    key: bytes,
    family_id: int | None,
    member_iins: Sequence[str],
    exclude_actor_iin: str | None = None,
    limit: int = 100,
) -> Sequence[AuditRecord]:
    """The newest records about a family or any of its members, not those by `exclude_actor_iin`."""
    hashes = [subject_hash(iin=iin, key=key) for iin in member_iins]
    about = [AuditRecord.subject_hash.in_(hashes)] if hashes else []
    if family_id is not None:
        about.append(AuditRecord.family_id == family_id)
    if not about:
        return []
    query = select(AuditRecord).where(or_(*about))
    if exclude_actor_iin is not None:
        query = query.where(AuditRecord.actor != subject_hash(iin=exclude_actor_iin, key=key))
    result = await session.scalars(query.order_by(AuditRecord.seq.desc()).limit(limit))
    return result.all()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What `verify_chain` found: `broken_seq` is None when the chain is whole."""

    checked: int
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


async def verify_chain(*, session: AsyncSession, key: bytes, batch: int = 5000) -> ChainReport:
    """Walk the chain in `seq` order; report the first edited, removed or reordered record."""
    head = await session.get(AuditChainHead, 1)
    if head is None:
        raise AuditChainMissing("the audit chain head is missing (run the migrations)")
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    while True:
        rows = (
            await session.scalars(
                select(AuditRecord)
                .where(AuditRecord.seq >= expected_seq)
                .order_by(AuditRecord.seq)
                .limit(batch)
            )
        ).all()
        for record in rows:
            if record.seq != expected_seq:
                return ChainReport(checked, expected_seq, "record missing (removed)")
            if record.prev_hash != prev_hash:
                return ChainReport(
                    checked, record.seq, "does not follow its predecessor (removed or reordered)"
                )
            if record_hash(record, key=key) != record.hash:
                return ChainReport(checked, record.seq, "content does not match its hash (edited)")
            prev_hash, expected_seq, checked = record.hash, expected_seq + 1, checked + 1
        if len(rows) < batch:
            break
    if head.seq != expected_seq - 1 or head.hash != prev_hash:
        return ChainReport(checked, expected_seq, "records after this one are missing (removed)")
    return ChainReport(checked)
