"""The server runs the outbox relays and the wallet jobs itself when BACKGROUND_JOBS is on,
and stops them cleanly with the server."""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
from typer.testing import CliRunner

from app.asgi import create_app
from app.cli.commands import cli
from app.settings import Settings


async def test_the_server_relays_sms_and_makes_offers_in_the_background(tmp_path, monkeypatch):
    # Given a demo registry whose new entitlements are not yet offered
    database = tmp_path / "server.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("DEV_JWT_KEY_PATH", str(tmp_path / "key.pem"))
    runner = CliRunner()
    # The commands run their own event loop, so not on this test's.
    for command in (["migrate"], ["seed-demo"]):
        assert (await asyncio.to_thread(runner.invoke, cli, command)).exit_code == 0
    app = create_app(Settings(background_jobs=True, background_interval_seconds=0.2))
    # When the server runs for a moment (its lifespan starts and stops the jobs)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/livez")).status_code == 200
        for _ in range(100):
            if _sent_offer_sms(database):
                break
            await asyncio.sleep(0.2)
    # Then offers were made and their SMS sent through the (log) gateway
    assert _sent_offer_sms(database) > 0


def _sent_offer_sms(database) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT count(*) FROM outbox_messages "
            "WHERE status = 'sent' AND message_key LIKE 'offer:%'"
        ).fetchone()[0]
