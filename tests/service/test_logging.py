"""Logs never carry a raw IIN."""

from __future__ import annotations

import json
import logging

import structlog

from app.logging import configure_logging, mask_iins_in_text


def test_twelve_digit_runs_are_masked():
    assert mask_iins_in_text("iin=900101300126 ok") == "iin=90********26 ok"
    assert mask_iins_in_text("a 1234567890123 b") == "a 1234567890123 b"  # 13 digits: not an IIN
    assert mask_iins_in_text("phone +77010000001") == "phone +77010000001"  # 11 digits


def test_structlog_and_stdlib_records_are_masked_everywhere(capsys):
    configure_logging(level="INFO", json=True)
    try:
        structlog.get_logger("t").info(
            "looked up 900101300126", subject="900101300126", nested={"ids": ["850615400016"]}
        )
        logging.getLogger("uvicorn.error").info("request for %s failed", "900101300126")
    finally:
        logging.getLogger().handlers.clear()
    err = capsys.readouterr().err
    assert "900101300126" not in err and "850615400016" not in err
    records = [json.loads(line) for line in err.splitlines()]
    assert records[0]["event"] == "looked up 90********26"
    assert records[0]["subject"] == "90********26"
    assert records[0]["nested"] == {"ids": ["85********16"]}
    assert records[1]["event"] == "request for 90********26 failed"
