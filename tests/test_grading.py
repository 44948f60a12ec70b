"""Grading: the published formulas, strict input validation, who may grade, and history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records import grading, visits
from telehealth.records.models import AuditEvent, VisitState
from tests.conftest import Staff, login
from tests.review_seed import make_patient

ADAPTER: TypeAdapter[Any] = TypeAdapter(grading.GradeInput)
EXPRESSIONS = ("brow_lift", "gentle_eye_closure", "open_mouth_smile", "snarl", "lip_pucker")


def sunnybrook(rest: tuple[int, int, int], vol: tuple[int, ...], syn: tuple[int, ...]) -> dict[str, Any]:
    return {
        "scale": "sunnybrook",
        "items": {
            "resting": dict(zip(("eye", "cheek", "mouth"), rest, strict=True)),
            "voluntary": dict(zip(EXPRESSIONS, vol, strict=True)),
            "synkinesis": dict(zip(EXPRESSIONS, syn, strict=True)),
        },
    }


EFACE_ITEMS = [k for keys in grading.EFACE_DOMAINS.values() for k in keys]


def test_sunnybrook_composite_follows_ross_1996() -> None:
    # Resting (1+2+1)x5 = 20; voluntary (5+4+3+2+1)x4 = 60; synkinesis 1+1+0+2+0 = 4; composite 60-20-4 = 36.
    g = ADAPTER.validate_python(sunnybrook((1, 2, 1), (5, 4, 3, 2, 1), (1, 1, 0, 2, 0)))
    assert grading.score(g) == {"resting": 20, "voluntary": 60, "synkinesis": 4, "composite": 36}
    normal = ADAPTER.validate_python(sunnybrook((0, 0, 0), (5,) * 5, (0,) * 5))
    assert grading.score(normal)["composite"] == 100
    worst = ADAPTER.validate_python(sunnybrook((1, 2, 1), (1,) * 5, (3,) * 5))
    assert grading.score(worst)["composite"] == 20 - 20 - 15


@given(
    rest=st.tuples(st.integers(0, 1), st.integers(0, 2), st.integers(0, 1)),
    vol=st.tuples(*[st.integers(1, 5)] * 5),
    syn=st.tuples(*[st.integers(0, 3)] * 5),
)
def test_sunnybrook_scores_stay_in_their_published_ranges(rest: Any, vol: Any, syn: Any) -> None:
    s = grading.score(ADAPTER.validate_python(sunnybrook(rest, vol, syn)))
    assert 0 <= s["resting"] <= 20 and 20 <= s["voluntary"] <= 100 and 0 <= s["synkinesis"] <= 15
    assert s["composite"] == s["voluntary"] - s["resting"] - s["synkinesis"] and -35 <= s["composite"] <= 100


def test_eface_subscores_are_item_means_and_total_is_the_mean_of_all_items() -> None:
    items = dict.fromkeys(EFACE_ITEMS, 100)
    items |= {"resting_brow": 80, "palpebral_fissure": 60}  # static mean (80+60+100+100)/4 = 85
    items |= {"full_eye_closure": 30}  # dynamic mean (6x100+30)/7 = 90
    items |= {"ocular_synkinesis": 50, "platysmal_synkinesis": 75}  # synkinesis mean 81.25 -> 81.2
    s = grading.score(ADAPTER.validate_python({"scale": "eface", "items": items}))
    assert s["static"] == 85.0 and s["dynamic"] == 90.0 and s["synkinesis"] == 81.2
    # Total over all 15 items (1295/15 = 86.33), not the mean of the three subscores (85.4).
    assert s["total"] == 86.3


def test_house_brackmann_is_a_grade_one_to_six() -> None:
    s = grading.score(ADAPTER.validate_python({"scale": "house_brackmann", "items": {"grade": 4}}))
    assert s == {"grade": 4, "label": "IV"}


@pytest.mark.parametrize(
    "payload",
    [
        {"scale": "house_brackmann", "items": {"grade": 7}},
        {"scale": "house_brackmann", "items": {"grade": "3"}},  # strings are not silently coerced
        {"scale": "house_brackmann", "items": {"grade": 2.0}},
        {"scale": "house_brackmann", "items": {"grade": True}},
        {"scale": "house_brackmann", "items": {"grade": 2, "note": "extra"}},
        sunnybrook((2, 0, 0), (5,) * 5, (0,) * 5),  # eye is 0-1
        sunnybrook((0, 3, 0), (5,) * 5, (0,) * 5),  # cheek is 0-2
        sunnybrook((0, 0, 0), (0, 5, 5, 5, 5), (0,) * 5),  # voluntary is 1-5
        sunnybrook((0, 0, 0), (5,) * 5, (4, 0, 0, 0, 0)),  # synkinesis is 0-3
        {"scale": "eface", "items": dict.fromkeys(EFACE_ITEMS, 101)},
        {"scale": "eface", "items": dict.fromkeys(EFACE_ITEMS[:-1], 50)},  # an item missing
        {"scale": "mystery", "items": {}},
    ],
)
def test_out_of_range_or_malformed_gradings_are_rejected(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(payload)


@pytest.fixture
async def visit_id(db: async_sessionmaker[AsyncSession], staff: Staff) -> str:
    async with db() as s, s.begin():
        p = await make_patient(s, "G1", created_by=staff.clinician)
        v = await visits.schedule_visit(
            s, patient_id=p.id, clinician_id=staff.clinician, scheduled_at=datetime(2026, 3, 1, tzinfo=UTC)
        )
    return str(v.id)


async def test_clinician_grades_and_history_keeps_every_grading(
    client: TestClient[Any, Any], visit_id: str, db: async_sessionmaker[AsyncSession]
) -> None:
    me = await login(client, "clinician")
    url = f"/api/visits/{visit_id}/grades"
    r = await client.post(url, json=sunnybrook((1, 1, 0), (4, 5, 3, 4, 3), (1, 0, 2, 0, 1)))
    assert r.status == 201, await r.text()
    saved = await r.json()
    assert saved["scores"] == {"resting": 10, "voluntary": 76, "synkinesis": 4, "composite": 62}
    assert saved["author_id"] == me["user_id"] and saved["author_name"] == "Dr. Clin"
    for grade in (3, 2):
        assert (await client.post(url, json={"scale": "house_brackmann", "items": {"grade": grade}})).status == 201
    data = await (await client.get(url)).json()
    assert [g["scores"].get("grade") for g in data["history"] if g["scale"] == "house_brackmann"] == [2, 3]
    current = {g["scale"]: g["scores"] for g in data["current"]}
    assert current["house_brackmann"]["label"] == "II" and current["sunnybrook"]["composite"] == 62
    async with db() as s:
        events = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "grade_visit"))).all()
    assert len(events) == 3 and {e.detail["scale"] for e in events if e.detail} == {"sunnybrook", "house_brackmann"}


async def test_bad_grading_is_400_with_field_errors_and_nothing_is_stored(
    client: TestClient[Any, Any], visit_id: str
) -> None:
    await login(client, "clinician")
    url = f"/api/visits/{visit_id}/grades"
    r = await client.post(url, json=sunnybrook((2, 0, 0), (5, 5, 5, 5, 6), (0,) * 5))
    assert r.status == 400
    fields = {d["field"] for d in (await r.json())["error"]["details"]}
    assert fields == {"sunnybrook.items.resting.eye", "sunnybrook.items.voluntary.lip_pucker"}
    assert (await (await client.get(url)).json())["history"] == []


async def test_reviewer_reads_grades_but_cannot_grade(client: TestClient[Any, Any], visit_id: str) -> None:
    await login(client, "reviewer")
    url = f"/api/visits/{visit_id}/grades"
    r = await client.post(url, json={"scale": "house_brackmann", "items": {"grade": 1}})
    assert r.status == 403
    assert (await client.get(url)).status == 200


async def test_cancelled_visit_cannot_be_graded(
    client: TestClient[Any, Any], visit_id: str, db: async_sessionmaker[AsyncSession]
) -> None:
    async with db() as s, s.begin():
        v = await visits.get_visit(s, uuid.UUID(visit_id))
        visits.transition(v, VisitState.CANCELLED)
    await login(client, "admin")
    r = await client.post(f"/api/visits/{visit_id}/grades", json={"scale": "house_brackmann", "items": {"grade": 1}})
    assert r.status == 409
