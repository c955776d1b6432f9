"""`socialwallet serve` in a child process, as `make run` serves it, for tests that talk to
the real server over HTTP (the browser tests, graphql-http's audit): its own SQLite file in a
scratch folder, whatever DATABASE_URL says, on the suite's pinned timeline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.clock import pinned_env

SOCIALWALLET = Path(sys.executable).with_name("socialwallet")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(
    work: Path, *, setup: tuple[tuple[str, ...], ...] = (("migrate",),), **extra_env: str
) -> Iterator[tuple[str, dict[str, str]]]:
    """Run the `setup` commands, then serve until the block ends; yields (base URL, env)."""
    env = pinned_env({
        **os.environ,
        "ENVIRONMENT": "dev",
        "DATABASE_URL": f"sqlite+aiosqlite:///{work / 'socialwallet.db'}",
        "DEV_JWT_KEY_PATH": str(work / "dev-jwt-key.pem"),
        "LOG_LEVEL": "WARNING",
        **extra_env,
    })  # fmt: skip
    for command in setup:
        subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [str(SOCIALWALLET), *command], env=env, check=True, capture_output=True, timeout=120
        )
    port = free_port()
    log_path = work / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [str(SOCIALWALLET), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--no-background-jobs"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass  # not listening yet
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {log_path.read_text()}")
                time.sleep(0.2)
            yield url, env
        finally:
            server.terminate()
            server.wait(timeout=15)
