"""Where the relay claims messages and records what became of them: the same statements on
two drivers, as the ledger has `SessionLedger` and `DriverLedger`.

- `SessionOutbox` runs them through SQLAlchemy sessions: SQLite (development, tests) and
  PostgreSQL, each claim and each group of outcomes in a transaction of its own.
- `DriverOutbox` runs them on asyncpg connections (PostgreSQL): the claim is one statement,
  and each kind of outcome one statement, each committing alone (a connection from a pool
  outside any transaction), or inside the transaction a connection is handed in (tests).
  Through a session a claim cost a pre-ping, BEGIN, the UPDATE and COMMIT, four round trips
  and ~0.3 ms of SQLAlchemy's Python; here it is one.

Nothing here decides anything a second time: the claim is one SQLAlchemy statement
(`CLAIM`), compiled for asyncpg from the same object, and the outcomes' SQL is one text per
kind for PostgreSQL (`_SENT_PG`, `_FAILED_PG`) with its arrays built by one function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

import asyncpg
from sqlalchemy import Integer, Table, and_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.driver_sql import driver_statement
from wallet.outbox_tables import OutboxMessage
from wallet.sms import redact

MAX_ERROR_LENGTH = 500

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]
# Connections to run the statements on: a pool's `acquire` (each statement commits alone),
# or connections inside a transaction (app.driver_db.session_transactions).
DriverConnections = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message a claim took: what the gateway needs, and the claim's number."""

    id: int
    attempts: int
    message_key: str
    recipient: str
    body: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed message, to be written with the others of its group."""

    message: Claimed
    # sent, pending (a retry), failed, dead, or released (given back unsent: the claim
    # does not count as an attempt)
    status: str
    gateway_message_id: str = ""
    error: str = ""
    retry_at: datetime | None = None


class OutboxStore(Protocol):
    """The relay's two operations on the outbox."""

    async def claim(
        self, *, channel: str, now: datetime, batch_size: int, claimed_until: datetime
    ) -> list[Claimed]:
        """Take up to `batch_size` due messages of `channel` until `claimed_until`."""
        ...

    async def record(self, outcomes: list[Outcome], now: datetime) -> None:
        """Write a group of outcomes (one statement per kind), committed when it returns."""
        ...


# --- The claim ------------------------------------------------------------------------------

_due = and_(
    OutboxMessage.channel == bindparam("claim_channel"),
    or_(
        and_(
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= bindparam("claim_now"),
        ),
        # A claim that outlived its lease belongs to a relay that crashed or hung.
        and_(
            OutboxMessage.status == "sending", OutboxMessage.claimed_until < bindparam("claim_now")
        ),
    ),
)
# SKIP LOCKED lets concurrent relays on PostgreSQL pick different rows instead of queueing
# behind each other (SQLite ignores it, and serialises writers anyway). It is not what keeps
# a message from being sent twice at once: the UPDATE repeats the `due` condition, which
# PostgreSQL re-checks on the newest row version after waiting for a lock, so a row another
# relay claimed meanwhile is left out of RETURNING. The candidates are a MATERIALIZED CTE
# because PostgreSQL may run an `IN (subquery)` again for each row it updates, and each run
# would see the next rows as due: LIMIT would not hold.
_candidates = (
    select(OutboxMessage.id)
    .where(_due)
    .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
    .limit(bindparam("claim_batch_size", type_=Integer))
    .with_for_update(skip_locked=True)
    .cte("candidates")
    .prefix_with("MATERIALIZED")
)
CLAIM = (
    update(OutboxMessage)
    .where(OutboxMessage.id.in_(select(_candidates.c.id)), _due)
    .values(
        status="sending",
        claimed_until=bindparam("claim_until"),
        attempts=OutboxMessage.attempts + 1,
    )
    .returning(
        OutboxMessage.id,
        OutboxMessage.attempts,
        OutboxMessage.message_key,
        OutboxMessage.recipient,
        OutboxMessage.body,
    )
    .execution_options(synchronize_session=False)
)


