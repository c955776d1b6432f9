"""The processes of the topology test: the app's own (`socialwallet serve` and `worker`, each
with its output in a file of its own) and nginx as the load balancer, run from a scratch
folder with its own configuration (no system service)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.clock import CHILD_NOW_VARIABLE

SOCIALWALLET = Path(sys.executable).with_name("socialwallet")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# How long nginx leaves a server that failed before trying it again.
NGINX_FAIL_TIMEOUT_SECONDS = 2


@dataclass
class AppProcess:
    """One process of the app; every run of it appends to the same two log files."""

    name: str
    command: list[str]
    env: dict[str, str]
    folder: Path
    process: subprocess.Popen | None = None
    runs: int = 0

    @property
    def logs(self) -> list[Path]:
        return [self.folder / f"{self.name}.stdout", self.folder / f"{self.name}.stderr"]

    def start(self) -> AppProcess:
        self.runs += 1
        # The child's clock starts at the test's (pinned) now, not when the env was made:
        # a process started a minute later would otherwise live a minute in the past, and
        # find the tokens the test mints not valid yet.
        env = {**self.env, CHILD_NOW_VARIABLE: datetime.now(UTC).isoformat()}
        out, err = (path.open("a") for path in self.logs)
        with out, err:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [str(SOCIALWALLET), *self.command], env=env, stdout=out, stderr=err
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last words (a machine losing power)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=30)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def wait_ready(url: str, process: AppProcess, timeout_s: float = 90) -> dict:
    """/readyz of one API process, once it answers 200."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited: {process.logs[1].read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"{url}/readyz", timeout=5)
            if answer.status_code == 200:
                return answer.json()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} never became ready")
        time.sleep(0.3)


@dataclass
class Nginx:
    """nginx in front of the API processes: round robin, and a request that cannot reach
    one process goes to the next (every mutation carries an idempotency key, so passing a
    POST on after a process died mid-request is safe)."""

    folder: Path
    port: int
    upstreams: list[int]
    process: subprocess.Popen | None = field(default=None)

    def start(self) -> Nginx:
        prefix = self.folder / "nginx"
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        servers = "\n".join(
            f"    server 127.0.0.1:{port} max_fails=1 fail_timeout={NGINX_FAIL_TIMEOUT_SECONDS}s;"
            for port in self.upstreams
        )
        temp = prefix / "temp"
        conf = prefix / "nginx.conf"
        conf.write_text(
            f"""worker_processes 1;
error_log {prefix / "logs" / "error.log"} warn;
pid {prefix / "nginx.pid"};
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  upstream api {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_next_upstream error timeout http_502 non_idempotent;
      proxy_connect_timeout 2s;
      proxy_read_timeout 30s;
    }}
  }}
}}
"""
        )
        temp.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            # nginx's workers drop to `nobody`; they write request bodies under temp/.
            shutil.chown(temp, "nobody")
        self.process = subprocess.Popen(  # noqa: S603 - Debian's nginx, our own config file
            [NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{self.port}/livez", timeout=2)
                return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.process.communicate()[0].decode(errors="replace")
                raise RuntimeError(f"nginx did not start: {output}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
