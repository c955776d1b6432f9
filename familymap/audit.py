"""The audit trail of personal data: who read or changed whose data, when, and why.

    AuditError                  a refusal of the audit service; `code` is stable
    └── AuditChainMissing       AUDIT_CHAIN_MISSING: the chain head row is not there

Every read of personal data about someone other than the caller, and every state change,
calls `record_access` (or, on a hot path holding a bare asyncpg connection, `append_after`)
inside its own transaction, so the record commits (or rolls back) with what it records. Call
it last in the transaction: appending locks its chain's head until the transaction ends, so
the next append to that chain waits that long.

Records are chained: `hash = HMAC-SHA256(key, prev_hash || canonical content)`. The key is
AUDIT_HASH_KEY, so someone who can write to the database but does not hold the key cannot
rebuild a consistent chain after editing it. There are `CHAINS` chains; a transaction
appends all its records to one of them, picked at random, so that concurrent transactions
seldom queue on the same head (and two transactions never hold two heads each, so they
cannot deadlock on them). `verify_chain` walks every chain and reports the first broken
record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.audit_tables import AuditChainHead, AuditRecord
from familymap.orm import utcnow

if TYPE_CHECKING:
    import asyncpg

GENESIS_HASH = "0" * 64
# The chains appended to (ids 1..CHAINS of `audit_chain_head`, made by migration 0008).
CHAINS = 64
_CHAIN_OF_SESSION = "audit_chain"
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
    return _chained_hash(
        key,
        record.prev_hash,
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
    )


def _chained_hash(key: bytes, prev_hash: str, content: list[Any]) -> str:
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hmac.new(key, f"{prev_hash}|{text}".encode(), hashlib.sha256).hexdigest()


def pick_chain() -> int:
    """A chain for a transaction's appends: any will do, and a random one is rarely busy."""
    # Not a secret, only a spread.
    return random.randint(1, CHAINS)  # noqa: S311


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
    """Append one audit record to a chain, in the caller's transaction."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}")
    # One chain per session (a request's transaction): it keeps the chain it picked first.
    chain = session.info.setdefault(_CHAIN_OF_SESSION, pick_chain())
    # Move the head first: the UPDATE takes the head's row lock (PostgreSQL) or the write
    # lock (SQLite) until this transaction ends, so no two appends read the same head.
    head = (
        await session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == chain)
            .values(seq=AuditChainHead.seq + 1)
            .returning(AuditChainHead.seq, AuditChainHead.hash)
        )
    ).one_or_none()
    if head is None:
        raise AuditChainMissing(f"audit chain {chain} has no head (run the migrations)")
    seq, prev_hash = head
    record = AuditRecord(
        chain=chain,
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
        update(AuditChainHead).where(AuditChainHead.id == chain).values(hash=record.hash)
    )
    await session.flush()
    return record


@dataclass(frozen=True, slots=True)
class Caller:
    """Who acts, as the trail records them, for appends on a driver connection."""

    key: bytes
    actor: str
    role: str
    operation: str
    request_id: str | None


@dataclass(frozen=True, slots=True)
class Entry:
    """One record to append: who acted, about whom, what they did."""

    caller: Caller
    subject_iin: str | None
    family_id: int | None
    action: str
    what: str


def link_values(*, entry: Entry, chain: int, seq: int, prev_hash: str) -> dict[str, object]:
    """The columns of `entry`'s record, linking at (chain, seq) after `prev_hash`, by name
    (`audit_*`, the names `LINK_CTES` uses)."""
    caller, action, what = entry.caller, entry.action, entry.what
    subject_iin, family_id = entry.subject_iin, entry.family_id
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}")
    recorded_at = utcnow()
    key = caller.key
    actor = subject_hash(iin=caller.actor, key=key) if caller.role in IIN_ROLES else caller.actor
    subject = subject_hash(iin=subject_iin, key=key) if subject_iin else None
    what, operation = what[:200], caller.operation[:100]
    content = [seq, _utc_text(recorded_at), actor, caller.role, subject, family_id, action, what,
               operation, caller.request_id]  # fmt: skip
    return {
        "audit_chain": chain, "audit_seq": seq, "audit_recorded_at": recorded_at,
        "audit_actor": actor, "audit_role": caller.role, "audit_subject_hash": subject,
        "audit_family_id": family_id, "audit_action": action, "audit_what": what,
        "audit_operation": operation, "audit_request_id": caller.request_id,
        "audit_prev_hash": prev_hash, "audit_hash": _chained_hash(key, prev_hash, content),
    }  # fmt: skip


# Appends on a bare asyncpg connection (PostgreSQL), for hot paths that skip the ORM: its
# unit of work costs more than the redemption it records. First the head moves or is locked
# (and stays locked until the transaction ends); then the records go in and the head takes
# the last one's hash. A hot path may move the head inside a statement of its own
# (`ADVANCE_HEAD_CTE`) and put the record in with `LINK_CTES` inside another, under a guard
# of its own ({guard}: SQL that is true when the record is to be written); or lock the head
# (`lock_head`) and append after it (`append_after`).
ADVANCE_HEAD_CTE = (
    "audit_head AS (UPDATE audit_chain_head SET seq = seq + 1 WHERE id = :audit_chain "
    "RETURNING seq, hash)"
)
LINK_CTES = """
audit_appended AS (
    INSERT INTO audit_records (chain, seq, recorded_at, actor, role, subject_hash, family_id,
                               action, what, operation, request_id, prev_hash, hash)
    SELECT :audit_chain, :audit_seq, :audit_recorded_at, :audit_actor, :audit_role,
           :audit_subject_hash, CAST(:audit_family_id AS bigint), :audit_action, :audit_what,
           :audit_operation, :audit_request_id, :audit_prev_hash, :audit_hash
    WHERE {guard}
    RETURNING id
),
audit_linked AS (
    UPDATE audit_chain_head SET hash = :audit_hash WHERE id = :audit_chain AND {guard}
    RETURNING id
)"""
# Records after a head the transaction holds (locked, or moved by ADVANCE_HEAD_CTE): one
# statement puts them in and moves the head past them.
_LOCK_HEAD = "SELECT seq, hash FROM audit_chain_head WHERE id = $1 FOR UPDATE"
_APPEND_MANY = """
WITH appended AS (
    INSERT INTO audit_records (chain, seq, recorded_at, actor, role, subject_hash, family_id,
                               action, what, operation, request_id, prev_hash, hash)
    SELECT $1, seq, recorded_at, actor, role, subject_hash, family_id, action, what,
           operation, request_id, prev_hash, hash
    FROM unnest($2::bigint[], $3::timestamptz[], $4::varchar[], $5::varchar[], $6::varchar[],
                $7::bigint[], $8::varchar[], $9::varchar[], $10::varchar[], $11::varchar[],
                $12::varchar[], $13::varchar[])
         AS r(seq, recorded_at, actor, role, subject_hash, family_id, action, what, operation,
              request_id, prev_hash, hash)
    RETURNING id
)
UPDATE audit_chain_head SET seq = $14, hash = $15 WHERE id = $1
"""
_COLUMNS = (
    "audit_seq", "audit_recorded_at", "audit_actor", "audit_role", "audit_subject_hash",
    "audit_family_id", "audit_action", "audit_what", "audit_operation", "audit_request_id",
    "audit_prev_hash", "audit_hash",
)  # fmt: skip


async def lock_head(*, connection: asyncpg.Connection, chain: int) -> tuple[int, str]:
    """Lock a chain's head until the transaction ends; its (seq, hash)."""
    head = await connection.fetchrow(_LOCK_HEAD, chain)
    if head is None:
        raise AuditChainMissing(f"audit chain {chain} has no head (run the migrations)")
    return head["seq"], head["hash"]


