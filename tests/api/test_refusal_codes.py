"""Refusal codes are enums with exactly the codes the domain raises, so clients can switch on
them: a code the domain gains fails here until the enum has it, and the enum keeps no code the
domain no longer raises."""

from __future__ import annotations

import inspect
import re
from enum import Enum

from graphql_schema.types.refusal_codes import (
    LifeEventRefusalCode,
    OfferRefusalCode,
    VoucherRefusalCode,
)
from vouchers import errors as voucher_errors
from vouchers import fulfilment, meals, medicines
from vouchers.errors import VoucherError
from wallet.idempotency import IdempotencyError
from wallet.ledger import LedgerError
from wallet.offers import FulfilmentRefused, OfferError


def codes_of(base: type[Exception]) -> set[str]:
    """The codes of every exception class under `base` that declares its own."""
    found: set[str] = set()
    pending = list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if isinstance(cls.__dict__.get("code"), str):
            found.add(cls.__dict__["code"])
    return found


def members(enum: type[Enum]) -> set[str]:
    return {member.value for member in enum}


def raised_in(*functions) -> set[str]:
    """The voucher codes raised by name in these functions' source."""
    names = {n for f in functions for n in re.findall(r"raise (\w+)\(", inspect.getsource(f))}
    return {getattr(voucher_errors, n).code for n in names if hasattr(voucher_errors, n)}


def test_voucher_refusals_are_the_voucher_and_ledger_codes():
    # given the domain errors the voucher mutations turn into VoucherRefused
    domain = codes_of(VoucherError) | codes_of(LedgerError)
    # then the enum is exactly those codes
    assert members(VoucherRefusalCode) == domain


def test_offer_refusals_are_the_offer_idempotency_and_fulfilment_codes():
    # given what the offer mutations catch: the offer flow's and idempotency's errors, the
    # mutations' own NOT_IN_REGISTRY, and whatever the voucher fulfillers raise at consent
    fulfilled = raised_in(
        fulfilment.fulfil_school_meals,
        fulfilment.fulfil_medicines,
        meals.issue_meal_voucher,
        meals._school_year_or_refuse,
        medicines.issue_medicine_voucher,
    )
    assert FulfilmentRefused.__dict__.get("code") is None  # it carries the fulfiller's code
    domain = codes_of(OfferError) | codes_of(IdempotencyError) | {"NOT_IN_REGISTRY"} | fulfilled
    # then the enum is exactly those codes
    assert fulfilled and members(OfferRefusalCode) == domain


def test_life_event_refusals_are_the_event_codes_the_domain_raises():
    # given the codes the event domain uses outside their definition
    from familymap import events

    source = inspect.getsource(events)
    used = set(re.findall(r"EventCode\.([A-Z_]+)", source))
    # then the enum is exactly those codes
    assert members(LifeEventRefusalCode) == used
