"""Replies to 1414: a gateway's webhook, checked by its signature, answering offers by SMS.

The gateway signs each delivery: `X-Sms-Timestamp` (Unix seconds) and `X-Sms-Signature`
(`sha256=` and the hex HMAC-SHA256 of "<timestamp>.<raw body>" under the shared secret). A
signature that does not match is forged; one older than the tolerance is a replay of a
captured request. A delivery repeated by the gateway (same message id) is answered from the
record of the first and changes nothing.

A reply of 1 / Иә / Да (accept) or 2 / Жоқ / Нет (decline), in any case, with the offer's
reply code ("1 4821", "да 4821", "14821"), from the phone the offer was sent to answers that
offer and no other. A reply without a code answers an offer only when it is the one question
that phone has been asked lately (its deadline not long past); with several, the reply
changes nothing and the answer SMS lists the codes (docs/consent.md). Anything else changes
nothing and gets a helpful answer. Every reply is kept, with the sender's number masked.

A decline may end with one digit, the reason ("2 4821 3": DECLINE_REASONS, counted from 1,
as the answer to a decline lists them); sent after the decline, it records the reason only.

    InboundError
    ├── InvalidSignature   INVALID_SIGNATURE   no signature, or not the gateway's
    ├── StaleSignature     STALE_SIGNATURE     signed too long ago (or in the future)
    └── InvalidInbound     INVALID_INBOUND     not a JSON object with message_id, from, text
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.orm import as_utc, utcnow
from wallet.messages import reply_text, sms_text, unknown_sender_text
from wallet.offer_tables import DECLINE_REASONS, InboundSms, Offer
from wallet.offers import OfferError, answer_offer, give_decline_reason
from wallet.outbox import InvalidPhone, enqueue, validate_phone
from wallet.reply_codes import REPLY_CODE_DIGITS, give_codes
from wallet.sms import mask_phone

log = structlog.get_logger(__name__)

SIGNATURE_TOLERANCE_SECONDS = 300
_MAX_TIMESTAMP_DIGITS = 12
ACCEPT_WORDS = frozenset({"1", "иә", "ия", "да"})
DECLINE_WORDS = frozenset({"2", "жоқ", "нет"})
# A reply without a code still answers when the phone was asked one question lately: these
# are the offers whose deadline is ahead or at most this long past (a late reply to an
# expired offer must not land on a newer one).
BARE_REPLY_MEMORY = timedelta(days=30)
# ASCII digits only: a code is compared as text, and other scripts' digits are not codes.
_CODE = re.compile(rf"[0-9]{{{REPLY_CODE_DIGITS}}}")
_RUN_TOGETHER = re.compile(rf"[12][0-9]{{{REPLY_CODE_DIGITS}}}")
_SEPARATORS = re.compile(r"[\s,.;:#№-]+")
_REASON_DIGIT = re.compile(r"[0-9]")
_DECLINE_RUN = re.compile(rf"2[0-9]{{{REPLY_CODE_DIGITS}}}")


class InboundError(Exception):
    code = "INBOUND_ERROR"


class InvalidSignature(InboundError):
    code = "INVALID_SIGNATURE"


class StaleSignature(InboundError):
    code = "STALE_SIGNATURE"


class InvalidInbound(InboundError):
    code = "INVALID_INBOUND"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for a body, as the gateway computes it."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    *, secret: str, timestamp: str | None, signature: str | None, body: bytes, now: datetime
) -> None:
    """Raise unless the body was signed by the gateway within the tolerance."""
    if not timestamp or not signature:
        raise InvalidSignature("the request is not signed")
    # Unix seconds in ASCII digits: int() would also read "１７…" or " 17_00 ", and a number
    # of a thousand digits would overflow the comparison below.
    if not (
        len(timestamp) <= _MAX_TIMESTAMP_DIGITS and timestamp.isascii() and timestamp.isdigit()
    ):
        raise InvalidSignature("the timestamp is not a number")
    # Compared in constant time, so the signature cannot be guessed byte by byte; as bytes,
    # since compare_digest refuses (TypeError) a str with a non-ASCII character.
    expected = sign(secret, timestamp, body).encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape")):
        raise InvalidSignature("the signature does not match")
    signed_at = int(timestamp)
    if abs(now.timestamp() - signed_at) > SIGNATURE_TOLERANCE_SECONDS:
        raise StaleSignature("the signature is too old (or from the future)")


def split_code(text: str) -> tuple[str, str | None]:
    """The reply's answer word and the offer code it names (None if it names none).

    "1 4821", "4821 1", "да, 4821" and "14821" (the answer digit run into the code) name
    offer 4821; a reply whose parts are not one word and one code names no offer.
    """
    tokens = [token for token in _SEPARATORS.split(text.strip().strip(".!")) if token]
    if len(tokens) == 1 and _RUN_TOGETHER.fullmatch(tokens[0]):
        return tokens[0][0], tokens[0][1:]
    if len(tokens) == 2:
        for word, code in (tokens, tokens[::-1]):
            if _CODE.fullmatch(code) and not _CODE.fullmatch(word):
                return word, code
    return text, None


def split_decline_reason(text: str) -> tuple[str, str | None]:
    """The reply without its trailing reason digit, and that reason (None if it gives none).

    Only a decline carries one: "2 4821 3", "нет 4821 3", "24821 3" and, without a code, "2 3";
    a digit that is no reason's number is dropped and the decline stands without a reason.
    """
    tokens = [token for token in _SEPARATORS.split(text.strip().strip(".!")) if token]
    if not 2 <= len(tokens) <= 3 or not _REASON_DIGIT.fullmatch(tokens[-1]):
        return text, None
    first = tokens[0].casefold()
    declines = first in DECLINE_WORDS or (len(tokens) == 2 and _DECLINE_RUN.fullmatch(first))
    if not declines or (len(tokens) == 3 and not _CODE.fullmatch(tokens[1])):
        return text, None
    number = int(tokens[-1])
    reason = DECLINE_REASONS[number - 1] if 1 <= number <= len(DECLINE_REASONS) else None
    return " ".join(tokens[:-1]), reason


def read_reply(text: str) -> tuple[bool | None, str | None]:
    """Accept (True), decline (False) or neither (None), and the offer code named if any."""
    word, code = split_code(text)
    return parse_reply(word), code


def parse_reply(text: str) -> bool | None:
    """True to accept, False to decline, None if the reply is neither."""
    word = text.strip().strip(".!").casefold()
    if word in ACCEPT_WORDS:
        return True
    if word in DECLINE_WORDS:
        return False
    return None


@dataclass(frozen=True)
class InboundReply:
    """A reply as the gateway delivered it."""

    message_id: str
    sender: str
    text: str

    @classmethod
    def from_body(cls, body: bytes) -> InboundReply:
        try:
            data: Any = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested too deep
            raise InvalidInbound("the body is not JSON") from None
        if not isinstance(data, dict):
            raise InvalidInbound("the body is not a JSON object")
        fields: dict[str, Any] = {name: data.get(name) for name in ("message_id", "from", "text")}
        if not all(isinstance(value, str) for value in fields.values()):
            raise InvalidInbound("message_id, from and text are required strings")
        if not fields["message_id"] or len(fields["message_id"]) > 128:
            raise InvalidInbound("message_id is 1 to 128 characters")
        if not all(_storable(value) for value in fields.values()):
            raise InvalidInbound("message_id, from and text must be text without NUL")
        return cls(
            message_id=fields["message_id"], sender=fields["from"], text=fields["text"][:500]
        )


def _storable(text: str) -> bool:
    """Text a database can store: no NUL, no lone surrogate (JSON's "\\ud800")."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class InboundOutcome:
    # accepted | declined | assigned... (the offer's new state) | unknown_number | unparseable |
    # no_open_offer | ambiguous | unknown_code | closed_offer | invalid_sender | decline_reason
    # (a reason given after the decline) | a refusal code
    outcome: str
    offer_id: int | None
    replayed: bool = False


async def handle_reply(
    *, session: AsyncSession, reply: InboundReply, now: datetime | None = None
) -> InboundOutcome:
    """Apply one reply (or recognise a repeated delivery) and queue the answer SMS."""
    now = now or utcnow()
    held = await session.scalar(
        select(InboundSms).where(InboundSms.gateway_message_id == reply.message_id)
    )
    if held is not None:
        return InboundOutcome(outcome=held.outcome, offer_id=held.offer_id, replayed=True)
    try:
        sender = validate_phone(reply.sender)
    except InvalidPhone:
        sender = None
    outcome, offer_id, answer = await _decide(session=session, sender=sender, reply=reply, now=now)
    try:
        async with session.begin_nested():
            session.add(
                InboundSms(
                    gateway_message_id=reply.message_id,
                    sender_masked=mask_phone(reply.sender[:16]),
                    text=reply.text,
                    outcome=outcome,
                    offer_id=offer_id,
                    received_at=now,
                )
            )
    except IntegrityError:
        # The gateway delivered it twice at once; the other delivery is the one recorded, and
        # the raise rolls this one's change back.
        raise InvalidInbound("this message is being processed") from None
    if sender is not None and answer:
        await enqueue(
            session=session,
            message_key=f"inbound:{reply.message_id}:answer",
            channel="sms",
            recipient=sender,
            body=answer,
        )
    log.info(
        "sms.inbound", outcome=outcome, sender=mask_phone(reply.sender[:16]), offer_id=offer_id
    )
    return InboundOutcome(outcome=outcome, offer_id=offer_id)


async def _decide(
    *, session: AsyncSession, sender: str | None, reply: InboundReply, now: datetime
) -> tuple[str, int | None, str]:
    if sender is None:
        return "invalid_sender", None, ""
    offers = (
        await session.scalars(
            select(Offer)
            .where(Offer.phone == sender)
            .order_by(Offer.created_at.desc(), Offer.id.desc())
        )
    ).all()
    if not offers:
        return "unknown_number", None, unknown_sender_text()
    language = offers[0].language
    text, reason = split_decline_reason(reply.text)
    accept, code = read_reply(text)
    if accept is None:
        return "unparseable", None, sms_text("unparseable", language=language)
    open_offers = sorted(
        (o for o in offers if o.state == "offered" and _open(o, now)), key=lambda o: o.id
    )
    target = _target(offers=offers, open_offers=open_offers, code=code, now=now)
    about = target.named if isinstance(target, _NoTarget) else target
    # The reason for a decline made before (the answer to a decline asks for it).
    if (
        reason is not None
        and about is not None
        and about.state == "declined"
        and await give_decline_reason(
            session=session, offer=about, reason=reason, channel="sms", now=now
        )
    ):
        return "decline_reason", about.id, sms_text("decline_reason", language=language)
    if isinstance(target, _NoTarget):
        if target.outcome == "no_open_offer":
            return target.outcome, None, sms_text("no_open_offer", language=language)
        answer = reply_text(
            target.outcome,
            language=language,
            code=code or "",
            programme=target.named.programme if target.named is not None else "",
            choices=[(o.reply_code or "", o.programme) for o in open_offers],
        )
        return target.outcome, None, answer
    try:
        # The answer SMS about the offer is queued by answer_offer itself.
        answered = await answer_offer(
            session=session,
            offer_id=target.id,
            recipient_person_id=target.recipient_person_id,
            accept=accept,
            channel="sms",
            now=now,
            reason=None if accept else reason,
        )
    except OfferError as refused:
        return refused.code.lower(), target.id, sms_text("no_open_offer", language=language)
    return answered.offer.state, target.id, ""


@dataclass(frozen=True)
class _NoTarget:
    """Why a reply answers no offer: the outcome (also the answer's template) and the offer
    its code named, if that offer is no longer open."""

    outcome: str  # no_open_offer | closed_offer | unknown_code | ambiguous
    named: Offer | None = None


def _target(
    *,
    offers: Sequence[Offer],
    open_offers: Sequence[Offer],
    code: str | None,
    now: datetime,
) -> Offer | _NoTarget:
    """The one offer a reply answers, or why it answers none."""
    if not open_offers and code is None:
        return _NoTarget("no_open_offer")
    if code is not None:
        named = [o for o in offers if o.reply_code == code]
        if len(named) == 1 and named[0] in open_offers:
            return named[0]
        if len(named) == 1:
            return _NoTarget("closed_offer", named[0])
        if not open_offers:
            return _NoTarget("no_open_offer")
        # No offer has this code, or (after a race) two have: nothing is answered, and the
        # answer lists codes that each name one offer.
        give_codes(offers=offers)
        return _NoTarget("unknown_code")
    asked_lately = [o for o in offers if as_utc(o.expires_at) > now - BARE_REPLY_MEMORY]
    if len(asked_lately) == 1:
        # The one question this phone was asked lately, and it is open: a reply without a
        # code can be about nothing else.
        return asked_lately[0]
    give_codes(offers=offers)
    return _NoTarget("ambiguous")


def _open(offer: Offer, now: datetime) -> bool:
    return as_utc(offer.expires_at) > now
