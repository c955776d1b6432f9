"""A production app for the hardening tests: prod settings whose token verifier trusts the
dev issuer's key (so the tests can mint tokens for every role), on the test's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from pydantic import SecretStr

from app import asgi
from app.asgi import create_app
from app.auth import TokenVerifier
from app.settings import Settings


def prod_settings(settings: Settings, **overrides) -> Settings:
    return settings.model_copy(
        update={
            "environment": "prod",
            "jwt_jwks_url": "http://127.0.0.1:9/jwks.json",
            "qr_signing_key": SecretStr("prod-test-qr-key"),
            **overrides,
        }
    )


@pytest.fixture
def prod_client_for(settings, engine, session_factory, dev_issuer, monkeypatch) -> Callable:
    """`async with prod_client_for(**setting_overrides) as client:` a prod app's client."""

    def verifier(prod: Settings, _issuer) -> TokenVerifier:
        return TokenVerifier(
            issuer=prod.jwt_issuer,
            audience=prod.jwt_audience,
            leeway_seconds=0,
            public_key=dev_issuer.public_key,
        )

    monkeypatch.setattr(asgi, "build_token_verifier", verifier)

    @asynccontextmanager
    async def open_client(**overrides) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(
            prod_settings(settings, **overrides), engine=engine, session_factory=session_factory
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client

    return open_client
