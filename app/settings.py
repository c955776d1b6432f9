"""Settings from the environment (pydantic-settings).

Every setting can be given as an environment variable of the same name in upper case
(`DATABASE_URL`, `ENVIRONMENT`, `JWT_ISSUER`, ...). The defaults are for a developer's
machine: an embedded SQLite file and a local token issuer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///var/socialwallet.db"


def normalise_database_url(url: str) -> str:
    """Pick the async driver for a plain URL: asyncpg for PostgreSQL, aiosqlite for SQLite."""
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


class Settings(BaseSettings):
    """The service's configuration; see the README for what each setting does."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Literal["dev", "prod"] = "dev"
    database_url: str = DEFAULT_SQLITE_URL
    database_echo: bool = False
    database_pool_size: int = Field(default=10, ge=1)

    jwt_issuer: str = "https://idp.socialwallet.local"
    jwt_audience: str = "socialwallet-api"
    # Production verifies RS256 tokens against the identity provider's JWKS document.
    jwt_jwks_url: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # The dev issuer's RSA key; created on first use, never used in prod.
    dev_jwt_key_path: Path = Path("var/dev-jwt-key.pem")
    dev_token_ttl_seconds: int = Field(default=12 * 3600, ge=60)

    # SMS from 1414: `log` writes messages to the log (development only), `http` posts them to
    # a generic SMS gateway's JSON API.
    sms_gateway: Literal["log", "http"] = "log"
    sms_gateway_url: str | None = None
    sms_gateway_token: SecretStr | None = None

    # Dynamic QR codes of school meals are signed with this key (HMAC-SHA256); required in
    # prod (refused at first use without it). In dev a random key is kept in DEV_QR_KEY_PATH.
    qr_signing_key: SecretStr | None = None
    dev_qr_key_path: Path = Path("var/dev-qr-key")
    qr_token_ttl_seconds: int = Field(default=60, ge=10, le=600)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _production_needs_an_identity_provider(self) -> Settings:
        if self.environment == "prod" and not self.jwt_jwks_url:
            raise ValueError("JWT_JWKS_URL must be set when ENVIRONMENT=prod")
        return self

    @model_validator(mode="after")
    def _sms_gateway_is_complete(self) -> Settings:
        if self.sms_gateway == "http" and not (self.sms_gateway_url and self.sms_gateway_token):
            raise ValueError("SMS_GATEWAY=http needs SMS_GATEWAY_URL and SMS_GATEWAY_TOKEN")
        return self

    # A plain property, not cached: a cached value would survive `model_copy(update=...)`.
    @property
    def async_database_url(self) -> str:
        """The database URL with an async driver."""
        return normalise_database_url(self.database_url)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def is_sqlite(self) -> bool:
        return self.async_database_url.startswith("sqlite")
