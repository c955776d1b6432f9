"""Production settings (issue 14 item 10): strong secrets, security headers, /metrics behind a
token. (Unknown schools in SCHOOL_ENROLMENT events: tests/hardening/test_ascii_digits.py.)"""

from __future__ import annotations

import re
import secrets

import pytest
from pydantic import SecretStr

from app.settings import Settings
from app.web_client import WEB_DIR

STRONG = "9c1f4e7a2d5b8c0e3f6a9d2c5b8e1f4a7d0c3b6e9f2a5d8c1b4e7f0a3d6c9b2e"
PROD = {
    "environment": "prod",
    "jwt_jwks_url": "https://idp.example/jwks.json",
    "audit_hash_key": STRONG,
    "qr_signing_key": STRONG[::-1],
    # prod refuses the log gateways (they send nothing); these tests are about the secrets
    "sms_gateway": "http",
    "sms_gateway_url": "https://sms.example/api",
    "sms_gateway_token": "t",
    "bank_gateway": "http",
    "bank_gateway_url": "https://bank.example/orders",
    "bank_gateway_token": "t",
}


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("audit_hash_key", "k"),
        ("qr_signing_key", "x"),
        ("qr_signing_key", "x" * 64),  # long, but one character
        ("qr_signing_key", "correct horse battery staple 123"),  # 32 bytes of English
        ("sms_inbound_secret", "s3cret"),
        ("metrics_token", "metrics-token"),
    ],
)
def test_prod_refuses_a_weak_secret_naming_the_setting(setting, value):
    # when production settings are made with one weak secret
    with pytest.raises(ValueError) as refused:
        Settings(**{**PROD, setting: value})
    # then the message names the setting (and never shows the value)
    assert setting.upper() in str(refused.value)
    assert repr(value) not in str(refused.value) and STRONG not in str(refused.value)


@pytest.mark.parametrize(
    "value", [secrets.token_hex(32), secrets.token_urlsafe(32), STRONG], ids=["hex", "b64", "fixed"]
)
def test_prod_takes_32_random_bytes_however_written(value):
    settings = Settings(**{**PROD, "qr_signing_key": value, "metrics_token": value})
    assert settings.qr_signing_key.get_secret_value() == value


def test_dev_keeps_its_short_secrets():
    assert Settings(environment="dev", qr_signing_key="x").qr_signing_key is not None


def test_the_client_page_has_no_inline_script():
    # The CSP allows scripts from the app's own origin only: index.html must load every
    # script by URL, with no inline code and no inline handler.
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    for tag in re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S | re.I):
        assert tag.strip() == ""
    assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", html, flags=re.I))
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I)


async def test_the_client_is_served_with_a_strict_csp_and_the_security_headers(prod_client_for):
    # when the client page and the API are fetched from a production app
    async with prod_client_for() as client:
        page = await client.get("/app/")
        api = await client.post("/graphql", json={"query": "{ me { subject } }"})
    # then the page has a CSP without inline script or style, and may not be framed
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in csp
    # and every response says nosniff, no framing, no referrer
    for response in (page, api):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"


async def test_prod_metrics_are_off_without_a_token(prod_client_for):
    async with prod_client_for() as client:
        response = await client.get("/metrics")
    assert response.status_code == 404
    assert "socialwallet_" not in response.text


async def test_prod_metrics_answer_only_the_metrics_token(prod_client_for):
    # given a production app with a metrics token
    token = secrets.token_hex(32)
    async with prod_client_for(metrics_token=SecretStr(token)) as client:
        # when /metrics is scraped without it, with another, and with it
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"authorization": f"Bearer {STRONG}"})
        odd = await client.get("/metrics", headers={"authorization": b"Bearer \xff"})
        right = await client.get("/metrics", headers={"authorization": f"Bearer {token}"})
    # then only the token's holder reads the figures
    assert (anonymous.status_code, wrong.status_code, odd.status_code) == (401, 401, 401)
    assert "socialwallet_" not in anonymous.text + wrong.text
    assert right.status_code == 200 and "socialwallet_graphql_requests_total" in right.text
