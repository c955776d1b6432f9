"""The audit trail of personal data: who read or changed whose data, when, and why.

    AuditError                  a refusal of the audit service; `code` is stable
    └── AuditChainMissing       AUDIT_CHAIN_MISSING: the chain head row is not there

Every read of personal data about someone other than the caller, and every state change,
calls `append` (`record_access` for one record; on a hot path holding a bare asyncpg
connection, `append_after` or `LINK_CTES`) inside its own transaction. Every writer fills and
hashes its rows with `link_rows`, and the SQL is built from the table's definition, so the record commits (or rolls back) with what it records. Call
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.audit_tables import AuditChainHead, AuditRecord
from familymap.driver_sql import insert_columns, insert_from_arrays, insert_from_parameters
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


# What a record's hash covers, besides its predecessor's hash: every column but the chain's
# bookkeeping (id, chain, prev_hash, hash). `record_hash` (the check) and `link_rows` (every
# writer) both read this one list.
HASHED_COLUMNS = (
    "seq", "recorded_at", "actor", "role", "subject_hash", "family_id", "action", "what",
    "operation", "request_id",
)  # fmt: skip
_TABLE = cast(Table, AuditRecord.__table__)  # a mapped class's table, typed as a FromClause
# The columns every writer fills, as the table defines them.
RECORD_COLUMNS = insert_columns(_TABLE)


def _content_hash(key: bytes, prev_hash: str, value_of: Callable[[str], object]) -> str:
    content = [
        _utc_text(value_of(name)) if name == "recorded_at" else value_of(name)  # type: ignore[arg-type]
        for name in HASHED_COLUMNS
    ]
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hmac.new(key, f"{prev_hash}|{text}".encode(), hashlib.sha256).hexdigest()


def record_hash(record: AuditRecord, *, key: bytes) -> str:
    """The HMAC of a record's content chained to its predecessor's hash."""
    return _content_hash(key, record.prev_hash, lambda name: getattr(record, name))


def pick_chain() -> int:
    """A chain for a transaction's appends: any will do, and a random one is rarely busy."""
    # Not a secret, only a spread.
    return random.randint(1, CHAINS)  # noqa: S311


@dataclass(frozen=True, slots=True)
class Caller:
    """Who acts, as the trail records them."""

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


def link_rows(
    *, entries: Sequence[Entry], chain: int, head: tuple[int, str]
) -> list[dict[str, object]]:
    """The `audit_records` rows of `entries`, in order, linked after `head` (the chain's
    last seq and hash), by column name: the one place a record is filled and hashed."""
    seq, prev_hash = head
    recorded_at = utcnow()
    rows = []
    for entry in entries:
        caller = entry.caller
        if entry.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}")
        key = caller.key
        seq += 1
        row: dict[str, object] = {
            "chain": chain,
            "seq": seq,
            "recorded_at": recorded_at,
            "actor": subject_hash(iin=caller.actor, key=key)
            if caller.role in IIN_ROLES
            else caller.actor,
            "role": caller.role,
            "subject_hash": subject_hash(iin=entry.subject_iin, key=key)
            if entry.subject_iin
            else None,
            "family_id": entry.family_id,
            "action": entry.action,
            "what": entry.what[:200],
            "operation": caller.operation[:100],
            "request_id": caller.request_id,
            "prev_hash": prev_hash,
        }
        row["hash"] = prev_hash = _content_hash(key, prev_hash, row.__getitem__)
        rows.append(row)
    return rows


_PROBE = Caller(b"", "", "", "", None)
# A column added to the table must be filled here too, or every writer would miss it.
assert tuple(link_rows(entries=[Entry(_PROBE, None, None, "read", "")], chain=1,
                       head=(0, GENESIS_HASH))[0]) == RECORD_COLUMNS  # fmt: skip


