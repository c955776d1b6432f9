"""The log scan (tests/logscan.py) can fail: a planted IIN in a test's output fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from familymap.iin import is_valid_iin
from tests.logscan import raw_iins

REPO = Path(__file__).resolve().parents[2]
PLANTED = "900101300126"
PLANTED_TEST = f"""
import logging


def test_logs_a_raw_iin():
    logging.getLogger("app").warning("looked up %s", "{PLANTED}"[:6] + "{PLANTED}"[6:])
    print("subject=" + "{PLANTED}")
"""


def test_the_scanner_finds_valid_iins_only():
    assert is_valid_iin(PLANTED)
    text = f"a={PLANTED} b=900101300125 c=90********26 d=1{PLANTED}"
    assert raw_iins(text) == [PLANTED]


def test_the_scanner_ignores_uuids_and_hex_tokens():
    uuid_text = f"merchant 5c0001a0-0000-4000-8000-{PLANTED} request ab{PLANTED}cd00"
    assert raw_iins(uuid_text) == []


def test_a_planted_iin_fails_the_run(tmp_path):
    # Given a test that prints a raw IIN, run with the plugin in a pytest of its own
    (tmp_path / "test_planted.py").write_text(PLANTED_TEST)
    result = subprocess.run(  # noqa: S603 (our own interpreter, our own arguments)
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.logscan", "-p", "no:cacheprovider",
         str(tmp_path / "test_planted.py")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    # Then the test passes but the run fails, naming the test with the IIN masked
    assert "1 passed" in result.stdout
    assert result.returncode == 1
    assert "log scan FAILED" in result.stdout
    assert "test_logs_a_raw_iin" in result.stdout and "90********26" in result.stdout
    assert PLANTED not in result.stdout.replace(f'"{PLANTED}"', "")
