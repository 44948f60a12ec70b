"""Monitoring reads: the gauges that describe the database, refreshed when Prometheus scrapes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from telehealth import metrics
from telehealth.handlers.common import Handler, SessionSource
from telehealth.handlers.uow import reading
from telehealth.records import stats

SCRAPE_TIMEOUT = 5.0


class MonitoringHandler(Handler):
    """Reads whole-database counts (no patient data, so no audit event) into the metrics."""

    def __init__(self, sessions: SessionSource, engine: Callable[[], AsyncEngine]) -> None:
        super().__init__(sessions)
        self._engine = engine

    async def refresh(self) -> None:
        """Visits by state, media recorded and pool use; raises if the database does not answer in time."""
        self.refresh_pool()
        async with asyncio.timeout(SCRAPE_TIMEOUT), reading(self.sessionmaker) as db:
            visits = await stats.visits_by_state(db)
            files, size = await stats.media_totals(db)
        for state, count in visits.items():
            metrics.VISITS.labels(state.value).set(count)
        metrics.MEDIA_FILES.set(files)
        metrics.MEDIA_BYTES.set(size)

    def refresh_pool(self) -> None:
        """Connections in use and idle in the engine's pool."""
        pool = self._engine().sync_engine.pool
        if isinstance(pool, QueuePool):
            metrics.DB_POOL.labels("in_use").set(pool.checkedout())
            metrics.DB_POOL.labels("idle").set(pool.checkedin())
