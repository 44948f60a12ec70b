"""The face measurements of a visit go to the hospital record as FHIR Observations derived from their still."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.analysis.metrics import METRIC_UNITS
from telehealth.handlers.analysis import ANALYSIS
from telehealth.records.fhir import MEASUREMENT_SYSTEM, METHOD_SYSTEM
from telehealth.settings import Settings
from tests.analysis.test_measure_api import analysis_app, seed
from tests.conftest import Staff, login
from tests.test_export import references, validate_r4_bundle


async def test_the_fhir_record_holds_each_measurement_per_side_and_its_asymmetry_derived_from_the_still(
    aiohttp_client: Any, settings: Settings, staff: Staff, db: async_sessionmaker[AsyncSession]
) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(analysis_app(settings))
    _, visit_id, media = await seed(db, settings, staff, {"rest": "rest"})
    reading = await client.app[ANALYSIS].measure_media(media["rest"][0])

    await login(client, "clinician")
    resp = await client.get(f"/api/visits/{visit_id}/export/fhir")
    assert resp.status == 200, await resp.text()
    by_ref = validate_r4_bundle(await resp.json())
    assert all(ref in by_ref for res in by_ref.values() for ref in references(res)), "dangling reference"

    obs = {
        o["code"]["coding"][0]["code"]: o
        for o in by_ref.values()
        if o["resourceType"] == "Observation" and o["code"]["coding"][0]["system"] == MEASUREMENT_SYSTEM
    }
    assert reading.metrics is not None
    for metric in ("brow_height", "palpebral_fissure_height", "smile_angle", "dental_show"):
        for side in ("right", "left"):
            q = obs[f"{metric}.{side}"]["valueQuantity"]
            assert q["system"] == "http://unitsofmeasure.org" and q["code"] == METRIC_UNITS[metric]
    assert {obs["smile_angle.right"]["valueQuantity"]["code"], obs["dental_show.left"]["valueQuantity"]["code"]} == {
        "deg",
        "mm2",
    }
    brow = obs["brow_height.right"]
    assert 5 < brow["valueQuantity"]["value"] < 40  # a real brow sits millimetres above the pupil
    assert brow["derivedFrom"] == [{"reference": f"urn:uuid:{media['rest'][0]}"}]
    assert by_ref[brow["derivedFrom"][0]["reference"]]["resourceType"] == "Media"
    (method,) = brow["method"]["coding"]
    assert method["system"] == METHOD_SYSTEM and method["version"] == reading.model_version == "0.10.21"
    assert "decision support, not a diagnosis" in brow["note"][0]["text"]
    assert obs["brow_height.asymmetry"]["valueQuantity"]["code"] == "%"
    assert obs["brow_height.asymmetry"]["valueQuantity"]["value"] >= 0
    report = next(r for r in by_ref.values() if r["resourceType"] == "DiagnosticReport")
    assert {f"urn:uuid:{o['id']}" for o in obs.values()} <= {r["reference"] for r in report["result"]}
