"""POST /sms/inbound against bad input (issue 14 items 8 and 9): 4xx, never a 500, and an
oversized body refused before it is read whole."""

from __future__ import annotations

import json
import logging
import time

import pytest

from app.settings import DEV_SMS_INBOUND_SECRET
from wallet.inbound import sign

MAX = 8 * 1024


def signed_headers(raw: bytes, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    return {
        "x-sms-timestamp": timestamp,
        "x-sms-signature": sign(DEV_SMS_INBOUND_SECRET, timestamp, raw),
        "content-type": "application/json",
    }


async def test_a_non_ascii_byte_in_the_signature_is_401(client, caplog):
    # given a body and a signature header holding a byte that is not ASCII
    raw = b'{"message_id": "m-1", "from": "+77011234567", "text": "1"}'
    headers = {**signed_headers(raw), "x-sms-signature": b"sha256=\xff\xfe"}
    # when it is delivered
    with caplog.at_level(logging.WARNING):
        response = await client.post("/sms/inbound", content=raw, headers=headers)
    # then it is a forged signature, not a TypeError from compare_digest
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "INVALID_SIGNATURE"
    # and it is logged at warning, without a traceback
    assert any("sms.inbound_refused" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "timestamp", ["9" * 400, "1_763_000_000", " 1763000000"], ids=["400 digits", "_", "space"]
)
async def test_a_timestamp_that_is_not_ascii_seconds_is_refused(client, timestamp):
    # given a body signed with the right secret over a timestamp that is no plain number
    raw = b'{"message_id": "m-2", "from": "+77011234567", "text": "1"}'
    # when it is delivered
    response = await client.post(
        "/sms/inbound", content=raw, headers=signed_headers(raw, timestamp)
    )
    # then it is refused (400 digits overflowed a float comparison before: a 500)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "INVALID_SIGNATURE"


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 4_000 + b"]" * 4_000,
        b'{"message_id": "m-\\u0000", "from": "+77011234567", "text": "1"}',
        b'{"message_id": "m-3", "from": "+77011234567", "text": "\\ud800"}',
    ],
    ids=["nested 4,000 deep", "NUL in the id", "a lone surrogate"],
)
async def test_a_signed_body_that_cannot_be_a_reply_is_400(client, raw):
    # when a correctly signed body that no database could store, or no decoder read, arrives
    response = await client.post("/sms/inbound", content=raw, headers=signed_headers(raw))
    # then it is refused as malformed
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_INBOUND"


async def test_a_declared_length_over_the_limit_is_413_before_reading(client):
    # given a request that declares 256 MB
    pulled = 0

    async def body():
        nonlocal pulled
        for _ in range(4):
            pulled += 4096
            yield b" " * 4096

    headers = {"content-length": str(256 * 1024 * 1024), "content-type": "application/json"}
    # when it is delivered
    response = await client.post("/sms/inbound", content=body(), headers=headers)
    # then it is refused on the header alone, before the body is read
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert pulled <= 4096


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(client):
    # given an unsigned body streamed without a Content-Length, 64 times the limit
    pulled = 0

    async def body():
        nonlocal pulled
        for _ in range(64):
            pulled += MAX
            yield b" " * MAX

    # when it is delivered
    response = await client.post("/sms/inbound", content=body())
    # then it is refused, and the app stopped reading a chunk or two past the limit
    assert response.status_code == 413
    assert pulled <= 3 * MAX


async def test_a_sender_number_in_full_width_digits_is_no_phone_number(client):
    # given a signed reply from "+7" and ten full-width digits
    sender = "+7" + "".join(chr(0xFF10 + int(d)) for d in "7011234567")
    raw = json.dumps({"message_id": "m-wide", "from": sender, "text": "1"}).encode()
    # when it is delivered
    response = await client.post("/sms/inbound", content=raw, headers=signed_headers(raw))
    # then it is kept, but as from an invalid sender: no answer SMS goes to that "number"
    assert response.status_code == 200
    assert response.json()["outcome"] == "invalid_sender"
