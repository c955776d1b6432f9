"""Bearer tokens: what verifies and what is refused, end to end through /graphql."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.auth import DevIssuer, Role, TokenRejected, TokenVerifier
from app.settings import Settings

ME = "{ me { subject roles } }"
CITIZEN_IIN = "900101300126"  # weighted sum 72, 72 mod 11 = 6


@pytest.fixture
def gql(client):
    """POST a GraphQL document asking for English: these tests name the reason a token was
    refused by its English words (tests/api/test_i18n_api.py checks the other languages)."""

    async def post(query: str, variables: dict | None = None, *, token: str | None = None):
        headers = {"accept-language": "en"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return response.json()

    return post


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(settings: Settings, **overrides) -> dict:
    now = datetime.now(UTC)
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": CITIZEN_IIN,
        "roles": ["CITIZEN"],
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(dev_issuer: DevIssuer, claims: dict) -> str:
    return jwt.encode(claims, dev_issuer._key, algorithm="RS256")


async def _me(gql, token: str) -> dict:
    return await gql(ME, token=token)


def _assert_unauthenticated(body: dict, reason_fragment: str) -> None:
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert reason_fragment in error["message"]


def test_the_fixture_iin_is_valid():
    from familymap.iin import is_valid_iin

    assert is_valid_iin(CITIZEN_IIN)


async def test_valid_token_returns_me(gql, settings, dev_issuer):
    body = await _me(gql, _sign(dev_issuer, _claims(settings)))
    assert body == {"data": {"me": {"subject": CITIZEN_IIN, "roles": ["CITIZEN"]}}}


async def test_missing_token(gql):
    _assert_unauthenticated(await gql(ME), "bearer token is required")


async def test_not_a_bearer_header(client):
    response = await client.post(
        "/graphql",
        json={"query": ME},
        headers={"authorization": "Basic dXNlcjpwYXNz", "accept-language": "en"},
    )
    _assert_unauthenticated(response.json(), "Bearer")


async def test_alg_none_is_refused(gql, settings):
    claims = _claims(settings)
    claims["iat"] = int(claims["iat"].timestamp())
    claims["exp"] = int(claims["exp"].timestamp())
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    _assert_unauthenticated(await _me(gql, unsigned), "algorithm is not allowed")


async def test_wrong_audience_is_refused(gql, settings, dev_issuer):
    token = _sign(dev_issuer, _claims(settings, aud="another-service"))
    _assert_unauthenticated(await _me(gql, token), "another audience")


async def test_wrong_issuer_is_refused(gql, settings, dev_issuer):
    token = _sign(dev_issuer, _claims(settings, iss="https://evil.example"))
    _assert_unauthenticated(await _me(gql, token), "unknown issuer")


async def test_expired_token_is_refused(gql, settings, dev_issuer):
    past = datetime.now(UTC) - timedelta(hours=2)
    token = _sign(dev_issuer, _claims(settings, iat=past, exp=past + timedelta(minutes=5)))
    _assert_unauthenticated(await _me(gql, token), "expired")


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "iss", "aud"])
async def test_token_missing_a_required_claim_is_refused(gql, settings, dev_issuer, claim):
    token = _sign(dev_issuer, _claims(settings, **{claim: None}))
    _assert_unauthenticated(await _me(gql, token), f"lacks the {claim} claim")


async def test_hs256_signed_with_the_public_key_is_refused(gql, settings, dev_issuer):
    # The key-confusion attack: use the RS public key (which anyone may have) as an HMAC secret.
    public_pem = dev_issuer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64({"alg": "HS256", "typ": "JWT"})
    claims = _claims(settings)
    claims["iat"] = int(claims["iat"].timestamp())
    claims["exp"] = int(claims["exp"].timestamp())
    payload = _b64(claims)
    import hashlib
    import hmac

    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    _assert_unauthenticated(await _me(gql, forged), "algorithm is not allowed")


async def test_token_signed_by_another_key_is_refused(gql, settings):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(settings), other, algorithm="RS256")
    _assert_unauthenticated(await _me(gql, token), "signature is invalid")


async def test_tampered_payload_is_refused(gql, settings, dev_issuer):
    token = _sign(dev_issuer, _claims(settings))
    header, _payload, signature = token.split(".")
    claims = _claims(settings, roles=["OPERATOR"], sub="someone")
    claims["iat"] = int(claims["iat"].timestamp())
    claims["exp"] = int(claims["exp"].timestamp())
    _assert_unauthenticated(
        await _me(gql, f"{header}.{_b64(claims)}.{signature}"), "signature is invalid"
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"roles": None}, "no roles"),
        ({"roles": ["KING"]}, "unknown role"),
        ({"sub": "900101300125"}, "valid IIN"),  # bad check digit
        ({"roles": ["SCHOOL"], "sub": "not-a-merchant-id"}, "merchant id"),
    ],
)
async def test_malformed_identities_are_refused(gql, settings, dev_issuer, overrides, reason):
    token = _sign(dev_issuer, _claims(settings, **overrides))
    _assert_unauthenticated(await _me(gql, token), reason)


async def test_dev_issuer_refuses_to_mint_nonsense(dev_issuer):
    with pytest.raises(TokenRejected):
        dev_issuer.mint(roles=[Role.CITIZEN], subject="123")


class _JwksServer:
    """A stand-in identity provider on loopback serving a JWKS document we can rotate."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                jwks = {
                    "keys": [
                        {
                            **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())),
                            "kid": kid,
                            "use": "sig",
                            "alg": "RS256",
                        }
                        for kid, key in owner.keys
                    ]
                }
                body = json.dumps(jwks).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add_key(self, kid: str) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys.append((kid, key))
        return key


