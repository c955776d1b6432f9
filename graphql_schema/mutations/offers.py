"""Answering offers and adding a bank account in the app: permission, one service call, the
result mapped. Each takes an idempotency key: a replay returns the first result."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy import select
from strawberry import relay
from strawberry.types import Info

from familymap.access import Role
from familymap.clock import utc_now
from familymap.tables import Person
from graphql_schema.audit import audit
from graphql_schema.context import Context
from graphql_schema.errors import refusal_text
from graphql_schema.permissions import require_principal, requires
from graphql_schema.queries.offers import caller_person_id
from graphql_schema.scalars import record_number
from graphql_schema.types.offers import (
    AnswerOfferResult,
    BankAccountRefused,
    BankAccountRegistered,
    DeclineReason,
    Offer,
    OfferAnswered,
    OfferRefused,
    RegisterBankAccountResult,
    snapshot,
)
from graphql_schema.types.refusal_codes import OfferRefusalCode
from wallet.bank import mask_iban
from wallet.idempotency import IdempotencyError, remember, replayed
from wallet.offers import OfferError, answer_offer, register_bank_account, validate_iban

NOT_IN_REGISTRY = "NOT_IN_REGISTRY"
KEY_HELP = "Your own id for this request: sending it again returns the first result."
# Annotated, not a default value: `= strawberry.argument(...)` made the argument optional in
# the exported schema with the annotation object's repr as its default.
IdempotencyKey = Annotated[str, strawberry.argument(description=KEY_HELP)]


async def family_of(session, person_id: int) -> int | None:
    return await session.scalar(select(Person.family_id).where(Person.id == person_id))


class _NotInRegistry(Exception):
    code = NOT_IN_REGISTRY


async def _answer(
    info: Info[Context, Any],
    offer_id: strawberry.ID,
    key: str,
    *,
    accept: bool,
    reason: DeclineReason | None = None,
) -> AnswerOfferResult:
    operation = "acceptOffer" if accept else "declineOffer"
    subject = require_principal(info).subject
    request = {"offerId": str(offer_id)}
    if reason is not None:
        # Only when given, so that a request made before reasons existed keeps its hash.
        request["reason"] = reason.value
    language = info.context.language
    try:
        async with info.context.session_factory() as session, session.begin():
            first = await replayed(
                session=session, subject=subject, operation=operation, key=key, request=request
            )
            if first is not None:
                return OfferAnswered(offer=Offer.from_snapshot(first, language), replayed=True)
            person_id = await caller_person_id(session, info)
            if person_id is None:
                raise _NotInRegistry("your IIN is not in the family map")
            number = _offer_number(offer_id)
            answer = await answer_offer(
                session=session,
                offer_id=number,
                recipient_person_id=person_id,
                accept=accept,
                channel="app",
                now=utc_now(),
                offer_days=info.context.settings.offer_days,
                reason=None if reason is None else reason.value,
            )
            result = snapshot(answer.offer)
            await remember(
                session=session,
                subject=subject,
                operation=operation,
                key=key,
                request=request,
                result=result,
            )
            await audit(
                info,
                session=session,
                role=Role.CITIZEN,
                subject_iin=subject,
                family_id=answer.offer.family_id,
                action="write",
                what=f"offer {answer.offer.id} {answer.offer.programme} {answer.offer.state}",
            )
    except (OfferError, IdempotencyError, _NotInRegistry) as refused:
        # A concurrent request under the same key may have won the race meanwhile: then its
        # result is this request's result too.
        async with info.context.session_factory() as session:
            try:
                first = await replayed(
                    session=session, subject=subject, operation=operation, key=key, request=request
                )
            except IdempotencyError:
                first = None
        if first is not None:
            return OfferAnswered(offer=Offer.from_snapshot(first, language), replayed=True)
        return OfferRefused(
            code=OfferRefusalCode(refused.code), message=refusal_text(refused, language)
        )
    return OfferAnswered(offer=Offer.from_snapshot(result, language), replayed=False)


def _offer_number(offer_id: strawberry.ID) -> int:
    """The offer's number from its plain id or its Relay global id; -1 if it is neither."""
    number = record_number(str(offer_id))
    if number is not None:
        return number
    try:
        global_id = relay.GlobalID.from_id(offer_id)
    except (ValueError, TypeError):
        return -1
    if global_id.type_name != "Offer":
        return -1
    # The decoded part escaped the ID scalar's checks: ASCII digits within int64 only.
    number = record_number(global_id.node_id)
    return -1 if number is None else number


