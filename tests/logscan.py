"""A pytest plugin: no raw IIN in anything the app logged during the whole test run.

It configures logging as production does (`app.logging.configure_logging`: JSON lines,
IINs masked) for the session, collects what every test phase wrote to stdout and stderr
(where structlog and the standard library's handler write), and at the session's end fails
the run if any run of twelve digits there passes the IIN check digit. Only the masked form
is reported, so the report itself leaks nothing.

pytest's own "Captured log" rendering is not scanned: it formats records its own way, not
the way the app writes them. Loaded from tests/conftest.py (`pytest_plugins`); a test runs
it on a planted IIN to prove it can fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest

from familymap.iin import is_valid_iin, mask_iin

_TWELVE_DIGITS = re.compile(r"(?<!\d)\d{12}(?!\d)")
# Identifiers that may hold twelve digits in a row by chance: UUIDs (their last group is 12
# hex digits) and hex tokens with letters (request ids, hashes). They are not IINs.
_NOT_IINS = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b(?=[0-9a-f]*[a-f])[0-9a-f]{16,}\b"
)
_SCANNED_SECTIONS = ("Captured stdout", "Captured stderr")


def raw_iins(text: str) -> list[str]:
    """Every twelve-digit run in `text` that passes the IIN check digit."""
    text = _NOT_IINS.sub(" ", text)
    return [run for run in _TWELVE_DIGITS.findall(text) if is_valid_iin(run)]


class LogScan:
    def __init__(self) -> None:
        self.findings: list[tuple[str, str, str]] = []  # (test, section, masked IIN)
        self.scanned_chars = 0

    def scan(self, nodeid: str, sections: Iterable[tuple[str, str]]) -> None:
        for title, content in sections:
            if not title.startswith(_SCANNED_SECTIONS):
                continue
            self.scanned_chars += len(content)
            for iin in raw_iins(content):
                self.findings.append((nodeid, title, mask_iin(iin)))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from app.logging import configure_logging

        configure_logging(level="INFO", json=True)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.scan(report.nodeid, report.sections)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.findings:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.findings:
            terminalreporter.write_line(
                f"log scan: no raw IIN in {self.scanned_chars:,} characters of log output"
            )
            return
        terminalreporter.section("raw IINs in the logs", red=True)
        for nodeid, title, masked in self.findings:
            terminalreporter.write_line(f"{nodeid} ({title}): {masked}")
        terminalreporter.write_line(f"log scan FAILED: {len(self.findings)} raw IIN(s)", red=True)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(LogScan(), "socialwallet-logscan")