@pytest.fixture
def jwks_server():
    server = _JwksServer()
    server.thread.start()
    yield server
    server.server.shutdown()


def _jwks_verifier(settings: Settings, url: str, *, cooldown: float) -> TokenVerifier:
    return TokenVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_seconds=0,
        jwks_client=jwt.PyJWKClient(url, cache_keys=True, lifespan=300, cooldown_duration=cooldown),
    )


async def test_production_verifies_against_jwks_and_follows_key_rotation(jwks_server, settings):
    # Given an identity provider with one key (no refetch cooldown, to see rotation at once)
    old_key = jwks_server.add_key("2026-a")
    verifier = _jwks_verifier(settings, jwks_server.url, cooldown=0)
    claims = _claims(settings)
    old_token = jwt.encode(claims, old_key, algorithm="RS256", headers={"kid": "2026-a"})
    # When a token signed with it arrives, it verifies
    assert (await verifier.verify(old_token)).subject == CITIZEN_IIN
    # When the provider rotates to a new key, a token with the new kid still verifies
    new_key = jwks_server.add_key("2026-b")
    new_token = jwt.encode(claims, new_key, algorithm="RS256", headers={"kid": "2026-b"})
    assert (await verifier.verify(new_token)).subject == CITIZEN_IIN
    assert jwks_server.fetches == 2  # the unknown kid made it fetch the JWKS again
    # And a kid the provider never published is refused
    stray = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stray_token = jwt.encode(claims, stray, algorithm="RS256", headers={"kid": "nope"})
    with pytest.raises(TokenRejected, match="signing key is unknown"):
        await verifier.verify(stray_token)


async def test_unknown_kids_cannot_flood_the_identity_provider(jwks_server, settings):
    # Given the production cooldown between forced JWKS refetches
    key = jwks_server.add_key("2026-a")
    verifier = _jwks_verifier(settings, jwks_server.url, cooldown=30)
    claims = _claims(settings)
    await verifier.verify(jwt.encode(claims, key, algorithm="RS256", headers={"kid": "2026-a"}))
    # When many tokens with made-up kids arrive
    for n in range(5):
        forged = jwt.encode(claims, key, algorithm="RS256", headers={"kid": f"made-up-{n}"})
        with pytest.raises(TokenRejected):
            await verifier.verify(forged)
    # Then the JWKS was fetched only once
    assert jwks_server.fetches == 1


# --- remembering tokens that verified -----------------------------------------------------


def _fixed_key_verifier(settings: Settings, dev_issuer: DevIssuer) -> TokenVerifier:
    return TokenVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_seconds=0,
        public_key=dev_issuer._key.public_key(),
    )


def _count_decodes(monkeypatch) -> list[str]:
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token, *args, **kwargs):
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr("app.auth.jwt.decode", counting_decode)
    return decoded


async def test_a_verified_token_is_remembered_and_not_decoded_again(
    settings, dev_issuer, monkeypatch
):
    # Given a verifier and a terminal's token
    verifier = _fixed_key_verifier(settings, dev_issuer)
    decoded = _count_decodes(monkeypatch)
    token = _sign(dev_issuer, _claims(settings))
    # When the token comes with three requests
    principals = [await verifier.verify(token) for _ in range(3)]
    # Then its signature and claims were checked once, and every request got its principal
    assert decoded == [token]
    assert {p.subject for p in principals} == {CITIZEN_IIN}


async def test_a_remembered_token_is_refused_once_it_expires(settings, dev_issuer):
    # Given a token that verified, expiring within two seconds (JWT times are whole seconds)
    verifier = _fixed_key_verifier(settings, dev_issuer)
    exp = int(time.time()) + 2
    token = _sign(dev_issuer, _claims(settings, exp=exp))
    assert (await verifier.verify(token)).subject == CITIZEN_IIN
    # When its expiry passes
    await asyncio.sleep(exp - time.time() + 0.05)
    # Then it is not taken from memory but checked again, and refused as expired
    with pytest.raises(TokenRejected, match="expired"):
        await verifier.verify(token)


async def test_a_refused_token_is_not_remembered(settings, dev_issuer, monkeypatch):
    verifier = _fixed_key_verifier(settings, dev_issuer)
    decoded = _count_decodes(monkeypatch)
    token = _sign(dev_issuer, _claims(settings, aud="someone-else"))
    for _ in range(2):
        with pytest.raises(TokenRejected, match="audience"):
            await verifier.verify(token)
    assert decoded == [token, token]
