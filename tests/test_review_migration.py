"""Migration 0002 on both backends: it matches the models and downgrades cleanly."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from telehealth.records.db import make_engine
from telehealth.records.migrate import alembic_config, upgrade_sync
from telehealth.records.models import Base
from tests.conftest import PG_URL, run_async


def _state(url: str) -> tuple[list[Any], set[str]]:
    """(differences between schema and models, table names) for the database at url."""

    async def read() -> tuple[list[Any], set[str]]:
        engine = make_engine(url)
        async with engine.connect() as conn:

            def inspect_sync(sync_conn: Any) -> tuple[list[Any], set[str]]:
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(ctx, Base.metadata), set(inspect(sync_conn).get_table_names())

            out = await conn.run_sync(inspect_sync)
        await engine.dispose()
        return out

    return run_async(read())


def _round_trip(url: str) -> None:
    upgrade_sync(url)
    diff, tables = _state(url)
    assert diff == [] and {"grades", "capture_notes", "outgoing_messages"} <= tables
    command.downgrade(alembic_config(url), "0001")
    assert not {"grades", "capture_notes", "outgoing_messages"} & _state(url)[1]
    upgrade_sync(url)
    assert _state(url)[0] == []


def test_migration_round_trips_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}")


def test_migration_round_trips_on_postgresql(pg_schema_url: str) -> None:
    schema = f"mig_{uuid.uuid4().hex[:8]}"

    async def ddl(sql: str) -> None:
        engine = make_engine(PG_URL)
        async with engine.begin() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    run_async(ddl(f'CREATE SCHEMA "{schema}"'))
    try:
        _round_trip(f"{PG_URL}?search_path={schema}")
    finally:
        run_async(ddl(f'DROP SCHEMA "{schema}" CASCADE'))
