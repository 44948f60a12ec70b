"""Readiness: whether the database answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

READY_TIMEOUT = 3.0


class HealthHandler:
    """Checks the resources a request needs; the engine comes from a getter (made at start-up)."""

    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self._engine = engine

    async def ready(self) -> bool:
        """True when the database answers a trivial query within the timeout."""
        try:
            async with asyncio.timeout(READY_TIMEOUT), self._engine().connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; the reason goes to the log
            log.exception("readiness check failed")
            return False
        return True
