"""Logs never carry a raw IIN."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import structlog

from app.logging import configure_logging, mask_iins_in_text
from tests.clock import pinned_env
from tests.logscan import raw_iins


def test_twelve_digit_runs_are_masked():
    assert mask_iins_in_text("iin=900101300126 ok") == "iin=90********26 ok"
    assert mask_iins_in_text("a 1234567890123 b") == "a 1234567890123 b"  # 13 digits: not an IIN
    assert mask_iins_in_text("phone +77010000001") == "phone +77010000001"  # 11 digits


def test_structlog_and_stdlib_records_are_masked_everywhere(capsys):
    # The handler writes to the stderr of the moment (capsys's here, the log scan's after),
    # so the configuration can stay in place when the test ends.
    configure_logging(level="INFO", json=True)
    structlog.get_logger("t").info(
        "looked up 900101300126", subject="900101300126", nested={"ids": ["850615400016"]}
    )
    logging.getLogger("uvicorn.error").info("request for %s failed", "900101300126")
    err = capsys.readouterr().err
    assert "900101300126" not in err and "850615400016" not in err
    records = [json.loads(line) for line in err.splitlines()]
    assert records[0]["event"] == "looked up 90********26"
    assert records[0]["subject"] == "90********26"
    assert records[0]["nested"] == {"ids": ["85********16"]}
    assert records[1]["event"] == "request for 90********26 failed"


# --- every process of a multi-worker server ----------------------------------------------

SOCIALWALLET = Path(sys.executable).with_name("socialwallet")
SERVED_IIN = "971202490102"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _send_iins_everywhere(url: str) -> None:
    """Requests with an IIN in the path, the query string and the body, some of them bad."""
    query = f'{{ person(iin: "{SERVED_IIN}") {{ lastName }} }}'
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(10):  # several of each, so that both workers are likely to serve some
            client.get(f"/app/{SERVED_IIN}")
            client.get(f"/{SERVED_IIN}?iin={SERVED_IIN}")
            client.get("/graphql", params={"query": query, "iin": SERVED_IIN})
            client.post("/graphql", json={"query": query})
            client.post("/graphql", json={"query": f"{{ person(iin: {SERVED_IIN}) }}"})
            client.post("/graphql", content=f"iin={SERVED_IIN}".encode())
            client.post("/sms/inbound", content=f'{{"from": "{SERVED_IIN}"}}'.encode())


def test_a_two_worker_server_logs_only_masked_json(tmp_path):
    # Given the server as the Dockerfile runs it: prod, two uvicorn worker processes
    port = _free_port()
    env = pinned_env({
        **os.environ,
        "ENVIRONMENT": "prod",
        "JWT_JWKS_URL": "http://127.0.0.1:9/jwks.json",
        "AUDIT_HASH_KEY": secrets.token_hex(32),
        "QR_SIGNING_KEY": secrets.token_hex(32),
        # prod refuses the log gateways; nothing here sends (no background jobs in this test)
        "SMS_GATEWAY": "http", "SMS_GATEWAY_URL": "http://127.0.0.1:9/sms", "SMS_GATEWAY_TOKEN": "t",
        "BANK_GATEWAY": "http", "BANK_GATEWAY_URL": "http://127.0.0.1:9/bank", "BANK_GATEWAY_TOKEN": "t",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'socialwallet.db'}",
        "TRUSTED_DOCUMENTS_ONLY": "false",  # let the documents reach parsing and validation
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "true",
    })  # fmt: skip
    env.pop("REDIS_URL", None)
    out_path, err_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out_path.open("w") as out, err_path.open("w") as err:
        server = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [str(SOCIALWALLET), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "2", "--no-background-jobs"],
            env=env, stdout=out, stderr=err,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_ready(url, server, err_path)
            # When requests carry IINs in their paths, query strings and bodies
            _send_iins_everywhere(url)
        finally:
            server.terminate()
            server.wait(timeout=30)
    output = out_path.read_text() + err_path.read_text()
    lines = [line for line in output.splitlines() if line.strip()]
    # Then every line any of the processes wrote is a JSON object
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {mask_iins_in_text(line)!r}") from None
    assert all(isinstance(record, dict) for record in records)
    # and no raw IIN is among them (only the masked form)
    assert raw_iins(output) == []
    paths = {record.get("path") for record in records}
    assert "/app/97********02" in paths
    # and both workers, not only the parent, wrote them
    started = [r["event"] for r in records if r["event"].startswith("Started server process")]
    assert len(set(started)) == 2, started


def _wait_until_ready(url: str, server: subprocess.Popen, err_path: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        if server.poll() is not None or time.monotonic() > deadline:
            masked = mask_iins_in_text(err_path.read_text())
            raise AssertionError(f"the server did not start: {masked[-3000:]}")
        time.sleep(0.2)


def test_a_cli_command_logs_json_too(tmp_path):
    # Given a fresh database
    env = pinned_env({
        **os.environ,
        "ENVIRONMENT": "dev",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'socialwallet.db'}",
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "true",
    })  # fmt: skip
    # When the CLI migrates it
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [str(SOCIALWALLET), "migrate"], env=env, capture_output=True, text=True, timeout=120,
        check=True,
    )  # fmt: skip
    # Then the migration's log lines are JSON; the one other line is the command's answer
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    answers = [line for line in lines if not line.startswith("{")]
    assert answers == ["Database is at the newest migration."]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(r["logger"] == "alembic.runtime.migration" for r in records), lines
