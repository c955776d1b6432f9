"""The `socialwallet` command line."""

from __future__ import annotations

import jwt
import pytest
from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner()


def test_token_mints_a_verifiable_dev_token(settings, monkeypatch):
    monkeypatch.setenv("DEV_JWT_KEY_PATH", str(settings.dev_jwt_key_path))
    result = runner.invoke(cli, ["token", "--role", "CITIZEN", "--subject", "900101300126"])
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert claims["sub"] == "900101300126"
    assert claims["roles"] == ["CITIZEN"]
    assert claims["aud"] == settings.jwt_audience


def test_token_refuses_a_citizen_with_a_bad_iin(settings, monkeypatch):
    monkeypatch.setenv("DEV_JWT_KEY_PATH", str(settings.dev_jwt_key_path))
    result = runner.invoke(cli, ["token", "--role", "CITIZEN", "--subject", "900101300125"])
    assert result.exit_code == 2
    assert "valid IIN" in result.output


def test_token_is_disabled_in_prod(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("JWT_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("AUDIT_HASH_KEY", "a-prod-audit-key")
    result = runner.invoke(cli, ["token", "--role", "OPERATOR", "--subject", "op"])
    assert result.exit_code == 2
    assert "disabled" in result.output


def test_every_command_has_help():
    for command in [
        "serve",
        "migrate",
        "seed-demo",
        "token",
        "import",
        "generate",
        "eligibility",
        "bench",
    ]:
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0
        assert "Usage" in result.output


def test_migrate_and_seed_demo_on_a_fresh_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/fresh.db")
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    first = runner.invoke(cli, ["seed-demo", "--if-empty"])
    assert first.exit_code == 0 and "Loaded the demo families" in first.output
    again = runner.invoke(cli, ["seed-demo", "--if-empty"])
    assert again.exit_code == 0 and "left as it is" in again.output
    refused = runner.invoke(cli, ["seed-demo"])
    assert refused.exit_code == 1


def test_outbox_run_once_sends_through_the_log_gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/outbox.db")
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(cli, ["outbox", "run", "--once"])
    assert result.exit_code == 0, result.output


def test_an_http_sms_gateway_needs_its_url_and_token(monkeypatch):
    from app.settings import Settings

    monkeypatch.setenv("SMS_GATEWAY", "http")
    with pytest.raises(ValueError, match="SMS_GATEWAY_URL and SMS_GATEWAY_TOKEN"):
        Settings()
    monkeypatch.setenv("SMS_GATEWAY_URL", "https://sms.example/api")
    monkeypatch.setenv("SMS_GATEWAY_TOKEN", "t0ken")
    settings = Settings()
    assert "t0ken" not in repr(settings)  # the token is a secret, not shown in logs or errors


def test_outbox_refuses_the_log_gateway_in_prod(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("JWT_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("AUDIT_HASH_KEY", "a-prod-audit-key")
    result = runner.invoke(cli, ["outbox", "run", "--once"])
    assert result.exit_code == 2
    assert "development" in result.output