@strawberry.type
class OfferMutations:
    @strawberry.mutation(
        description=(
            "Consent to one of your offers, also one you declined, until it expires. "
            "Eligibility is checked again at once; the benefit is then assigned and the "
            "payments due ordered (or, with no bank account on file, the offer waits in "
            "NEEDS_BANK_ACCOUNT). Citizens, own offers only."
        ),
        extensions=requires(Role.CITIZEN),
    )
    async def accept_offer(
        self,
        info: Info[Context, Any],
        offer_id: strawberry.ID,
        idempotency_key: IdempotencyKey,
    ) -> AnswerOfferResult:
        return await _answer(info, offer_id, idempotency_key, accept=True)

    @strawberry.mutation(
        description=(
            "Decline one of your open offers, optionally saying why (counted in the take-up "
            "funnel); you can still accept it until it expires. A consent cannot be declined. "
            "Citizens, own offers only."
        ),
        extensions=requires(Role.CITIZEN),
    )
    async def decline_offer(
        self,
        info: Info[Context, Any],
        offer_id: strawberry.ID,
        idempotency_key: IdempotencyKey,
        reason: DeclineReason | None = None,
    ) -> AnswerOfferResult:
        return await _answer(info, offer_id, idempotency_key, accept=False, reason=reason)

    @strawberry.mutation(
        description=(
            "Register the bank account (a Kazakh IBAN) your benefits are paid to; offers "
            "waiting for one are assigned and paid at once. Citizens only."
        ),
        extensions=requires(Role.CITIZEN),
    )
    async def register_bank_account(
        self,
        info: Info[Context, Any],
        iban: str,
        idempotency_key: IdempotencyKey,
    ) -> RegisterBankAccountResult:
        subject = require_principal(info).subject
        try:
            # Refused before the idempotency record: a bad IBAN is never remembered.
            request = {"iban": validate_iban(iban)}
        except OfferError as refused:
            return BankAccountRefused(code=OfferRefusalCode(refused.code), message=str(refused))
        language = info.context.language
        try:
            async with info.context.session_factory() as session, session.begin():
                first = await replayed(
                    session=session,
                    subject=subject,
                    operation="registerBankAccount",
                    key=idempotency_key,
                    request=request,
                )
                if first is None:
                    person_id = await caller_person_id(session, info)
                    if person_id is None:
                        raise _NotInRegistry("your IIN is not in the family map")
                    paid = await register_bank_account(
                        session=session, person_id=person_id, iban=iban, now=utc_now()
                    )
                    first = {
                        "iban_masked": mask_iban(request["iban"]),
                        "paid_offers": [snapshot(offer) for offer in paid],
                        "replayed": False,
                    }
                    await remember(
                        session=session,
                        subject=subject,
                        operation="registerBankAccount",
                        key=idempotency_key,
                        request=request,
                        result=first,
                    )
                    await audit(
                        info,
                        session=session,
                        role=Role.CITIZEN,
                        subject_iin=subject,
                        family_id=await family_of(session, person_id),
                        action="write",
                        what="bank account registered",
                    )
                else:
                    first = {**first, "replayed": True}
        except (OfferError, IdempotencyError, _NotInRegistry) as refused:
            return BankAccountRefused(
                code=OfferRefusalCode(refused.code), message=refusal_text(refused, language)
            )
        return BankAccountRegistered(
            iban_masked=first["iban_masked"],
            paid_offers=[Offer.from_snapshot(offer, language) for offer in first["paid_offers"]],
            replayed=first["replayed"],
        )
