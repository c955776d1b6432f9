"""Structured JSON logs with a request id on every line, and no raw IIN anywhere.

structlog renders every record, ours and the standard library's (uvicorn, sqlalchemy), so
one masking processor sees them all. Any run of twelve digits is masked, not only those that
pass the check digit: a mistyped IIN is still somebody's personal data.

Every process applies the same configuration, `log_config()`, a `logging.config` dict: the CLI
through `configure_logging`, and uvicorn in each worker process it spawns (`serve` passes it
as uvicorn's `log_config`). Workers start from a fresh interpreter, so a configuration made
only in the parent would leave their lines unmasked console text.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from familymap.iin import mask_iins_in_text

# uvicorn's loggers hand their records to the root handler instead of their own.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_iins_in_text(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def mask_iins(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog processor: mask IINs in every string of the event, nested ones included."""
    return {key: _mask(value) for key, value in event_dict.items()}


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]


def structured_formatter(*, json: bool = True) -> logging.Formatter:
    """The one formatter of every handler: masks IINs, then renders JSON (or console text).

    `logging.config` calls it (`"()"` in `log_config`) in whichever process applies the
    configuration, so it also routes structlog into the standard library there.
    """
    shared = _shared_processors()
    structlog.configure(
        # An event below the level is dropped first, before its context is merged and its
        # time stamped (every request's `request` line, when the level is WARNING).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Standard-library records carry %-style args; render them before masking.
            mask_iins,
            renderer,
        ],
    )


class CurrentStderrHandler(logging.StreamHandler):
    """Writes each record to `sys.stderr` as it is at that moment, not as it was when logging
    was configured: a test runner or the CLI's test runner may swap the stream in between."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        return None


def log_config(*, level: str = "INFO", json: bool = True) -> dict[str, Any]:
    """The `logging.config.dictConfig` of every process: one stderr handler on the root."""
    return {
        "version": 1,
        # Loggers made at import time (sqlalchemy's, ours) must keep working.
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": structured_formatter, "json": json}},
        "handlers": {
            "stderr": {"class": "app.logging.CurrentStderrHandler", "formatter": "structured"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
    }


def configure_logging(*, level: str = "INFO", json: bool = True) -> None:
    """Route structlog and the standard library through one JSON renderer."""
    logging.config.dictConfig(log_config(level=level, json=json))
    # Python's warnings would otherwise be written to stderr as text, unmasked.
    logging.captureWarnings(True)
