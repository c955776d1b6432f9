"""PostgreSQL clusters of a test's own: a primary and a streaming standby on other ports.

Made with the machine's PostgreSQL 15 binaries (`initdb`, `pg_ctl`, `pg_basebackup -R`), run
as the `postgres` user from a scratch folder under /tmp, and removed afterwards; the
machine's own cluster is never touched. A pair costs about two seconds to make.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.pgbouncer import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class Cluster:
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def _as_postgres(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run `command` as the postgres user (the server refuses to run as root)."""
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")

        def demote() -> None:
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)

        kwargs["preexec_fn"] = demote
    return subprocess.run(  # noqa: S603 - our own fixed commands
        command, check=True, capture_output=True, text=True, timeout=120, **kwargs
    )


def _start(cluster: Cluster) -> None:
    _as_postgres([
        str(BIN / "pg_ctl"), "-D", str(cluster.data), "-l", str(cluster.data / "server.log"),
        "-o", f"-p {cluster.port} -k {cluster.data} -c listen_addresses=127.0.0.1",
        "-w", "start",
    ])  # fmt: skip


def _stop(cluster: Cluster) -> None:
    with contextlib.suppress(subprocess.SubprocessError):
        _as_postgres([str(BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "stop"])


def _wait_until_accepting(cluster: Cluster, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        done = subprocess.run(  # noqa: S603
            [str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(cluster.port)],
            capture_output=True, check=False,
        )  # fmt: skip
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"cluster on port {cluster.port} did not start")
        time.sleep(0.1)


@contextlib.contextmanager
def streaming_pair(
    *, primary_settings: dict[str, str] | None = None
) -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and its streaming standby (hot standby on), removed when the block ends."""
    root = Path(tempfile.mkdtemp(prefix="sw-pgpair-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    primary = Cluster(root / "primary", free_port())
    standby = Cluster(root / "standby", free_port())
    started: list[Cluster] = []
    try:
        _as_postgres([
            str(BIN / "initdb"), "-D", str(primary.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        ])  # fmt: skip
        settings = {"wal_level": "replica", "max_wal_senders": "5", "fsync": "off",
                    "hot_standby": "on", **(primary_settings or {})}  # fmt: skip
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = '{value}'\n" for key, value in settings.items())
        _start(primary)
        started.append(primary)
        _wait_until_accepting(primary)
        _as_postgres([
            str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U",
            "postgres", "-D", str(standby.data), "-R", "-X", "stream", "--no-sync",
        ])  # fmt: skip
        _start(standby)
        started.append(standby)
        _wait_until_accepting(standby)
        yield primary, standby
    finally:
        for cluster in reversed(started):
            _stop(cluster)
        shutil.rmtree(root, ignore_errors=True)


def stop(cluster: Cluster) -> None:
    """Stop a cluster at once (a standby going down, for a test)."""
    _stop(cluster)
