"""Dynamic QR tokens for school meals: short-lived, signed, single use.

A token is `<payload>.<signature>`, both base64url: the payload names the voucher, the child,
the school it may be shown at, when it was issued and its expiry (unix seconds) and a random
nonce (the meal it pays for is of the day it was issued, `vouchers.meals`); the signature is
HMAC-SHA256 over the payload with the server's key. A forged or altered token fails the
signature (QR_INVALID), an old one its expiry (QR_EXPIRED), one shown at another school the
school check (WRONG_SCHOOL); single use is the database's: the redemption records the nonce
under a unique index, so a second use fails (QR_REPLAYED).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vouchers.errors import QrExpired, QrInvalid

DEFAULT_TTL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class QrClaims:
    """What a verified QR token says."""

    voucher_id: int
    child_person_id: int
    merchant_id: str
    expires_at: datetime
    nonce: str
    issued_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_qr(
    *,
    key: bytes,
    voucher_id: int,
    child_person_id: int,
    merchant_id: str,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> tuple[str, QrClaims]:
    """A fresh token for the child's voucher at one school, valid for `ttl`."""
    claims = QrClaims(
        voucher_id=voucher_id,
        child_person_id=child_person_id,
        merchant_id=merchant_id,
        expires_at=now + ttl,
        nonce=secrets.token_urlsafe(16),
        issued_at=now,
    )
    payload = json.dumps(
        {
            "v": claims.voucher_id,
            "c": claims.child_person_id,
            "s": claims.merchant_id,
            "e": int(claims.expires_at.timestamp()),
            "n": claims.nonce,
            "i": int(claims.issued_at.timestamp()),
        },
        separators=(",", ":"),
    ).encode()
    body = _b64(payload)
    signature = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}", claims


def verify_qr(*, key: bytes, token: str, now: datetime | None) -> QrClaims:
    """The token's claims if its signature holds and (unless `now` is None) it has not expired."""
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature:
        raise QrInvalid("refusal.qr_malformed")
    expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        # Compared in constant time, so the signature cannot be guessed byte by byte.
        if not hmac.compare_digest(expected, given):
            raise QrInvalid("refusal.qr_signature")
        raw = json.loads(_unb64(body))
        claims = QrClaims(
            voucher_id=int(raw["v"]),
            child_person_id=int(raw["c"]),
            merchant_id=str(raw["s"]),
            expires_at=datetime.fromtimestamp(int(raw["e"]), UTC),
            nonce=str(raw["n"]),
            issued_at=datetime.fromtimestamp(int(raw["i"]), UTC),
        )
    except QrInvalid:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise QrInvalid("refusal.qr_malformed") from exc
    if now is not None:
        check_unexpired(claims, now=now)
    return claims


def check_unexpired(claims: QrClaims, *, now: datetime) -> None:
    """QR_EXPIRED if the verified token's claims have run out at `now`."""
    if now >= claims.expires_at:
        raise QrExpired("refusal.qr_expired")


def load_or_create_key(path: Path) -> bytes:
    """The development signing key kept in `path` (mode 0600), created on first use."""
    if path.exists():
        return path.read_bytes()
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created by a concurrent worker: use theirs
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
