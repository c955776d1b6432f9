"""Bank adapters: how a payment order reaches the bank that pays it into the person's IBAN.

A payment order is an outbox message on the `bank` channel (queued in the same transaction
as its ledger transfer), so the order leaves at least once; the bank deduplicates by the
order's key, which every adapter passes on. Adapters are pluggable like the SMS gateways:
`LogBank` for development (prod refuses it: it sends nothing), `HttpBank` for a bank's JSON API.

The bank's answer is a reference, not a payment: the payment is `sent` until the bank's
statement books it paid or returned (wallet.reconcile), matched by the payment key the
order carries as its end-to-end id.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import structlog

from familymap.iin import mask_iins_in_text
from wallet.http_client import HttpClient
from wallet.sms import post_json

log = structlog.get_logger(__name__)


def mask_iban(iban: str) -> str:
    """Keep an IBAN's country, check digits and last four characters: KZ12************3456."""
    if len(iban) <= 8:
        return "*" * len(iban)
    return f"{iban[:4]}{'*' * (len(iban) - 8)}{iban[-4:]}"


def payment_order(
    *, payment_key: str, iban: str, amount_tiyn: int, programme: str, for_month: str
) -> str:
    """The body of a payment order as the adapters send it (JSON, amounts in tiyn)."""
    return json.dumps(
        {
            "payment_key": payment_key,
            "iban": iban,
            "amount_tiyn": amount_tiyn,
            "currency": "KZT",
            "purpose": programme,
            "for_month": for_month,
        },
        sort_keys=True,
    )


class LogBank:
    """Development adapter: logs the order (IBAN masked) and answers with a bank reference."""

    async def send(self, *, message_key: str, recipient: str, body: str) -> str:
        order: dict[str, Any] = json.loads(body)
        log.info(
            "bank.order",
            order_key=mask_iins_in_text(message_key),
            iban=mask_iban(recipient),
            amount_tiyn=order.get("amount_tiyn"),
            purpose=order.get("purpose"),
        )
        return f"dev-{uuid.uuid4()}"


class HttpBank:
    """A bank's payment-order JSON API: POST the order with a bearer token; the bank's
    reference comes back in a 2xx answer. Errors are classified as for SMS gateways."""

    def __init__(
        self, *, url: str, token: str, timeout: float = 10.0, client: HttpClient | None = None
    ) -> None:
        self._url = url
        self._token = token
        self._timeout = timeout
        self._client = client or HttpClient()
        self._owns_client = client is None

    async def aclose(self) -> None:
        """Close the HTTP client if this adapter made it."""
        if self._owns_client:
            await self._client.aclose()

    async def send(self, *, message_key: str, recipient: str, body: str) -> str:
        payload = {**json.loads(body), "idempotency_key": message_key, "iban": recipient}
        return await post_json(
            self._client,
            self._url,
            token=self._token,
            request_timeout=self._timeout,
            payload=payload,
        )


def bank_from_settings(
    kind: str, url: str | None = None, token: str | None = None
) -> LogBank | HttpBank:
    """The adapter named by BANK_GATEWAY ("log" or "http", with its URL and token)."""
    if kind == "log":
        return LogBank()
    if kind == "http":
        if not url or not token:
            raise ValueError("BANK_GATEWAY=http needs BANK_GATEWAY_URL and BANK_GATEWAY_TOKEN")
        return HttpBank(url=url, token=token)
    raise ValueError(f"unknown bank gateway {kind!r}; expected 'log' or 'http'")
