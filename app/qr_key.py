"""The key that signs parents' meal QR codes (vouchers/qr.py checks them with it)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from app.settings import Settings
from vouchers.qr import load_or_create_key


@lru_cache(maxsize=4)
def _dev_qr_key(path: Path) -> bytes:
    return load_or_create_key(path)


def qr_signing_key(settings: Settings) -> bytes:
    """The QR signing key: QR_SIGNING_KEY, or in dev a random key kept in a file."""
    if settings.qr_signing_key is not None:
        return settings.qr_signing_key.get_secret_value().encode()
    if settings.is_prod:
        raise RuntimeError("QR_SIGNING_KEY must be set when ENVIRONMENT=prod")
    return _dev_qr_key(settings.dev_qr_key_path)
