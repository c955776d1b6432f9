"""Answering offers and adding a bank account in the app: permission, one service call
(wallet.consent_service: idempotency, audit and race recovery live there), the result mapped.
Each takes an idempotency key: a replay returns the first result."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from familymap.access import Role
from familymap.clock import utc_now
from graphql_schema.audit import audit_caller
from graphql_schema.context import Context
from graphql_schema.errors import refusal_text
from graphql_schema.permissions import requires
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
)
from graphql_schema.types.refusal_codes import OfferRefusalCode
from wallet import consent_service
from wallet.offers import InvalidIban

KEY_HELP = "Your own id for this request: sending it again returns the first result."
# Annotated, not a default value: `= strawberry.argument(...)` made the argument optional in
# the exported schema with the annotation object's repr as its default.
IdempotencyKey = Annotated[str, strawberry.argument(description=KEY_HELP)]


async def _answer(
    info: Info[Context, Any],
    offer_id: strawberry.ID,
    key: str,
    *,
    accept: bool,
    reason: DeclineReason | None = None,
) -> AnswerOfferResult:
    language = info.context.language
    try:
        answered = await consent_service.answer_in_app(
            sessions=info.context.session_factory,
            caller=audit_caller(info, role=Role.CITIZEN),
            key=key,
            offer_ref=str(offer_id),
            offer_id=_offer_number(offer_id),
            accept=accept,
            reason=None if reason is None else reason.value,
            now=utc_now(),
            offer_days=info.context.settings.offer_days,
        )
    except consent_service.REFUSALS as refused:
        return OfferRefused(
            code=OfferRefusalCode(refused.code), message=refusal_text(refused, language)
        )
    return OfferAnswered(
        offer=Offer.from_snapshot(answered.offer, language), replayed=answered.replayed
    )


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
        language = info.context.language
        try:
            registered = await consent_service.register_bank_account_in_app(
                sessions=info.context.session_factory,
                caller=audit_caller(info, role=Role.CITIZEN),
                key=idempotency_key,
                iban=iban,
                now=utc_now(),
            )
        except InvalidIban as refused:
            # Checked before anything is remembered (a bad IBAN is never stored as a result).
            return BankAccountRefused(
                code=OfferRefusalCode(refused.code), message=refusal_text(refused, language)
            )
        except consent_service.REFUSALS as refused:
            return BankAccountRefused(
                code=OfferRefusalCode(refused.code), message=refusal_text(refused, language)
            )
        return BankAccountRegistered(
            iban_masked=registered.iban_masked,
            paid_offers=[Offer.from_snapshot(offer, language) for offer in registered.paid_offers],
            replayed=registered.replayed,
        )
