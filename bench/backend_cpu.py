"""CPU seconds a block costs: this process, and one database's PostgreSQL backends.

On a shared machine wall time measures the share of the cores a run was given as much as the
run; the CPU it cost moves far less with the load. Unlike `bench redeem` (every `postgres`
process, before and after), an eligibility run opens reader connections that close before it
ends, so the database's backends (found by their process title, `postgres: user database
host ...`) are sampled while the block runs: a reader counts up to its last sample (every
50 ms). Built on bench.proc_cpu; None where /proc is missing or the server is elsewhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import proc_cpu

_INTERVAL_S = 0.05


@dataclass
class CpuSeconds:
    """Filled in when the block ends."""

    client: float = 0.0  # this process, all threads but the sampler's
    server: float | None = None  # the database's backends


def database_backends(database: str) -> list[int]:
    """The PostgreSQL backends connected to `database` (on this host)."""
    title = f" {database} ".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"postgres: ") and title in command:
            found.append(int(entry.name))
    return found


@contextmanager
def cpu_seconds(database: str | None) -> Iterator[CpuSeconds]:
    """Measure the CPU the block costs here and in `database`'s backends (None: not local)."""
    result = CpuSeconds()
    local = database is not None and proc_cpu.available()
    before = proc_cpu.snapshot(database_backends(database)) if database and local else {}
    latest = dict(before)
    stop = threading.Event()
    sampling = [0.0]

    def sample() -> None:
        own = time.thread_time()
        assert database is not None  # sampled only when local
        while not stop.wait(_INTERVAL_S):
            latest.update(proc_cpu.snapshot(database_backends(database)))
        sampling[0] = time.thread_time() - own

    thread = threading.Thread(target=sample, daemon=True)
    if local:
        thread.start()
    started = time.process_time()
    try:
        yield result
    finally:
        ended = time.process_time()
        if local and database is not None:
            stop.set()
            thread.join()
            latest.update(proc_cpu.snapshot(database_backends(database)))
            result.server = proc_cpu.used_since(before, latest)
        result.client = ended - started - sampling[0]