async def append(*, session: AsyncSession, entries: Sequence[Entry]) -> list[dict[str, object]]:
    """Append `entries`, in order, to one chain in the session's transaction: the one audit
    writer of the ORM paths, three statements however many records. Call it last in the
    transaction: the chain's head stays locked until the transaction ends."""
    if not entries:
        return []
    # One chain per session (a request's transaction): it keeps the chain it picked first.
    chain = session.info.setdefault(_CHAIN_OF_SESSION, pick_chain())
    # Move the head first: the UPDATE takes the head's row lock (PostgreSQL) or the write
    # lock (SQLite) until this transaction ends, so no two appends read the same head.
    head = (
        await session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == chain)
            .values(seq=AuditChainHead.seq + len(entries))
            .returning(AuditChainHead.seq, AuditChainHead.hash)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if head is None:
        raise AuditChainMissing(f"audit chain {chain} has no head (run the migrations)")
    rows = link_rows(entries=entries, chain=chain, head=(head.seq - len(entries), head.hash))
    await session.execute(insert(_TABLE), rows)
    await session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == chain)
        .values(hash=rows[-1]["hash"])
        .execution_options(synchronize_session=False)
    )
    return rows


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
    """Append one audit record to a chain, in the caller's transaction (`append`)."""
    caller = Caller(key=key, actor=actor, role=role, operation=operation, request_id=request_id)
    (row,) = await append(
        session=session,
        entries=[Entry(caller, subject_iin, family_id, action, what)],
    )
    return AuditRecord(**row)


def link_values(*, entry: Entry, chain: int, seq: int, prev_hash: str) -> dict[str, object]:
    """`entry`'s record linking at (chain, seq) after `prev_hash`, as the parameters of
    `LINK_CTES` (`audit_<column>`)."""
    (row,) = link_rows(entries=[entry], chain=chain, head=(seq - 1, prev_hash))
    return {f"audit_{name}": value for name, value in row.items()}


# Appends on a bare asyncpg connection (PostgreSQL), for hot paths that skip the ORM: its
# unit of work costs more than the redemption it records. The rows are `link_rows`', the
# statements built from the table. First the head moves or is locked (and stays locked until
# the transaction ends); then the records go in and the head takes the last one's hash. A hot
# path may move the head inside a statement of its own (`ADVANCE_HEAD_CTE`) and put the
# record in with `LINK_CTES` inside another, under a guard of its own ({guard}: SQL that is
# true when the record is to be written); or lock the head (`lock_head`) and append after it
# (`append_after`).
ADVANCE_HEAD_CTE = (
    "audit_head AS (UPDATE audit_chain_head SET seq = seq + 1 WHERE id = :audit_chain "
    "RETURNING seq, hash)"
)
LINK_CTES = f"""
audit_appended AS (
    {insert_from_parameters(_TABLE, prefix="audit_")}
    WHERE {{guard}}
    RETURNING id
),
audit_linked AS (
    UPDATE audit_chain_head SET hash = :audit_hash WHERE id = :audit_chain AND {{guard}}
    RETURNING id
)"""  # noqa: S608 (built from the table's definition, no input)
_LOCK_HEAD = "SELECT seq, hash FROM audit_chain_head WHERE id = $1 FOR UPDATE"
# Records after a head the transaction holds: one statement puts them in and moves the head
# past them ($1, $2: the head's new seq and hash, $3 the chain; then an array per column).
_APPEND_MANY = f"""
WITH appended AS ({insert_from_arrays(_TABLE, first=4)} RETURNING id)
UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = $3
"""  # noqa: S608 (built from the table's definition, no input)


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
    entries: Sequence[Entry],
) -> None:
    """Append `entries`, in order, after `head` (seq, hash) of `chain`, which this transaction
    holds, in one statement."""
    if not entries:
        return
    rows = link_rows(entries=entries, chain=chain, head=head)
    last = rows[-1]
    await connection.execute(
        _APPEND_MANY, last["seq"], last["hash"], chain,
        *([row[name] for row in rows] for name in RECORD_COLUMNS),
    )  # fmt: skip


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
