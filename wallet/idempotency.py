"""Idempotency keys for mutations: a replay returns the first result, other input is refused.

The record is written in the mutation's own transaction, so it exists exactly when the change
it describes was committed. Keys are scoped by caller and operation.

    IdempotencyError
    ├── InvalidIdempotencyKey   INVALID_IDEMPOTENCY_KEY   empty or longer than 128 characters
    └── IdempotencyKeyReused    IDEMPOTENCY_KEY_REUSED    the key was used with other input
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wallet.offer_tables import IdempotencyRecord

MAX_KEY_LENGTH = 128


class IdempotencyError(Exception):
    code = "IDEMPOTENCY_ERROR"


class InvalidIdempotencyKey(IdempotencyError):
    code = "INVALID_IDEMPOTENCY_KEY"


class IdempotencyKeyReused(IdempotencyError):
    code = "IDEMPOTENCY_KEY_REUSED"


def request_hash(request: dict[str, Any]) -> str:
    """A stable digest of a mutation's input (keys sorted, so order does not matter)."""
    canonical = json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidIdempotencyKey(
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} characters, not blank"
        )


async def replayed(
    *, session: AsyncSession, subject: str, operation: str, key: str, request: dict[str, Any]
) -> dict[str, Any] | None:
    """The first result under this key if the input matches; None if the key is new."""
    _check_key(key)
    record = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.subject == subject,
            IdempotencyRecord.operation == operation,
            IdempotencyRecord.key == key,
        )
    )
    if record is None:
        return None
    if record.request_hash != request_hash(request):
        raise IdempotencyKeyReused(
            f"idempotency key {key!r} was used for another {operation} request"
        )
    return record.result


async def remember(
    *,
    session: AsyncSession,
    subject: str,
    operation: str,
    key: str,
    request: dict[str, Any],
    result: dict[str, Any],
) -> None:
    """Record the result under the key, in the caller's transaction."""
    _check_key(key)
    try:
        async with session.begin_nested():
            session.add(
                IdempotencyRecord(
                    subject=subject,
                    operation=operation,
                    key=key,
                    request_hash=request_hash(request),
                    result=result,
                )
            )
    except IntegrityError:
        # A concurrent request with the same key committed first; its change stands and
        # this one must not: the caller's transaction is rolled back by the raise.
        raise IdempotencyKeyReused(
            f"idempotency key {key!r} is being used by a concurrent request"
        ) from None
