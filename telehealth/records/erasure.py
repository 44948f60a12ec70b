"""Erasing one patient's records and media: which rows depend on the patient, and removing them.

The set of rows is found from the schema's foreign keys (patient -> visits -> captures, media, grades,
notes, visit sessions, and whatever table a later migration hangs off them), so a new table cannot be
forgotten. Staff accounts and the audit log are never erased: audit rows name no patient, only ids,
and the erasure itself is recorded there as the tombstone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import Base, MediaFile

KEPT_TABLES: Final = frozenset({"users", "audit_events"})
_CHUNK = 500


@dataclass(frozen=True)
class ErasurePlan:
    """The rows (primary keys by table) and media keys that belong to one patient."""

    patient_id: uuid.UUID
    rows: dict[str, list[Any]]
    media_keys: frozenset[str]

    @property
    def counts(self) -> dict[str, int]:
        """Rows per table (for the audit tombstone: numbers, no identifiers)."""
        return {table: len(ids) for table, ids in sorted(self.rows.items()) if ids}


def _pk(table: Table) -> Any:
    (column,) = table.primary_key.columns  # every table here has a single-column key
    return column


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


async def plan_erasure(db: AsyncSession, patient_id: uuid.UUID) -> ErasurePlan:
    """Follow foreign keys from the patient to every dependent row (parents before children)."""
    rows: dict[str, list[Any]] = {"patients": [patient_id]}
    for table in Base.metadata.sorted_tables:
        if table.name in KEPT_TABLES or table.name == "patients":
            continue
        found: set[Any] = set()
        for fk in table.foreign_keys:
            parent = fk.column.table.name
            if parent == table.name or not rows.get(parent):
                continue
            for chunk in _chunks(rows[parent]):
                found.update((await db.execute(select(_pk(table)).where(fk.parent.in_(chunk)))).scalars())
        if found:
            rows[table.name] = sorted(found, key=str)
    keys: set[str] = set()
    for chunk in _chunks(rows.get(MediaFile.__tablename__, [])):
        keys.update((await db.execute(select(MediaFile.storage_key).where(MediaFile.id.in_(chunk)))).scalars())
    return ErasurePlan(patient_id, rows, frozenset(keys))


async def execute_erasure(db: AsyncSession, plan: ErasurePlan) -> None:
    """Delete the planned rows, children before parents, in the caller's transaction."""
    for table in reversed(Base.metadata.sorted_tables):
        for chunk in _chunks(plan.rows.get(table.name, [])):
            await db.execute(delete(table).where(_pk(table).in_(chunk)))


async def unreferenced(db: AsyncSession, keys: Iterable[str]) -> set[str]:
    """The keys no remaining media row points to (identical bytes of another patient keep their file)."""
    wanted = sorted(keys)
    still: set[str] = set()
    for chunk in _chunks(wanted):
        still.update(
            (await db.execute(select(MediaFile.storage_key).where(MediaFile.storage_key.in_(chunk)))).scalars()
        )
    return set(wanted) - still


async def remove_files(store: FileMediaStore, keys: Iterable[str]) -> int:
    """Unlink media files (after the rows' deletion committed); returns how many existed."""

    def unlink_all() -> int:
        removed = 0
        for key in keys:
            path = store.local_path(key)
            if path.exists():
                path.unlink()
                removed += 1
        return removed

    return await asyncio.to_thread(unlink_all)
