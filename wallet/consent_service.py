"""Consent in the app: answering an offer and registering a bank account, as services.

What the API's resolvers used to do themselves lives here, so that they stay glue: each call
runs in one transaction that finds the caller in the registry, does the change
(wallet.offers), remembers its result under the client's idempotency key (wallet.idempotency)
and appends the audit record last (familymap.audit). A replay returns the first result; a
request that lost a race with a concurrent one under the same key returns the winner's
result; any other refusal is raised for the caller to show (OfferError, IdempotencyError,
NotInRegistry: each has a `code`).

Results are JSON-ready snapshots (they are what the idempotency record keeps).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.audit import Caller, record_access
from familymap.orm import as_utc
from familymap.tables import Person
from wallet.bank import mask_iban
from wallet.idempotency import IdempotencyError, remember, replayed
from wallet.offer_tables import Offer
from wallet.offers import OfferError, answer_offer, register_bank_account, validate_iban

Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]

# The scopes of the idempotency keys (stored with each record: never rename them).
ACCEPT_OFFER = "acceptOffer"
DECLINE_OFFER = "declineOffer"
REGISTER_BANK_ACCOUNT = "registerBankAccount"


class NotInRegistry(Exception):
    """The caller's IIN is not in the family map."""

    code = "NOT_IN_REGISTRY"


# What a refusal of these services is: each carries a `code`.
REFUSALS = (OfferError, IdempotencyError, NotInRegistry)

_SNAPSHOT_FIELDS = (
    "id", "programme", "kind", "amount_tiyn", "period_start", "period_end", "monthly_amounts",
    "state", "renewal",
    "created_at", "expires_at", "answered_at", "answer_channel", "paid_at", "note",
)  # fmt: skip


def offer_snapshot(row: Offer) -> dict[str, Any]:
    """The offer's visible fields as JSON-ready values (dates and times in ISO form)."""
    data: dict[str, Any] = {}
    for name in _SNAPSHOT_FIELDS:
        value = getattr(row, name)
        if isinstance(value, datetime):
            value = as_utc(value).isoformat()
        elif isinstance(value, date):
            value = value.isoformat()
        data[name] = value
    return data


@dataclass(frozen=True, slots=True)
class Answered:
    """The offer as the answer left it (or as the first request under the key did)."""

    offer: dict[str, Any]
    replayed: bool


@dataclass(frozen=True, slots=True)
class BankAccountRegistered:
    iban_masked: str
    paid_offers: list[dict[str, Any]]
    replayed: bool


async def answer_in_app(
    *,
    sessions: Sessions,
    caller: Caller,
    key: str,
    offer_ref: str,
    offer_id: int,
    accept: bool,
    reason: str | None,
    now: datetime,
    offer_days: int,
) -> Answered:
    """The citizen `caller` (whose actor is their IIN) accepts or declines their offer
    `offer_id`, which the client named `offer_ref` (a plain or Relay id: the key's request is
    that name, as the client sent it; an unknown offer is -1, refused as not found)."""
    operation = ACCEPT_OFFER if accept else DECLINE_OFFER
    request: dict[str, Any] = {"offerId": offer_ref}
    if reason is not None:
        # Only when given, so that a request made before reasons existed keeps its hash.
        request["reason"] = reason

    async def change(session: AsyncSession, person_id: int) -> tuple[dict[str, Any], int, str]:
        answer = await answer_offer(
            session=session,
            offer_id=offer_id,
            recipient_person_id=person_id,
            accept=accept,
            channel="app",
            now=now,
            offer_days=offer_days,
            reason=reason,
        )
        offer = answer.offer
        return (
            offer_snapshot(offer),
            offer.family_id,
            f"offer {offer.id} {offer.programme} {offer.state}",
        )

    result, was_replayed = await _once(
        sessions=sessions, caller=caller, operation=operation, key=key, request=request,
        change=change,
    )  # fmt: skip
    return Answered(offer=result, replayed=was_replayed)


async def register_bank_account_in_app(
    *, sessions: Sessions, caller: Caller, key: str, iban: str, now: datetime
) -> BankAccountRegistered:
    """The citizen `caller` registers the IBAN their benefits are paid to; the offers that
    waited for one are paid. A bad IBAN is refused (InvalidIban) before anything is
    remembered, so it never uses up the key."""
    request = {"iban": validate_iban(iban)}

    async def change(session: AsyncSession, person_id: int) -> tuple[dict[str, Any], int, str]:
        paid = await register_bank_account(session=session, person_id=person_id, iban=iban, now=now)
        result: dict[str, Any] = {
            "iban_masked": mask_iban(request["iban"]),
            "paid_offers": [offer_snapshot(offer) for offer in paid],
        }
        family_id = await session.scalar(select(Person.family_id).where(Person.id == person_id))
        assert family_id is not None  # the caller's own person row, found a moment before
        return result, family_id, "bank account registered"

    result, was_replayed = await _once(
        sessions=sessions, caller=caller, operation=REGISTER_BANK_ACCOUNT, key=key,
        request=request, change=change,
    )  # fmt: skip
    return BankAccountRegistered(
        iban_masked=result["iban_masked"],
        paid_offers=result["paid_offers"],
        replayed=was_replayed,
    )


Change = Callable[[AsyncSession, int], Awaitable[tuple[dict[str, Any], int | None, str]]]


async def _once(
    *,
    sessions: Sessions,
    caller: Caller,
    operation: str,
    key: str,
    request: dict[str, Any],
    change: Change,
) -> tuple[dict[str, Any], bool]:
    """Run `change` for the calling citizen once per key: (its result, whether replayed)."""
    try:
        async with sessions() as session, session.begin():
            first = await replayed(
                session=session, subject=caller.actor, operation=operation, key=key,
                request=request,
            )  # fmt: skip
            if first is not None:
                return _stored(first), True
            person_id = await session.scalar(select(Person.id).where(Person.iin == caller.actor))
            if person_id is None:
                raise NotInRegistry("your IIN is not in the family map")
            result, family_id, what = await change(session, person_id)
            await remember(
                session=session, subject=caller.actor, operation=operation, key=key,
                request=request, result=result,
            )  # fmt: skip
            await record_access(
                session=session, key=caller.key, actor=caller.actor, role=caller.role,
                subject_iin=caller.actor, family_id=family_id, action="write", what=what,
                operation=caller.operation, request_id=caller.request_id,
            )  # fmt: skip
    except REFUSALS:
        # A concurrent request under the same key may have won the race meanwhile: then its
        # result is this request's result too.
        async with sessions() as session:
            try:
                first = await replayed(
                    session=session, subject=caller.actor, operation=operation, key=key,
                    request=request,
                )  # fmt: skip
            except IdempotencyError:
                first = None
        if first is not None:
            return _stored(first), True
        raise
    return result, False


def _stored(result: dict[str, Any]) -> dict[str, Any]:
    # Bank registrations remembered before this module kept `replayed: False` in the record.
    return {name: value for name, value in result.items() if name != "replayed"}
