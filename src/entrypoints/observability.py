"""Structured logging (structlog → JSON lines) with a request id bound per request and per job."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import structlog

from entrypoints.settings import Settings

_configured = False


def configure_logging(settings: Settings, *, quiet: Sequence[str] = ()) -> None:
    """Route stdlib and structlog logs through one JSON (or console) renderer, once per process.

    ``quiet`` names loggers held at WARNING in this process on top of the usual noisy ones.
    """
    global _configured
    if _configured:
        return
    _configured = True
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if settings.log_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio", *quiet):
        logging.getLogger(noisy).setLevel(logging.WARNING)
