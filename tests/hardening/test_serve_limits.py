"""`socialwallet serve` as it runs in production: a real uvicorn server, started by the test.

Header sizes are bounded by uvicorn's h11 parser (`h11_max_incomplete_event_size`, set by
`serve`); an oversized /sms/inbound body is refused on its Content-Length before it is sent;
weak production secrets stop the server before it starts, with a message and no traceback.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.clock import pinned_env
from tests.live_server import free_port, serving

SOCIALWALLET = str(Path(sys.executable).parent / "socialwallet")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """`socialwallet serve` on a SQLite file of its own: its base URL and its log file."""
    work = tmp_path_factory.mktemp("serve")
    with serving(work) as (url, _env):
        yield SimpleNamespace(url=url, log=work / "server.log")


def _raw_request(url: str, head: bytes, body: bytes = b"", *, timeout: float = 10) -> bytes:
    """Send raw bytes and return what the server answers before it closes (or times out)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        # The server may stop reading: what it answered is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(head + body)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
        return answer


def test_an_8_mb_header_is_refused_and_the_server_keeps_serving(server):
    # given a request whose one header is 8 MB
    head = b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (8 * 1024 * 1024) + b"\r\n\r\n"
    # when it is sent
    started = time.monotonic()
    answer = _raw_request(server.url, head)
    # then it is refused (400) without being read whole, and the next request is served
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert time.monotonic() - started < 5
    assert httpx.get(f"{server.url}/livez", timeout=5).status_code == 200
    # and the refusal is a warning in the log, not a traceback
    assert "Traceback" not in server.log.read_text()


def test_headers_of_an_ordinary_size_pass(server):
    # given 16 kB of headers (a long cookie, a bearer token)
    response = httpx.get(f"{server.url}/livez", headers={"x-filler": "a" * 16_000}, timeout=5)
    # then the request is served
    assert response.status_code == 200


def test_a_256_mb_inbound_sms_is_413_before_it_is_sent(server):
    # given an unsigned POST declaring 256 MB, of which only the first 64 kB are sent
    head = (
        b"POST /sms/inbound HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(256 * 1024 * 1024).encode() + b"\r\n\r\n"
    )
    # when it is sent
    started = time.monotonic()
    answer = _raw_request(server.url, head, b" " * 65536)
    # then the answer is 413 at once, on the declared length, and nothing is logged as failed
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 2
    assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize(
    ("weak", "named"),
    [
        ({"AUDIT_HASH_KEY": "k"}, "AUDIT_HASH_KEY"),
        ({"QR_SIGNING_KEY": "x"}, "QR_SIGNING_KEY"),
    ],
)
def test_weak_production_secrets_stop_the_server_with_a_message(tmp_path, weak, named):
    # given production settings, strong but for one secret
    env = pinned_env({
        **os.environ,
        "ENVIRONMENT": "prod",
        "JWT_JWKS_URL": "https://idp.example/jwks.json",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}",
        "AUDIT_HASH_KEY": "9c1f4e7a2d5b8c0e3f6a9d2c5b8e1f4a7d0c3b6e9f2a5d8c1b4e7f0a3d6c9b2e",
        "QR_SIGNING_KEY": "4b7e0a3d6c9f2b5e8a1d4c7f0b3e6a9d2c5f8b1e4a7d0c3f6b9e2a5d8c1f4b7e",
        **weak,
    })  # fmt: skip
    # when the server is started
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [SOCIALWALLET, "serve", "--port", str(free_port()), "--no-background-jobs"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # then it refuses to start, naming the setting, without a traceback
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert named in output
    assert "Traceback" not in output
