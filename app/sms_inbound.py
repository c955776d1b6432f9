"""POST /sms/inbound: the SMS gateway delivers replies to 1414 here.

Glue only: check the signature, parse the body, apply the reply in one transaction
(wallet.inbound), answer JSON. A body over 8 KiB is refused (413) by its Content-Length before
any of it is read, or, without one (chunked), as soon as it grows past the limit: it is never
held in memory whole. A forged or stale signature is 401 with a stable code and
changes nothing; a repeated delivery is 200 with `replayed: true` (the gateway must not keep
retrying a message we have), and nothing changes twice.
"""

from __future__ import annotations

import structlog
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from familymap.audit import record_access
from familymap.orm import utcnow
from familymap.tables import Person
from wallet.inbound import (
    InboundReply,
    InvalidInbound,
    InvalidSignature,
    StaleSignature,
    handle_reply,
    verify_signature,
)
from wallet.offer_tables import Offer

log = structlog.get_logger("socialwallet.sms_inbound")

MAX_BODY_BYTES = 8 * 1024


class _BodyTooLarge(Exception):
    pass


async def _body_within_limit(request: Request) -> bytes:
    """The body, read chunk by chunk; _BodyTooLarge once it passes MAX_BODY_BYTES."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _BodyTooLarge
    return bytes(body)


async def sms_inbound(request: Request) -> Response:
    declared = request.headers.get("content-length")
    if declared is not None and not (declared.isascii() and declared.isdigit()):
        return _refused(400, "BAD_CONTENT_LENGTH", "Content-Length is not a number")
    try:
        if declared is not None and int(declared) > MAX_BODY_BYTES:
            raise _BodyTooLarge
        body = await _body_within_limit(request)
    except _BodyTooLarge:
        return _refused(413, "PAYLOAD_TOO_LARGE", "the body is larger than an SMS reply can be")
    secret = request.app.state.settings.inbound_sms_secret
    if secret is None:
        return _refused(503, "INBOUND_NOT_CONFIGURED", "replies to 1414 are not configured")
    now = utcnow()
    try:
        verify_signature(
            secret=secret,
            timestamp=request.headers.get("x-sms-timestamp"),
            signature=request.headers.get("x-sms-signature"),
            body=body,
            now=now,
        )
        reply = InboundReply.from_body(body)
    except (InvalidSignature, StaleSignature) as refused:
        return _refused(401, refused.code, str(refused))
    except InvalidInbound as refused:
        return _refused(400, refused.code, str(refused))
    try:
        async with request.app.state.session_factory() as session, session.begin():
            outcome = await handle_reply(session=session, reply=reply, now=now)
            if outcome.offer_id is not None and not outcome.replayed:
                await _audit_answer(request, session, outcome.offer_id, outcome.outcome)
    except InvalidInbound as refused:
        # The same message id in flight twice: the gateway may retry later and be answered.
        return _refused(409, refused.code, str(refused))
    return JSONResponse(
        {"outcome": outcome.outcome, "offerId": outcome.offer_id, "replayed": outcome.replayed}
    )


async def _audit_answer(request: Request, session, offer_id: int, outcome: str) -> None:
    """An answer by SMS changed an offer: the audit trail records it (last in the transaction)."""
    offer = await session.get(Offer, offer_id)
    iin = await session.scalar(select(Person.iin).where(Person.id == offer.recipient_person_id))
    await record_access(
        session=session,
        key=request.app.state.settings.audit_key,
        actor="sms-gateway",
        role="SMS_GATEWAY",
        subject_iin=iin,
        family_id=offer.family_id,
        action="write",
        what=f"offer {offer_id} {offer.programme} answered by SMS: {outcome}",
        operation="POST /sms/inbound",
        request_id=request.scope.get("state", {}).get("request_id"),
    )


def _refused(status: int, code: str, message: str) -> Response:
    # The sender's mistake (or a forgery): a warning with the code, no traceback, no body.
    log.warning("sms.inbound_refused", status=status, code=code)
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
