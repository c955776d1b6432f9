"""Structured JSON logs with a request id on every line, and no raw IIN anywhere.

structlog renders every record, ours and the standard library's (uvicorn, sqlalchemy), so
one masking processor sees them all. Any run of twelve digits is masked, not only those that
pass the check digit: a mistyped IIN is still somebody's personal data.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from familymap.iin import mask_iins_in_text


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_iins_in_text(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def mask_iins(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask IINs in every string of the event, nested ones included."""
    return {key: _mask(value) for key, value in event_dict.items()}


def configure_logging(*, level: str = "INFO", json: bool = True) -> None:
    """Route structlog and the standard library through one JSON renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Standard-library records carry %-style args; render them before masking.
            mask_iins,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
