"""A pgbouncer of the test's own, in transaction mode, in front of the test's PostgreSQL.

Debian's pgbouncer (1.18, `make test` installs it) does not track prepared statements, so a
client that leaves a named statement or a session setting behind finds it missing, or
someone else's, on its next transaction. The pooler runs as the `postgres` user (it refuses
to run as root) from a scratch folder, with as few server connections as the test asks for,
so that clients really do share them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def pgbouncer(
    *, server_host: str, server_port: int, user: str, pool_size: int = 1
) -> Iterator[int]:
    """Run pgbouncer in transaction mode until the block ends; yields its port."""
    if not Path(PGBOUNCER).exists():
        raise RuntimeError("pgbouncer is not installed (`make test` installs it with apt-get)")
    # Its own folder under /tmp: pytest's temporary folders are private to root, and the
    # pooler runs as `postgres`.
    workdir = Path(tempfile.mkdtemp(prefix="sw-pgbouncer-"))
    workdir.chmod(0o755)
    port = free_port()
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir / "users.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 200
logfile = {workdir / "pgbouncer.log"}
pidfile = {workdir / "pgbouncer.pid"}
log_connections = 0
log_disconnections = 0
"""
    )
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(workdir, "postgres")
        for name in ("users.txt", "pgbouncer.ini"):
            shutil.chown(workdir / name, "postgres")
    command = [PGBOUNCER, *(["-u", "postgres"] if as_root else []), str(workdir / "pgbouncer.ini")]
    # Its output goes to a file: a pipe nobody reads fills up, and pgbouncer, blocked on
    # writing a log line to it, stops answering everyone (it logs to stderr as well).
    output_file = (workdir / "pgbouncer.out").open("wb")
    process = subprocess.Popen(command, stdout=output_file, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    output = (workdir / "pgbouncer.out").read_text(errors="replace")
                    log = workdir / "pgbouncer.log"
                    output += log.read_text() if log.exists() else ""
                    raise RuntimeError(f"pgbouncer did not start: {output}") from None
                time.sleep(0.05)
        yield port
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
        output_file.close()
        shutil.rmtree(workdir, ignore_errors=True)
