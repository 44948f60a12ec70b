"""Structured logs: JSON lines with request and visit ids, and no secret or patient identifier in them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from telehealth.logs import make_handler, redact
from telehealth.records.consent import CONSENT_VERSION
from tests.conftest import PASSWORD, login

GIVEN, FAMILY, DOB = "Zebulon", "Quillfeather", "1971-04-23"
WRONG_PASSWORD = "hunter2-not-the-password"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every record of every logger, at DEBUG, through the production JSON handler."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


async def test_a_visit_leaves_json_logs_without_tokens_passwords_birth_dates_or_names(
    client: TestClient[Any, Any], json_log: io.StringIO
) -> None:
    r = await client.post("/api/auth/login", json={"username": "clinician", "password": WRONG_PASSWORD})
    assert r.status == 401
    me = await login(client, "clinician")
    p = await (
        await client.post(
            "/api/patients",
            json={"mrn": "LOG-1", "given_name": GIVEN, "family_name": FAMILY, "birth_date": DOB},
        )
    ).json()
    r = await client.post(
        "/api/visits",
        json={"patient_id": p["id"], "scheduled_at": datetime.now(UTC).isoformat(), "requires_dob": True},
    )
    visit = await r.json()
    link = await (await client.post(f"/api/visits/{visit['id']}/join-link")).json()
    token = link["token"]
    assert (await client.get(f"/join/{token}")).status == 200
    assert (await client.post(f"/api/join/{token}/session", json={"birth_date": "1971-04-24"})).status >= 400
    r = await client.post(f"/api/join/{token}/session", json={"birth_date": DOB})
    assert r.status == 201, await r.text()
    patient = await r.json()
    r = await client.post(
        "/api/patient/consent",
        json={"capture": True, "consent_version": CONSENT_VERSION, "signed_name": f"{GIVEN} {FAMILY}"},
        headers={"Authorization": f"Bearer {patient['token']}"},
    )
    assert r.status == 200, await r.text()
    assert r.headers["X-Request-Id"]

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    text = json_log.getvalue()
    secrets = {
        "given name": GIVEN,
        "family name": FAMILY,
        "date of birth": DOB,
        "wrong DOB": "1971-04-24",
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "join token": token,
        "patient bearer": patient["token"],
        "patient csrf": patient["csrf_token"],
        "staff csrf": me["csrf_token"],
        "session cookie": client.session.cookie_jar.filter_cookies(client.make_url("/"))["th_session"].value,
    }
    leaked = {what for what, value in secrets.items() if value in text}
    assert leaked == set()

    access = [line for line in lines if line["logger"] == "telehealth.access"]
    assert {"time", "level", "logger", "message", "request_id"} <= access[0].keys()
    assert any(line["http"]["path"] == "/api/join/[redacted]/session" for line in access)
    assert any(line["http"]["path"] == "/join/[redacted]" for line in access)
    # A clinician's visit routes name the visit in the path; the patient's are tagged from the session.
    assert any(line.get("visit_id") == visit["id"] and "join-link" in line["message"] for line in access)
    assert any(
        line.get("visit_id") == visit["id"] and line["http"]["path"] == "/api/patient/consent" for line in access
    )
    assert len({line["request_id"] for line in access}) == len(access)


async def test_a_request_id_from_the_proxy_is_kept_and_a_strange_one_is_replaced(
    client: TestClient[Any, Any],
) -> None:
    r = await client.get("/healthz", headers={"X-Request-Id": "nginx-4f2a9c"})
    assert r.headers["X-Request-Id"] == "nginx-4f2a9c"
    r = await client.get("/healthz", headers={"X-Request-Id": "<script>" * 20})
    assert r.headers["X-Request-Id"] != "<script>" * 20 and len(r.headers["X-Request-Id"]) == 32


def test_redaction_covers_what_other_libraries_might_log() -> None:
    assert redact("GET /join/AbC-123_x?y=1 HTTP/1.1") == "GET /join/[redacted]?y=1 HTTP/1.1"
    assert "abc.def" not in redact("Authorization: Bearer abc.def")
    assert redact("sent Bearer abc.def") == "sent Bearer [redacted]"
    assert redact("{'password': 'pw 1', 'given_name': 'Ann Lee', 'birth_date': datetime.date(1980, 2, 3)}") == (
        "{'password': [redacted], 'given_name': [redacted], 'birth_date': [redacted]}"
    )
    assert redact('{"family_name": "Lee", "mrn": "M1"}') == '{"family_name": [redacted], "mrn": "M1"}'
    assert redact("born 1980-02-03, seen 2026-12-03T10:00:00, at 2026-12-03 10:00") == (
        "born [redacted], seen 2026-12-03T10:00:00, at 2026-12-03 10:00"
    )
