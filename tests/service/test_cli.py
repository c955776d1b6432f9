"""The `socialwallet` command line."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import jwt
import pytest
import time_machine
from typer.testing import CliRunner

from app.cli.commands import cli

# Production secrets are 32 random bytes (app/settings.py refuses weaker ones in prod).
PROD_AUDIT_KEY = "9c1f4e7a2d5b8c0e3f6a9d2c5b8e1f4a7d0c3b6e9f2a5d8c1b4e7f0a3d6c9b2e"
PROD_QR_KEY = "4b7e0a3d6c9f2b5e8a1d4c7f0b3e6a9d2c5f8b1e4a7d0c3f6b9e2a5d8c1f4b7e"
PROD_SMS_SECRET = "e2a5d8c1f4b7e0a3d6c9f2b5e8a1d4c7f0b3e6a9d2c5f8b1e4a7d0c3f6b9e2a5"

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


def _real_gateways(monkeypatch) -> None:
    """Prod refuses the log gateways (they send nothing): the prod tests name real ones."""
    for kind, url in (("SMS", "https://sms.example/api"), ("BANK", "https://bank.example/o")):
        monkeypatch.setenv(f"{kind}_GATEWAY", "http")
        monkeypatch.setenv(f"{kind}_GATEWAY_URL", url)
        monkeypatch.setenv(f"{kind}_GATEWAY_TOKEN", "t0ken")


def test_token_is_disabled_in_prod(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("JWT_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("AUDIT_HASH_KEY", PROD_AUDIT_KEY)
    monkeypatch.setenv("QR_SIGNING_KEY", PROD_QR_KEY)
    _real_gateways(monkeypatch)
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


@pytest.mark.parametrize("channel", ["sms", "bank"])
def test_outbox_refuses_the_log_gateway_in_prod(monkeypatch, channel):
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("JWT_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("AUDIT_HASH_KEY", PROD_AUDIT_KEY)
    monkeypatch.setenv("QR_SIGNING_KEY", PROD_QR_KEY)
    result = runner.invoke(cli, ["outbox", "run", "--once", "--channel", channel])
    assert result.exit_code == 2
    assert "development" in result.output and f"{channel.upper()}_GATEWAY=log" in result.output


def test_prod_has_no_inbound_sms_secret_unless_given(monkeypatch):
    from app.settings import Settings

    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("JWT_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("AUDIT_HASH_KEY", PROD_AUDIT_KEY)
    monkeypatch.setenv("QR_SIGNING_KEY", PROD_QR_KEY)
    _real_gateways(monkeypatch)
    assert Settings().inbound_sms_secret is None  # never the dev secret
    monkeypatch.setenv("SMS_INBOUND_SECRET", PROD_SMS_SECRET)
    assert Settings().inbound_sms_secret == PROD_SMS_SECRET


def test_the_wallet_jobs_and_the_offer_job_run_on_the_demo(tmp_path, monkeypatch):
    # Given the demo registry, evaluated (its new entitlements not yet offered)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/jobs.db")
    monkeypatch.setenv("DEV_JWT_KEY_PATH", str(tmp_path / "key.pem"))
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    assert runner.invoke(cli, ["seed-demo"]).exit_code == 0
    # When the offer job runs, then the wallet jobs, then the bank relay
    issued = runner.invoke(cli, ["offers", "issue"])
    offers = _count(tmp_path / "jobs.db", "offers")
    jobs = runner.invoke(cli, ["jobs", "run", "--once"])
    bank = runner.invoke(cli, ["outbox", "run", "--once", "--channel", "bank"])
    # Then offers were made, each with its history, and the second pass made none again
    assert issued.exit_code == 0, issued.output
    assert offers > 0 and _count(tmp_path / "jobs.db", "offer_transitions") == offers
    assert jobs.exit_code == 0 and "offers made 0" in jobs.output, jobs.output
    assert _count(tmp_path / "jobs.db", "offers") == offers
    assert bank.exit_code == 0, bank.output


def _count(database, table: str) -> int:
    with sqlite3.connect(database) as connection:
        # `table` is one of the test's own literals.
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608


def test_the_operators_commands_count_kazakhstans_day_not_the_servers(tmp_path, monkeypatch):
    """At 01:00 on 1 January in Astana (20:00 UTC on 31 December), `import` and `eligibility
    run` without `--on` evaluate as of 1 January: the day the law counts in is
    Kazakhstan's (familymap.clock.astana_today), not the server's UTC date."""
    files, db = tmp_path / "files", tmp_path / "night.db"
    written = runner.invoke(
        cli,
        [
            "generate",
            "--families",
            "20",
            "--seed",
            "3",
            "--as-of",
            "2026-11-01",
            "--out",
            str(files),
        ],
    )
    assert written.exit_code == 0, written.output
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    astana_new_year = datetime(2026, 12, 31, 20, 0, tzinfo=UTC)
    with time_machine.travel(astana_new_year, tick=False):
        for command in (["import", str(files)], ["eligibility", "run"]):
            result = runner.invoke(cli, command)
            assert result.exit_code == 0, (command, result.output)
    with sqlite3.connect(db) as connection:
        days = connection.execute(
            "SELECT scope, evaluated_on FROM eligibility_runs ORDER BY id"
        ).fetchall()
    assert {scope for scope, _ in days} >= {"families", "batch"}
    assert {day for _, day in days} == {"2027-01-01"}
