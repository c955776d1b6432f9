"""Production refuses the log gateways, and the `socialwallet bank` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli.commands import cli
from app.settings import Settings
from tests.clock import pinned_env

runner = CliRunner()
STATEMENTS = Path(__file__).parents[1] / "wallet" / "statements"
PROD = {
    "ENVIRONMENT": "prod",
    "JWT_JWKS_URL": "https://idp.example/jwks.json",
    # Keys the production checks accept (32 random bytes); these tests are about the gateways.
    "AUDIT_HASH_KEY": "9f3c1a7e5b2d8046ce1fa3b7d9025e6c8a4f1b3d7e9c0a2f4b6d8e1c3a5f7b9d",
    "QR_SIGNING_KEY": "2e8b4d6f0a1c3e5b7d9f1a3c5e7b9d0f2a4c6e8b0d1f3a5c7e9b1d3f5a7c9e0b",
}
REAL_SMS = {
    "SMS_GATEWAY": "http",
    "SMS_GATEWAY_URL": "https://sms.example/api",
    "SMS_GATEWAY_TOKEN": "t0ken",
}
REAL_BANK = {
    "BANK_GATEWAY": "http",
    "BANK_GATEWAY_URL": "https://bank.example/orders",
    "BANK_GATEWAY_TOKEN": "t0ken",
}


def prod_env(monkeypatch, *gateways: dict[str, str]) -> None:
    for name, value in {**PROD, **{k: v for g in gateways for k, v in g.items()}}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("gateways", "named", "not_named"),
    [
        ((REAL_BANK,), "SMS_GATEWAY=log", "BANK_GATEWAY"),
        ((REAL_SMS,), "BANK_GATEWAY=log", "SMS_GATEWAY"),
        ((), "SMS_GATEWAY=log and BANK_GATEWAY=log", None),
    ],
)
def test_prod_settings_refuse_a_log_gateway_and_name_it(monkeypatch, gateways, named, not_named):
    # Given prod settings with a gateway left at `log`
    prod_env(monkeypatch, *gateways)
    # Then the settings are refused, naming the gateway
    with pytest.raises(ValueError, match=named) as refused:
        Settings()
    if not_named:
        assert not_named not in str(refused.value)


def test_prod_settings_with_real_gateways_are_accepted(monkeypatch):
    prod_env(monkeypatch, REAL_SMS, REAL_BANK)
    settings = Settings()
    assert (settings.sms_gateway, settings.bank_gateway) == ("http", "http")


def test_dev_keeps_the_log_gateways():
    settings = Settings(environment="dev")
    assert (settings.sms_gateway, settings.bank_gateway) == ("log", "log")


@pytest.mark.parametrize(
    "command",
    [
        ["outbox", "run", "--once", "--channel", "bank"],
        ["outbox", "run", "--once", "--channel", "sms"],
        ["jobs", "run", "--once"],
        ["serve"],
        ["migrate"],
        ["bank", "reconcile", str(STATEMENTS / "camt053_batch.xml")],
    ],
)
def test_every_command_refuses_prod_with_the_log_bank_gateway(monkeypatch, command):
    # Given prod with a real SMS gateway and the bank left at `log`
    prod_env(monkeypatch, REAL_SMS)
    # When the command starts
    result = runner.invoke(cli, command)
    # Then it exits 2 with a message naming the gateway, and no traceback
    assert result.exit_code == 2, result.output
    assert "BANK_GATEWAY=log" in result.output and "Bad settings" in result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "pydantic" not in result.output


def test_the_installed_command_refuses_without_a_traceback(tmp_path):
    # Given prod with both gateways left at `log`, in a process of its own
    env = pinned_env({**os.environ, **PROD, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    env.pop("SMS_GATEWAY", None)
    env.pop("BANK_GATEWAY", None)
    # When the relay is started through the console script's entry point
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from app.cli.commands import main; main()",
            "outbox",
            "run",
            "--once",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then it exits 2 naming both gateways, without a traceback
    assert result.returncode == 2, result.stderr
    assert "SMS_GATEWAY=log and BANK_GATEWAY=log" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def fresh_db(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/bank.db")
    assert runner.invoke(cli, ["migrate"]).exit_code == 0


def test_bank_reconcile_reports_as_json_and_a_second_import_changes_nothing(fresh_db):
    # Given a statement whose lines name no payment of this database
    path = str(STATEMENTS / "camt053_batch.xml")
    # When it is imported, then imported again
    first = runner.invoke(cli, ["bank", "reconcile", path, "--format", "json"])
    second = runner.invoke(cli, ["bank", "reconcile", path, "--format", "json"])
    # Then both lines are flagged the first time, and known the second
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert [line["outcome"] for line in report["lines"]] == ["unknown_reference"] * 2
    assert report["counts"]["unknown_reference"] == 2 and report["format"] == "camt.053"
    again = json.loads(second.stdout)
    assert again["counts"]["already_imported"] == 2
    assert again["counts"]["unknown_reference"] == 0


def test_bank_reconcile_prints_a_table_and_csv(fresh_db):
    path = str(STATEMENTS / "camt053_batch.xml")
    table = runner.invoke(cli, ["bank", "reconcile", path])
    assert table.exit_code == 0, table.output
    assert "Bank statement (camt.053)" in table.stdout and "flagged 2" in table.stdout
    csv_out = runner.invoke(cli, ["bank", "reconcile", path, "--format", "csv"])
    header, *rows = csv_out.stdout.strip().splitlines()
    assert header.startswith("reference,booked_on,direction,amount_tiyn") and len(rows) == 2


def test_bank_reconcile_refuses_a_file_that_is_no_statement(fresh_db, tmp_path):
    junk = tmp_path / "junk.xml"
    junk.write_text("<html>not a statement</html>")
    result = runner.invoke(cli, ["bank", "reconcile", str(junk)])
    assert result.exit_code == 2
    assert "Cannot read the statement" in result.output and "Traceback" not in result.output


def test_bank_unreconciled_lists_nothing_on_an_empty_database(fresh_db):
    result = runner.invoke(cli, ["bank", "unreconciled", "--older-than", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    table = runner.invoke(cli, ["bank", "unreconciled"])
    assert table.exit_code == 0 and "0 unreconciled" in table.stdout
