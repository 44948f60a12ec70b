"""JSON in and out: validated bodies, stable error shapes."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from telehealth.keys import SETTINGS
from telehealth.records.errors import InvalidInput, TooLarge

M = TypeVar("M", bound=BaseModel)
MAX_JSON_BYTES = 64 * 1024


class MalformedJson(InvalidInput):
    """The body is not JSON at all."""

    code = "malformed_json"


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as [{field, message}] without echoing the input back."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Read and validate a JSON body; 400 with field errors when it does not fit."""
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise TooLarge("request body too large")
    try:
        # A client trickling its body (slowloris) is cut off instead of holding a handler forever.
        async with asyncio.timeout(request.app[SETTINGS].read_timeout_seconds):
            raw = await _read_up_to(request, MAX_JSON_BYTES + 1)
    except TimeoutError:
        raise web.HTTPRequestTimeout(reason="request body not received in time") from None
    if len(raw) > MAX_JSON_BYTES:
        raise TooLarge("request body too large")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJson("request body is not valid JSON") from exc
    except RecursionError:  # a small body can nest deeper than the parser's recursion limit
        raise MalformedJson("request body is nested too deeply") from None
    if _has_nul(data):
        raise InvalidInput("text may not contain NUL characters")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("invalid fields", details=field_errors(exc)) from exc


async def _read_up_to(request: web.Request, limit: int) -> bytes:
    """The body, or its first ``limit`` bytes; one read() returns only what has arrived so far."""
    raw = bytearray()
    while len(raw) < limit and (chunk := await request.content.read(limit - len(raw))):
        raw += chunk
    return bytes(raw)


def parse_query(request: web.Request, model: type[M]) -> M:
    """Validate query parameters against a model."""
    query = dict(request.query)
    if _has_nul(query):
        raise InvalidInput("query parameters may not contain NUL characters")
    try:
        return model.model_validate(query)
    except ValidationError as exc:
        raise InvalidInput("invalid query parameters", details=field_errors(exc)) from exc


def _has_nul(data: Any) -> bool:
    """Whether any string (or key) holds U+0000: PostgreSQL cannot store it, and no name needs it."""
    if isinstance(data, str):
        return "\x00" in data
    if isinstance(data, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in data.items())
    if isinstance(data, list):
        return any(_has_nul(v) for v in data)
    return False


def ok(data: BaseModel | dict[str, Any] | list[Any], status: int = 200) -> web.Response:
    """A JSON response from a model or plain data."""
    body = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(data, default=str)
    return web.Response(text=body, status=status, content_type="application/json")


def error_response(status: int, code: str, message: str, details: object | None = None) -> web.Response:
    """The one error shape of the API: {"error": {"code", "message", "details"}}."""
    payload: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        payload["details"] = details
    return web.Response(text=json.dumps({"error": payload}), status=status, content_type="application/json")
