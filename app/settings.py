"""Settings from the environment (pydantic-settings).

Every setting can be given as an environment variable of the same name in upper case
(`DATABASE_URL`, `ENVIRONMENT`, `JWT_ISSUER`, ...). The defaults are for a developer's
machine: an embedded SQLite file and a local token issuer.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///var/socialwallet.db"
# Dev only (prod refuses to start without AUDIT_HASH_KEY): a known key keeps dev hashes stable.
DEV_AUDIT_HASH_KEY = b"socialwallet-dev-audit-key"


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


# A secret in prod is at least 32 bytes of randomness: `openssl rand -hex 32` (64 characters).
MIN_SECRET_BYTES = 32
# What 32 random bytes carry is 256 bits; a hex or base64 spelling of them, estimated by its
# characters' frequencies, still shows over 160. A word, a repeated character or a short
# phrase padded to 32 characters shows far less.
MIN_SECRET_BITS = 128


def weak_secret(value: str) -> str | None:
    """Why `value` is too weak to be a production secret, or None if it will do."""
    raw = value.encode()
    if len(raw) < MIN_SECRET_BYTES:
        return f"is {len(raw)} bytes long; at least {MIN_SECRET_BYTES} random bytes are needed"
    counts = Counter(raw)
    bits = -sum(c * math.log2(c / len(raw)) for c in counts.values())
    if bits < MIN_SECRET_BITS:
        return "is not random enough"
    return None


# Known to everyone who reads this file, so prod never uses it (see inbound_sms_secret).
DEV_SMS_INBOUND_SECRET = "dev-sms-inbound-secret"  # noqa: S105 - a documented dev value


class Settings(BaseSettings):
    """The service's configuration; docs/operations.md says what each setting does."""

    # hide_input_in_errors: a refused setting must not print the secrets given with it.
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    environment: Literal["dev", "prod"] = "dev"
    database_url: str = DEFAULT_SQLITE_URL
    database_echo: bool = False
    database_pool_size: int = Field(default=10, ge=1)
    # The canteen's hot path (app/driver_db.py) has a pool of its own per process; a few
    # connections serve it best (docs/performance.md).
    database_hot_pool_size: int = Field(default=3, ge=1)
    # DATABASE_URL names a pooler in transaction mode (pgbouncer): consecutive transactions
    # of one client may run on different server connections, so no named prepared statement
    # or session setting may outlive its transaction (docs/operations.md).
    database_transaction_pooler: bool = False

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

    # Replies to 1414 arrive at POST /sms/inbound signed with this shared secret (HMAC).
    # Development falls back to DEV_SMS_INBOUND_SECRET; production has no fallback, and
    # without its own secret refuses every reply (503) rather than trust a known one.
    sms_inbound_secret: SecretStr | None = None
    # Payment orders: `log` (development only) or `http`, a bank's payment-order JSON API.
    bank_gateway: Literal["log", "http"] = "log"
    bank_gateway_url: str | None = None
    bank_gateway_token: SecretStr | None = None
    # How long a proactive offer waits for an answer.
    offer_days: int = Field(default=30, ge=1, le=365)
    # Run the outbox relays and the offer, payment and expiry jobs inside the server process.
    # `socialwallet serve` turns this on; tests and one-off commands leave it off.
    background_jobs: bool = False
    background_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    # GraphQL limits: every document is checked against them before anything runs.
    graphql_max_depth: int = Field(default=10, ge=1)
    graphql_max_aliases: int = Field(default=15, ge=0)
    graphql_max_tokens: int = Field(default=2000, ge=10)
    # A request body larger than this is refused (413) before it is read whole.
    graphql_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Field selections with every fragment spread out (fragments can multiply a document).
    graphql_max_selections: int = Field(default=500, ge=1)
    # Trusted documents: only the registered operations run (graphql_schema/operations).
    # Unset means "in prod only"; the fuzzing tests set it false to reach the resolvers.
    trusted_documents_only: bool | None = None
    # Apollo's persisted-query manifest of the mobile builds (their reprinted documents).
    trusted_documents_manifest: Path | None = None
    # Per-subject rate limits; Redis makes them hold across workers (None: in-process).
    redis_url: str | None = None
    rate_limit_mutations_per_minute: int = Field(default=60, ge=1)
    rate_limit_qr_tokens_per_minute: int = Field(default=10, ge=1)
    # Schools' and pharmacies' staff tokens: a canteen's lunch peak, not a person's pace.
    rate_limit_merchant_mutations_per_minute: int = Field(default=3000, ge=1)
    # A pharmacy's prescription lookups, per staff token (guessing ids is refused).
    rate_limit_prescription_lookups_per_minute: int = Field(default=30, ge=1)
    # The key of the audit trail's subject hashes (HMAC-SHA256 of the IIN); required in prod.
    audit_hash_key: SecretStr | None = None
    # Dynamic QR codes of school meals are signed with this key (HMAC-SHA256); required in
    # prod (refused at first use without it). In dev a random key is kept in DEV_QR_KEY_PATH.
    qr_signing_key: SecretStr | None = None
    dev_qr_key_path: Path = Path("var/dev-qr-key")
    qr_token_ttl_seconds: int = Field(default=60, ge=10, le=600)

    # /metrics in prod answers only `Authorization: Bearer <METRICS_TOKEN>`; without the
    # setting it is off (404). Dev serves it to anyone (docs/security.md).
    metrics_token: SecretStr | None = None

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
    def _production_needs_an_audit_key(self) -> Settings:
        if self.environment == "prod" and not self.audit_hash_key:
            raise ValueError("AUDIT_HASH_KEY must be set when ENVIRONMENT=prod")
        return self

    @model_validator(mode="after")
    def _production_needs_a_qr_key(self) -> Settings:
        # Refused at start rather than at the first QR code: a canteen must not find out.
        if self.environment == "prod" and not self.qr_signing_key:
            raise ValueError("QR_SIGNING_KEY must be set when ENVIRONMENT=prod")
        return self

    @model_validator(mode="after")
    def _production_secrets_are_strong(self) -> Settings:
        # A one-letter AUDIT_HASH_KEY makes every subject hash in the audit trail reversible
        # by trying each IIN; a guessable QR key lets anyone mint a child's meal code.
        if self.environment != "prod":
            return self
        for name in ("audit_hash_key", "qr_signing_key", "sms_inbound_secret", "metrics_token"):
            secret: SecretStr | None = getattr(self, name)
            if secret is None:
                continue
            why = weak_secret(secret.get_secret_value())
            if why is not None:
                raise ValueError(
                    f"{name.upper()} {why} when ENVIRONMENT=prod "
                    "(make one with: openssl rand -hex 32)"
                )
        return self

    @model_validator(mode="after")
    def _sms_gateway_is_complete(self) -> Settings:
        if self.sms_gateway == "http" and not (self.sms_gateway_url and self.sms_gateway_token):
            raise ValueError("SMS_GATEWAY=http needs SMS_GATEWAY_URL and SMS_GATEWAY_TOKEN")
        return self

    @model_validator(mode="after")
    def _bank_gateway_is_complete(self) -> Settings:
        if self.bank_gateway == "http" and not (self.bank_gateway_url and self.bank_gateway_token):
            raise ValueError("BANK_GATEWAY=http needs BANK_GATEWAY_URL and BANK_GATEWAY_TOKEN")
        return self

    @model_validator(mode="after")
    def _production_sends_for_real(self) -> Settings:
        # A log gateway marks messages sent and payment orders accepted without sending
        # anything: in prod the jobs would then record payments and SMS that never left.
        if self.environment != "prod":
            return self
        fakes = [
            name
            for name, kind in (
                ("SMS_GATEWAY", self.sms_gateway),
                ("BANK_GATEWAY", self.bank_gateway),
            )
            if kind == "log"
        ]
        if fakes:
            named = " and ".join(f"{name}=log" for name in fakes)
            wanted = "; ".join(f"{name}=http with {name}_URL and {name}_TOKEN" for name in fakes)
            raise ValueError(
                f"{named} only writes to the log and sends nothing (development only); "
                f"ENVIRONMENT=prod needs {wanted}"
            )
        return self

    @property
    def inbound_sms_secret(self) -> str | None:
        """The secret replies to 1414 are signed with: a fixed one in development, none in
        prod unless SMS_INBOUND_SECRET is set (then /sms/inbound refuses every request)."""
        if self.sms_inbound_secret is not None:
            return self.sms_inbound_secret.get_secret_value()
        return None if self.is_prod else DEV_SMS_INBOUND_SECRET

    # A plain property, not cached: a cached value would survive `model_copy(update=...)`.
    @property
    def async_database_url(self) -> str:
        """The database URL with an async driver."""
        return normalise_database_url(self.database_url)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def enforces_trusted_documents(self) -> bool:
        """Whether only registered operations may run."""
        return self.is_prod if self.trusted_documents_only is None else self.trusted_documents_only

    @property
    def audit_key(self) -> bytes:
        """The audit hash key; dev has a fixed one so its hashes are reproducible."""
        if self.audit_hash_key is not None:
            return self.audit_hash_key.get_secret_value().encode()
        return DEV_AUDIT_HASH_KEY

    @property
    def is_sqlite(self) -> bool:
        return self.async_database_url.startswith("sqlite")
