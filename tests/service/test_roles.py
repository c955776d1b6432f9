"""The processes' roles: `serve` answers the API only unless asked to run the jobs too
(`--with-jobs`, the single-machine default of `make run`); `worker` runs the relays and the
wallet jobs without HTTP, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import commands as cli_module
from app.cli.commands import cli

SOCIALWALLET = Path(sys.executable).with_name("socialwallet")
runner = CliRunner()


@pytest.fixture
def served(monkeypatch):
    """`serve`'s uvicorn.run and dev banner replaced: what the server would be started with."""
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(cli_module, "_print_dev_banner", lambda *args, **kwargs: None)
    # serve writes BACKGROUND_JOBS for its uvicorn workers; monkeypatch restores it.
    monkeypatch.setenv("BACKGROUND_JOBS", "unset")
    return calls


def test_serve_runs_no_jobs_unless_asked(served):
    # When the API is served without options
    result = runner.invoke(cli, ["serve", "--port", "8123"])
    # Then its processes run no relays or jobs (those are the workers')
    assert result.exit_code == 0, result.output
    assert len(served) == 1 and os.environ["BACKGROUND_JOBS"] == "false"


def test_serve_with_jobs_runs_them_inside(served):
    # When a single machine serves the API with the jobs inside
    result = runner.invoke(cli, ["serve", "--port", "8123", "--with-jobs"])
    # Then its processes run the relays and the wallet jobs too
    assert result.exit_code == 0, result.output
    assert os.environ["BACKGROUND_JOBS"] == "true"


def test_make_run_serves_with_the_jobs():
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    assert "$(BIN)/socialwallet serve --with-jobs" in makefile


def test_a_worker_refuses_the_log_gateways_in_prod(monkeypatch):
    # Given production settings with the development (log) gateways
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("JWT_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("AUDIT_HASH_KEY", secrets.token_hex(32))
    monkeypatch.setenv("QR_SIGNING_KEY", secrets.token_hex(32))
    # When a worker starts, then it refuses to run
    result = runner.invoke(cli, ["worker"])
    assert result.exit_code == 2
    assert "Bad settings" in result.output and "SMS_GATEWAY" in result.output


def test_a_worker_sends_the_offers_sms_and_stops_on_sigterm(tmp_path):
    # Given the demo registry, its new entitlements not yet offered
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.db'}",
        "DEV_JWT_KEY_PATH": str(tmp_path / "key.pem"),
        "BACKGROUND_INTERVAL_SECONDS": "0.2",
    }
    env.pop("BACKGROUND_JOBS", None)
    for command in (["migrate"], ["seed-demo"]):
        subprocess.run([SOCIALWALLET, *command], env=env, check=True, capture_output=True)  # noqa: S603
    # When a worker runs until the offers' SMS are sent, and is then told to stop
    worker = subprocess.Popen(  # noqa: S603
        [SOCIALWALLET, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while _sent_offer_sms(tmp_path / "worker.db") == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    # Then the SMS went out, the worker stopped cleanly, and it logged JSON only
    assert _sent_offer_sms(tmp_path / "worker.db") > 0
    assert worker.returncode == 0, output
    events = [json.loads(line)["event"] for line in output.decode().splitlines() if line]
    assert events[0] == "jobs.started" and events[-1] == "jobs.stopped"


def _sent_offer_sms(database: Path) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT count(*) FROM outbox_messages "
            "WHERE status = 'sent' AND message_key LIKE 'offer:%'"
        ).fetchone()[0]
