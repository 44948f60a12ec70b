"""The patient registry: search, register, read and correct demographics."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from telehealth.handlers.common import Handler
from telehealth.handlers.uow import Actor
from telehealth.records import patients
from telehealth.records.models import AffectedSide, Patient


class PatientsHandler(Handler):
    """Every read and change of a patient record, each audited."""

    async def search(self, actor: Actor, query: str, *, limit: int) -> Sequence[Patient]:
        """Patients by MRN or name prefix."""
        async with self.work(actor) as uow:
            found = await patients.search_patients(uow.db, query, limit=limit)
            uow.audit("search_patients", detail={"results": len(found)})
        return found

    async def create(
        self,
        actor: Actor,
        *,
        created_by: uuid.UUID | None,
        mrn: str,
        given_name: str,
        family_name: str,
        birth_date: date,
        affected_side: AffectedSide,
    ) -> Patient:
        """Register a patient (Conflict on a duplicate MRN)."""
        async with self.work(actor) as uow:
            patient = await patients.create_patient(
                uow.db,
                mrn=mrn,
                given_name=given_name,
                family_name=family_name,
                birth_date=birth_date,
                affected_side=affected_side,
                created_by=created_by,
            )
            uow.audit("create_patient", object_type="patient", object_id=patient.id, patient_id=patient.id)
        return patient

    async def get(self, actor: Actor, patient_id: uuid.UUID) -> Patient:
        """One patient."""
        async with self.work(actor) as uow:
            patient = await patients.get_patient(uow.db, patient_id)
            uow.audit("view_patient", object_type="patient", object_id=patient_id, patient_id=patient_id)
        return patient

    async def update(self, actor: Actor, patient_id: uuid.UUID, changes: dict[str, object]) -> Patient:
        """Change validated fields of a patient."""
        async with self.work(actor) as uow:
            patient = await patients.update_patient(uow.db, patient_id, changes)
            uow.audit(
                "update_patient",
                object_type="patient",
                object_id=patient_id,
                patient_id=patient_id,
                detail={"fields": sorted(changes)},
            )
        return patient
