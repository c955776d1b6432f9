"""CPU time of processes, read from Linux's /proc, for benchmarks that share a machine.

`socialwallet bench redeem` runs its client, its servers and (usually) PostgreSQL on one
machine; how many requests a second they manage depends on how the CPU is shared, so the
benchmark also reports each party's CPU per request. Where /proc is missing (not Linux) the
figures are None rather than wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds the process has used, or None if it is gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after it are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def pids_named(name: str) -> list[int]:
    """The processes whose command name is `name` (e.g. every PostgreSQL backend)."""
    found = []
    for entry in _PROC.glob("[0-9]*"):
        try:
            if (entry / "comm").read_text().strip() == name:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def snapshot(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds of each process now (those gone are left out)."""
    return {pid: cpu for pid in pids if (cpu := cpu_seconds(pid)) is not None}


def used_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two snapshots; a process that started in between counts
    whole, one that ended in between is lost (its last figures are gone with it)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def available() -> bool:
    return (_PROC / "self" / "stat").exists()