async def append_after(
    *,
    connection: asyncpg.Connection,
    chain: int,
    head: tuple[int, str],
    entries: list[Entry],
) -> None:
    """Append `entries`, in order, after `head` (seq, hash) of `chain`, which this transaction
    holds, in one statement."""
    if not entries:
        return
    seq, prev_hash = head
    links = []
    for entry in entries:
        seq += 1
        link = link_values(entry=entry, chain=chain, seq=seq, prev_hash=prev_hash)
        links.append(link)
        prev_hash = str(link["audit_hash"])
    await connection.execute(
        _APPEND_MANY, chain, *([link[c] for link in links] for c in _COLUMNS), seq, prev_hash
    )


async def records_for_subject(
    *,
    session: AsyncSession,
    key: bytes,
    subject_iin: str,
    limit: int = 100,
    before_id: int | None = None,
) -> Sequence[AuditRecord]:
    """The newest records about one person (an operator's view), older than `before_id`."""
    hashed = subject_hash(iin=subject_iin, key=key)
    query = select(AuditRecord).where(AuditRecord.subject_hash == hashed)
    if before_id is not None:
        query = query.where(AuditRecord.id < before_id)
    result = await session.scalars(query.order_by(AuditRecord.id.desc()).limit(limit))
    return result.all()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What `verify_chain` found: `broken_seq` (of chain `broken_chain`) is None when every
    chain is whole; `checked` counts the records verified."""

    checked: int
    broken_seq: int | None = None
    reason: str | None = None
    broken_chain: int | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


async def verify_chain(*, session: AsyncSession, key: bytes, batch: int = 5000) -> ChainReport:
    """Walk every chain in `seq` order; report the first edited, removed or reordered record."""
    heads = {
        head.id: head
        for head in await session.scalars(
            select(AuditChainHead).execution_options(populate_existing=True)
        )
    }
    if missing := sorted(set(range(1, CHAINS + 1)) - set(heads)):
        raise AuditChainMissing(f"audit chain {missing[0]} has no head (run the migrations)")
    strays = await session.scalar(
        select(AuditRecord.chain).where(AuditRecord.chain.not_in(sorted(heads))).limit(1)
    )
    if strays is not None:
        return ChainReport(0, 1, f"records on chain {strays}, which has no head", strays)
    checked = 0
    for chain in sorted(heads):
        report = await _verify_one_chain(session, key, heads[chain], batch=batch)
        checked += report.checked
        if not report.ok:
            return ChainReport(checked, report.broken_seq, report.reason, chain)
    return ChainReport(checked)


async def _verify_one_chain(
    session: AsyncSession, key: bytes, head: AuditChainHead, *, batch: int
) -> ChainReport:
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    while True:
        rows = (
            await session.scalars(
                select(AuditRecord)
                .where(AuditRecord.chain == head.id, AuditRecord.seq >= expected_seq)
                .order_by(AuditRecord.seq)
                .limit(batch)
                # What the database holds now, not objects this session loaded before.
                .execution_options(populate_existing=True)
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
