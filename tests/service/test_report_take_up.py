"""`socialwallet report take-up --year Y`: the ministry's table on screen and in a CSV, on the
constructed history of tests/wallet/funnel_history.py (a scratch SQLite file)."""

from __future__ import annotations

import asyncio
import csv

from typer.testing import CliRunner

from app.cli.commands import cli
from app.db import create_engine, create_session_factory
from app.settings import Settings
from tests.wallet.funnel_history import EXPECTED, build_history

# The columns checked per row, against the hand-computed figures.
CHECKED = (
    "sent", "delivered", "answered", "accepted", "paid", "vouchers_issued", "received",
    "declined", "expired", "open", "withdrawn", "needs_bank_account", "returned", "in_payment",
)  # fmt: skip


async def _scratch_database(tmp_path, monkeypatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'report.db'}")
    monkeypatch.setenv("DEV_JWT_KEY_PATH", str(tmp_path / "key.pem"))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    # The commands run their own event loop, so not on this test's.
    assert (await asyncio.to_thread(runner.invoke, cli, ["migrate"])).exit_code == 0
    engine = create_engine(Settings())
    try:
        async with create_session_factory(engine)() as session, session.begin():
            await build_history(session)
    finally:
        await engine.dispose()
    return runner


async def test_the_csv_holds_the_hand_computed_table_and_a_total(tmp_path, monkeypatch):
    # Given the constructed history in a scratch database
    runner = await _scratch_database(tmp_path, monkeypatch)
    target = tmp_path / "take-up.csv"
    # When the report of 2026 is run by programme, region and month with a CSV
    command = ["report", "take-up", "--year", "2026", "--by", "programme,region,month"]
    result = await asyncio.to_thread(runner.invoke, cli, [*command, "--csv", str(target)])
    # Then it succeeds and prints the funnel with its total
    assert result.exit_code == 0, result.output
    assert "Take-up of proactive offers, 2026" in result.stdout
    assert "Why offers did not reach the family" in result.stdout
    # and the CSV has one row per group, as computed by hand, then the total
    with target.open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    by_group = {(r["programme"], r["region"], r["month"]): r for r in records}
    assert list(by_group) == [*EXPECTED, ("all", "all", "all")]
    for group, expected in EXPECTED.items():
        assert {name: int(by_group[group][name]) for name in CHECKED} == {
            name: expected[name] for name in CHECKED
        }
    march = by_group[("BIRTH_BENEFIT", "astana", "2026-03")]
    assert (march["take_up_rate"], march["received_rate"]) == ("0.5455", "0.1818")
    assert (march["drop_to_delivered"], march["drop_to_received"]) == ("3", "4")
    assert (march["declined_not_needed"], march["declined_no_reason"]) == ("1", "1")
    assert march["median_hours_to_payment"] == "72.0"
    total = by_group[("all", "all", "all")]
    assert (total["sent"], total["received"], total["declined_do_not_trust_sms"]) == (
        "14",
        "3",
        "1",
    )


async def test_an_unknown_grouping_is_refused(tmp_path, monkeypatch):
    # Given a scratch database
    runner = await _scratch_database(tmp_path, monkeypatch)
    # When the report is asked to group by families
    command = ["report", "take-up", "--year", "2026", "--by", "family"]
    result = await asyncio.to_thread(runner.invoke, cli, command)
    # Then it refuses, naming what it can group by
    assert result.exit_code == 2
    assert "Cannot group by family" in result.output