def _claim_values(
    channel: str, now: datetime, batch_size: int, claimed_until: datetime
) -> dict[str, Any]:
    return {
        "claim_channel": channel,
        "claim_now": now,
        "claim_batch_size": batch_size,
        "claim_until": claimed_until,
    }


def _in_order(rows: Any) -> list[Claimed]:
    return sorted((Claimed(*row) for row in rows), key=lambda claimed: claimed.id)


# --- Outcomes -------------------------------------------------------------------------------
# Outcomes are written with one UPDATE per kind for a whole group. On PostgreSQL the group
# travels as arrays (a few parameters whatever its size, one prepared statement); elsewhere
# (SQLite, development and tests) as an executemany of the same conditions.
#
# Once the gateway took a message it is sent, even if our claim expired meanwhile and
# another relay holds it now (that one's duplicate is harmless, and its outcome no longer
# overwrites this one). A failure is recorded only by the claim that made it: `attempts`
# counts claims, so it tells this claim from a later one after ours expired.
_SENT_PG = text(
    """
    UPDATE outbox_messages AS m
    SET status = 'sent', sent_at = :now, gateway_message_id = NULLIF(v.gateway_id, ''),
        claimed_until = NULL, last_error = NULL
    FROM unnest(CAST(:ids AS bigint[]), CAST(:gateway_ids AS text[])) AS v(id, gateway_id)
    WHERE m.id = v.id AND m.status <> 'sent'
    """
)
_FAILED_PG = text(
    """
    UPDATE outbox_messages AS m
    SET status = v.status, claimed_until = NULL, last_error = COALESCE(v.error, m.last_error),
        next_attempt_at = COALESCE(v.retry_at, m.next_attempt_at),
        attempts = m.attempts - v.given_back
    FROM unnest(
        CAST(:ids AS bigint[]), CAST(:attempts AS integer[]), CAST(:statuses AS text[]),
        CAST(:errors AS text[]), CAST(:retry_ats AS timestamptz[]),
        CAST(:given_back AS integer[])
    ) AS v(id, attempts, status, error, retry_at, given_back)
    WHERE m.id = v.id AND m.status = 'sending' AND m.attempts = v.attempts
    """
)
_table = cast(Table, OutboxMessage.__table__)  # a mapped class's table (typed as a FromClause)
_SENT_MANY = (
    update(_table)
    .where(_table.c.id == bindparam("b_id"), _table.c.status != "sent")
    .values(
        status="sent",
        sent_at=bindparam("b_now"),
        gateway_message_id=bindparam("b_gateway_id"),
        claimed_until=None,
        last_error=None,
    )
)
_FAILED_MANY = (
    update(_table)
    .where(
        _table.c.id == bindparam("b_id"),
        _table.c.status == "sending",
        _table.c.attempts == bindparam("b_attempts"),
    )
    .values(
        status=bindparam("b_status"),
        claimed_until=None,
        last_error=func.coalesce(bindparam("b_error"), _table.c.last_error),
        next_attempt_at=func.coalesce(bindparam("b_retry_at"), _table.c.next_attempt_at),
        attempts=_table.c.attempts - bindparam("b_given_back"),
    )
)


@dataclass(frozen=True, slots=True)
class _Arrays:
    """A group's outcomes as the PostgreSQL statements' array parameters (None: no row)."""

    sent: dict[str, Any] | None
    failed: dict[str, Any] | None


def _as_arrays(outcomes: list[Outcome], now: datetime) -> _Arrays:
    sent = [outcome for outcome in outcomes if outcome.status == "sent"]
    failed = [outcome for outcome in outcomes if outcome.status != "sent"]
    return _Arrays(
        sent={
            "now": now,
            "ids": [outcome.message.id for outcome in sent],
            "gateway_ids": [outcome.gateway_message_id for outcome in sent],
        }
        if sent
        else None,
        failed={
            "ids": [outcome.message.id for outcome in failed],
            "attempts": [outcome.message.attempts for outcome in failed],
            # A claim given back is a pending message again, its attempt not counted, and
            # it keeps the message's last error: it made no attempt.
            "statuses": [
                "pending" if outcome.status == "released" else outcome.status for outcome in failed
            ],
            "errors": [
                None if outcome.status == "released" else redact(outcome.error)[:MAX_ERROR_LENGTH]
                for outcome in failed
            ],
            "retry_ats": [outcome.retry_at for outcome in failed],
            "given_back": [int(outcome.status == "released") for outcome in failed],
        }
        if failed
        else None,
    )


