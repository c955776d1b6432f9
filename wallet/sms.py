"""SMS gateways: how an outbox message leaves the building, always from 1414.

Genuine offers come only from the contact centre number 1414 (DOMAIN.md §1), so the sender is
a constant here and no caller can choose another.

    GatewayError              the gateway did not take the message
        .retryable = True     a timeout, a network error, a 5xx or 429: try again later
        .retryable = False    a 4xx: the request itself is wrong; retrying will not help

Gateways are pluggable (`SmsGateway`): `LogGateway` for development writes the message to
the log, `HttpGateway` posts it to a generic SMS gateway's JSON API.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Protocol

import structlog

from familymap.iin import mask_iins_in_text
from wallet.http_client import HttpClient, HttpClientError, HttpTimeout

SENDER = "1414"
_PHONE = re.compile(r"\+7\d{10}")

log = structlog.get_logger(__name__)


class GatewayError(Exception):
    """The gateway did not accept the message; `retryable` tells whether to try again."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(redact(message))
        self.retryable = retryable


class SmsGateway(Protocol):
    """Sends one SMS from 1414 and returns the gateway's id for it."""

    async def send(self, *, message_key: str, recipient: str, body: str) -> str: ...


def redact(text: str) -> str:
    """Mask phone numbers and anything that could be an IIN in text we store or log."""
    return mask_iins_in_text(_PHONE.sub(lambda match: mask_phone(match[0]), text))


def mask_phone(phone: str) -> str:
    """Keep a phone number's country code and last two digits: +7********67."""
    if len(phone) <= 4:
        return "*" * len(phone)
    return f"{phone[:2]}{'*' * (len(phone) - 4)}{phone[-2:]}"


class LogGateway:
    """Development gateway: logs the message (phone masked) and pretends it was delivered."""

    async def send(self, *, message_key: str, recipient: str, body: str) -> str:
        gateway_id = f"log-{uuid.uuid4().hex}"
        log.info(
            "sms.sent",
            sender=SENDER,
            to=mask_phone(recipient),
            text=mask_iins_in_text(body),
            message_key=mask_iins_in_text(message_key),
            gateway_message_id=gateway_id,
        )
        return gateway_id


class HttpGateway:
    """A generic SMS gateway's JSON API: POST {to, text, sender, idempotency_key} with a
    bearer token; a 2xx answer carries the gateway's message id.

    Requests go over the lean keep-alive client (`wallet.http_client`): at most
    `max_connections` at once to the gateway.
    """

    def __init__(
        self,
        *,
        url: str,
        token: str,
        timeout: float = 10.0,
        client: HttpClient | None = None,
        max_connections: int = 32,
    ) -> None:
        self._url = url
        self._token = token
        self._timeout = timeout
        # A client passed in (tests, a shared pool) is the caller's to close.
        self._client = client or HttpClient(max_connections=max_connections)
        self._owns_client = client is None

    @property
    def timeout(self) -> float:
        """The longest one send can take (the relay keeps a claim at least this long)."""
        return self._timeout

    async def aclose(self) -> None:
        """Close the HTTP client if this gateway made it."""
        if self._owns_client:
            await self._client.aclose()

    async def send(self, *, message_key: str, recipient: str, body: str) -> str:
        return await post_json(
            self._client,
            self._url,
            token=self._token,
            request_timeout=self._timeout,
            payload={
                "to": recipient,
                "text": body,
                "sender": SENDER,
                "idempotency_key": message_key,
            },
        )


async def post_json(
    client: HttpClient,
    url: str,
    *,
    token: str,
    request_timeout: float,
    payload: dict[str, Any],
) -> str:
    """POST `payload` with a bearer token; the remote id from a 2xx, else GatewayError.

    Shared by every outbound adapter (SMS, bank): timeouts, network errors, 5xx and 429 are
    retryable; any other 4xx is the request's own fault and is not.
    """
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        response = await client.post(
            url,
            body=body,
            headers={"Authorization": f"Bearer {token}"},
            request_timeout=request_timeout,
        )
    except HttpTimeout as exc:
        raise GatewayError(f"timeout: {exc}", retryable=True) from exc
    except HttpClientError as exc:
        # Connection refused, a reset, a broken answer: the message may not have arrived.
        raise GatewayError(f"transport error: {type(exc).__name__}", retryable=True) from exc
    status = response.status
    if status >= 500 or status == 429:
        raise GatewayError(f"gateway answered {status}", retryable=True)
    if status >= 400:
        # The response text may echo the message back: keep a short excerpt, with phone
        # numbers and IINs masked (GatewayError redacts its message).
        raise GatewayError(
            f"gateway refused the message: {status} {response.text[:200]}", retryable=False
        )
    if not 200 <= status < 300:
        raise GatewayError(f"unexpected gateway answer {status}", retryable=True)
    return _message_id(response.body)


def _message_id(body: bytes) -> str:
    """The gateway's id from a 2xx answer, or "" if it gave none.

    A 2xx means the gateway took the message. Raising here would resend an SMS that is
    already on its way, so an answer without an id still counts as sent.
    """
    try:
        data: Any = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict):
        for key in ("id", "message_id", "messageId"):
            if data.get(key) is not None:
                return str(data[key])[:128]
    return ""


def gateway_from_settings(
    kind: str, url: str | None = None, token: str | None = None
) -> SmsGateway:
    """The gateway named by SMS_GATEWAY ("log" or "http", with its URL and token)."""
    if kind == "log":
        return LogGateway()
    if kind == "http":
        if not url or not token:
            raise ValueError("SMS_GATEWAY=http needs SMS_GATEWAY_URL and SMS_GATEWAY_TOKEN")
        return HttpGateway(url=url, token=token)
    raise ValueError(f"unknown SMS gateway {kind!r}; expected 'log' or 'http'")
