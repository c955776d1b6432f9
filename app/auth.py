"""Authentication: JWT bearer tokens, verified once per request.

Tokens are RS256 only; the algorithm is pinned so that `alg: none` or an HS256 token signed
with our public key as its secret (the classic key-confusion attack) can never verify.
`exp`, `iat`, `iss`, `aud` and `sub` are required. Production takes its keys from the identity
provider's JWKS (PyJWKClient caches them and fetches again when an unknown `kid` appears, which
is how key rotation reaches us); `dev` has a local issuer whose key lives in a file.

Authorisation is not decided here: the GraphQL layer checks roles and ownership per field.
The roles and the Principal live below both, in familymap.access (the schema reads them
without importing the app).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection

from app.settings import Settings
from familymap.access import MERCHANT_ROLES, Principal, Role
from familymap.i18n import Refusal
from familymap.iin import is_valid_iin

ALGORITHMS = ["RS256"]
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


class TokenRejected(Refusal):
    """A bearer token that must not be trusted: a catalogue message (`error.token.*`) safe to
    show the caller, in their language; `reason` is its English text."""

    @property
    def reason(self) -> str:
        return str(self)


MAX_SUBJECT_LENGTH = 128


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Check the claims' shape and turn them into a Principal."""
    raw_roles = claims.get("roles")
    if not isinstance(raw_roles, list) or not raw_roles:
        raise TokenRejected("error.token.no_roles")
    try:
        roles = frozenset(Role(r) for r in raw_roles)
    except ValueError as exc:
        raise TokenRejected("error.token.unknown_role") from exc
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise TokenRejected("error.token.empty_subject")
    # An IIN, a merchant id or a staff id: printable ASCII. uuid.UUID() and int() read
    # full-width digits, so "５c00…" would be a second spelling of a merchant's id; and a
    # NUL would reach the audit trail, which PostgreSQL cannot store.
    if len(subject) > MAX_SUBJECT_LENGTH or not (subject.isascii() and subject.isprintable()):
        raise TokenRejected("error.token.subject_not_ascii")
    if Role.CITIZEN in roles and not is_valid_iin(subject):
        raise TokenRejected("error.token.citizen_subject")
    if roles & MERCHANT_ROLES:
        try:
            uuid.UUID(subject)
        except ValueError as exc:
            raise TokenRejected("error.token.merchant_subject") from exc
    return Principal(
        subject=subject,
        roles=roles,
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        token_id=claims.get("jti"),
    )


# A canteen's terminal sends the same token with every scan; checking its RSA signature and
# claims each time cost about 0.15 ms of the millisecond a redemption takes. A token that
# verified is remembered, by the token itself (only a token that verified can be found), for
# VERIFIED_TTL_SECONDS at most and never past its own expiry; the memory is emptied when full.
VERIFIED_TTL_SECONDS = 60
VERIFIED_MAX = 10_000


class TokenVerifier:
    """Verifies bearer tokens against a fixed public key or an identity provider's JWKS."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int,
        public_key: Any = None,
        jwks_client: jwt.PyJWKClient | None = None,
    ) -> None:
        if (public_key is None) == (jwks_client is None):
            raise ValueError("give exactly one of public_key or jwks_client")
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._public_key = public_key
        self._jwks_client = jwks_client
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        """Return the token's principal, or raise TokenRejected saying why."""
        remembered = self._verified.get(token)
        now = time.time()
        if remembered is not None and now < remembered[1]:
            return remembered[0]
        principal = await self._verify(token)
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (
            principal,
            min(now + VERIFIED_TTL_SECONDS, principal.expires_at.timestamp()),
        )
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            if self._jwks_client is not None:
                # PyJWKClient does blocking HTTP when its cache misses; keep it off the loop.
                signing_key = await anyio.to_thread.run_sync(
                    self._jwks_client.get_signing_key_from_jwt, token
                )
                key = signing_key.key
            else:
                key = self._public_key
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejected("error.token.expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRejected("error.token.audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenRejected("error.token.issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected("error.token.missing_claim", claim=exc.claim) from exc
        except jwt.InvalidAlgorithmError as exc:
            raise TokenRejected("error.token.algorithm") from exc
        except jwt.PyJWKClientError as exc:
            raise TokenRejected("error.token.unknown_key") from exc
        except jwt.PyJWTError as exc:
            raise TokenRejected("error.token.malformed") from exc
        return principal_from_claims(claims)


class DevIssuer:
    """The local token issuer of `dev`: an RSA key in a file, created on first use."""

    def __init__(self, *, key_path: Path, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._key = _load_or_create_private_key(key_path)
        self._issuer = issuer
        self._audience = audience
        self._ttl = timedelta(seconds=ttl_seconds)
        public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = hashlib.sha256(public_der).hexdigest()[:16]

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def mint(self, *, roles: Iterable[Role], subject: str, ttl: timedelta | None = None) -> str:
        """Mint a signed token for `subject` with `roles`."""
        now = datetime.now(UTC)
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "roles": sorted(Role(r).value for r in roles),
            "iat": now,
            "nbf": now,
            "exp": now + (ttl or self._ttl),
            "jti": uuid.uuid4().hex,
        }
        principal_from_claims({**claims, "iat": 0, "exp": 0})  # refuse to mint nonsense
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})


def _load_or_create_private_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Create the file readable by its owner only, atomically (no window with wider rights).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def build_token_verifier(settings: Settings, dev_issuer: DevIssuer | None) -> TokenVerifier:
    """The verifier for this environment: JWKS in prod (or when configured), else the dev key."""
    common = {
        "issuer": settings.jwt_issuer,
        "audience": settings.jwt_audience,
        "leeway_seconds": settings.jwt_leeway_seconds,
    }
    if settings.jwt_jwks_url:
        client = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
        return TokenVerifier(jwks_client=client, **common)
    if dev_issuer is None:
        raise ValueError("no JWKS URL and no dev issuer: nothing can verify tokens")
    return TokenVerifier(public_key=dev_issuer.public_key, **common)


def build_dev_issuer(settings: Settings) -> DevIssuer | None:
    """The dev issuer, or None in prod where only the identity provider issues tokens."""
    if settings.is_prod:
        return None
    return DevIssuer(
        key_path=settings.dev_jwt_key_path,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.dev_token_ttl_seconds,
    )


class AuthenticatedUser(BaseUser):
    """Starlette's view of a verified caller."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.subject


class RejectedUser(BaseUser):
    """A caller whose token was present but refused; resolvers answer UNAUTHENTICATED, saying
    `rejection` in the request's language."""

    def __init__(self, rejection: TokenRejected) -> None:
        self.rejection = rejection

    @property
    def reason(self) -> str:
        return self.rejection.reason

    @property
    def is_authenticated(self) -> bool:
        return False

    @property
    def display_name(self) -> str:
        return ""


class BearerTokenBackend(AuthenticationBackend):
    """Decodes `Authorization: Bearer …` once per request.

    It never raises: a bad token becomes a RejectedUser, so that the GraphQL layer can
    answer with a GraphQL error carrying `extensions.code = UNAUTHENTICATED` instead of
    Starlette's plain-text 400.
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return AuthCredentials(), RejectedUser(TokenRejected("error.token.bearer_header"))
        try:
            principal = await self._verifier.verify(token.strip())
        except TokenRejected as exc:
            return AuthCredentials(), RejectedUser(exc)
        return AuthCredentials([r.value for r in principal.roles]), AuthenticatedUser(principal)