def _as_rows(arrays: dict[str, Any]) -> list[dict[str, Any]]:
    """The failed outcomes' arrays as executemany rows of `_FAILED_MANY`."""
    columns = ("ids", "attempts", "statuses", "errors", "retry_ats", "given_back")
    names = ("b_id", "b_attempts", "b_status", "b_error", "b_retry_at", "b_given_back")
    return [
        dict(zip(names, row, strict=True))
        for row in zip(*(arrays[column] for column in columns), strict=True)
    ]


# --- The two drivers ------------------------------------------------------------------------


class SessionOutbox:
    """`OutboxStore` through SQLAlchemy sessions (any database), a transaction each."""

    def __init__(self, session_factory: SessionFactory) -> None:
        self._session_factory = session_factory

    async def claim(
        self, *, channel: str, now: datetime, batch_size: int, claimed_until: datetime
    ) -> list[Claimed]:
        values = _claim_values(channel, now, batch_size, claimed_until)
        async with self._session_factory() as session, session.begin():
            return _in_order((await session.execute(CLAIM, values)).all())

    async def record(self, outcomes: list[Outcome], now: datetime) -> None:
        arrays = _as_arrays(outcomes, now)
        async with self._session_factory() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                if arrays.sent is not None:
                    await session.execute(_SENT_PG, arrays.sent)
                if arrays.failed is not None:
                    await session.execute(_FAILED_PG, arrays.failed)
                return
            if arrays.sent is not None:
                await session.execute(
                    _SENT_MANY,
                    [
                        {"b_id": id_, "b_now": now, "b_gateway_id": gateway_id or None}
                        for id_, gateway_id in zip(
                            arrays.sent["ids"], arrays.sent["gateway_ids"], strict=True
                        )
                    ],
                )
            if arrays.failed is not None:
                await session.execute(_FAILED_MANY, _as_rows(arrays.failed))


def _compiled_claim() -> tuple[str, tuple[str, ...], Mapping[str, Any]]:
    """`CLAIM` in asyncpg's numbered form, its parameters' names in order, and the values
    of those SQLAlchemy bound itself (the statuses the conditions compare with)."""
    # SQLAlchemy's dialect constructors are unannotated.
    compiled = CLAIM.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
    return compiled.string, tuple(compiled.positiontup or ()), compiled.params


_CLAIM_SQL, _CLAIM_NAMES, _CLAIM_BOUND = _compiled_claim()
_SENT_DRIVER = driver_statement(_SENT_PG.text)
_FAILED_DRIVER = driver_statement(_FAILED_PG.text)


class DriverOutbox:
    """`OutboxStore` on asyncpg connections (PostgreSQL): a statement per claim and per kind
    of outcome in a group, no ORM."""

    def __init__(self, connections: DriverConnections) -> None:
        self._connections = connections

    async def claim(
        self, *, channel: str, now: datetime, batch_size: int, claimed_until: datetime
    ) -> list[Claimed]:
        values = {**_CLAIM_BOUND, **_claim_values(channel, now, batch_size, claimed_until)}
        async with self._connections() as connection:
            rows = await connection.fetch(_CLAIM_SQL, *(values[name] for name in _CLAIM_NAMES))
        return _in_order(rows)

    async def record(self, outcomes: list[Outcome], now: datetime) -> None:
        arrays = _as_arrays(outcomes, now)
        async with self._connections() as connection:
            # Each statement commits on its own: an outcome stands alone, so a group needs
            # no transaction around its two kinds.
            if arrays.sent is not None:
                await connection.execute(_SENT_DRIVER.sql, *_SENT_DRIVER.args(arrays.sent))
            if arrays.failed is not None:
                await connection.execute(_FAILED_DRIVER.sql, *_FAILED_DRIVER.args(arrays.failed))
