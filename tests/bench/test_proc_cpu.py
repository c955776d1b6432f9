"""bench/proc_cpu.py: CPU seconds of processes from /proc (the redemption benchmark's split)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench import proc_cpu

pytestmark = pytest.mark.skipif(not proc_cpu.available(), reason="needs Linux's /proc")


def test_a_busy_process_is_seen_using_cpu_and_a_gone_one_is_none():
    me = os.getpid()
    before = proc_cpu.snapshot([me])
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # spin for 0.2 s of CPU
        pass
    after = proc_cpu.snapshot([me])
    assert 0.15 <= proc_cpu.used_since(before, after) <= 1.0
    assert proc_cpu.cpu_seconds(2**22 + 12345) is None  # beyond any pid_max


def test_processes_are_found_by_their_command_name():
    name = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert os.getpid() in proc_cpu.pids_named(name)
    assert proc_cpu.pids_named("no-such-command-here") == []


def test_a_process_started_in_between_counts_whole():
    assert proc_cpu.used_since({1: 5.0}, {1: 7.5, 2: 1.25}) == 3.75
