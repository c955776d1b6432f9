"""The `socialwallet` command line."""

from __future__ import annotations

import jwt
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
