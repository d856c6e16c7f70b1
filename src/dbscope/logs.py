"""Debug logging on ``dbscope.isolation`` and ``dbscope.database``, switched by DBSCOPE_DEBUG."""

from __future__ import annotations

import logging
import os
from typing import IO

__all__ = ["LOGGER_NAMES", "configure_debug_logging"]

LOGGER_NAMES = ("isolation", "database")


class _DebugHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler DBSCOPE_DEBUG adds, recognisable so that it is added once."""


def configure_debug_logging(value: str | None = None, *, stream: IO[str] | None = None) -> list[str]:
    """Turn on DEBUG for the loggers named in ``value`` (``DBSCOPE_DEBUG`` by default).

    ``isolation,database``, ``all`` or ``1`` are accepted; returns the loggers switched on.
    ``stream`` (default stderr) is where the lines go.
    """
    value = os.environ.get("DBSCOPE_DEBUG", "") if value is None else value
    wanted = {part.strip().lower() for part in value.split(",") if part.strip()}
    if wanted & {"1", "all", "true", "yes"}:
        wanted = set(LOGGER_NAMES)
    enabled = []
    for name in LOGGER_NAMES:
        if name not in wanted:
            continue
        logger = logging.getLogger(f"dbscope.{name}")
        logger.setLevel(logging.DEBUG)
        if not any(isinstance(h, _DebugHandler) for h in logger.handlers):
            handler = _DebugHandler(stream)
            handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
        enabled.append(f"dbscope.{name}")
    return enabled
