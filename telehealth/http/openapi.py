"""OpenAPI 3.1 document built from the routes actually registered, and their declared models."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from telehealth.http.access import access_of
from telehealth.http.schemas import ErrorOut
from telehealth.websecurity import SESSION_COOKIE

F = TypeVar("F")


@dataclass(frozen=True)
class Doc:
    """What a handler documents about itself."""

    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    content_type: str = "application/json"


def doc(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    content_type: str = "application/json",
) -> Callable[[F], F]:
    """Attach OpenAPI metadata to a handler."""

    def mark(handler: F) -> F:
        handler.__doc_api__ = Doc(summary, body, query, response, status, content_type)  # type: ignore[attr-defined]
        return handler

    return mark


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def api_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path, handler) of every /api route registered on the app."""
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if not path or not path.startswith("/api/") or route.method == "HEAD":
            continue
        out.append((route.method, path, route.handler))
    return out


def build_openapi(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document for every /api route on the app."""
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    error_ref = _schema(ErrorOut, components)
    for method, path, handler in api_routes(app):
        d: Doc | None = getattr(handler, "__doc_api__", None)
        rule = access_of(handler)
        op: dict[str, Any] = {
            "summary": d.summary if d else path,
            "x-roles": sorted(rule.roles) if rule else [],
            "parameters": [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in re.findall(r"{(\w+)", path)
            ],
            "responses": {
                "default": {
                    "description": "error",
                    "content": {"application/json": {"schema": error_ref}},
                }
            },
        }
        if d and d.query:
            for name, field in d.query.model_fields.items():
                op["parameters"].append({"name": name, "in": "query", "required": field.is_required(), "schema": {}})
        if d and d.body:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(d.body, components)}},
            }
        ok_body: dict[str, Any] = {"description": "success"}
        if d and d.response:
            ok_body["content"] = {d.content_type: {"schema": _schema(d.response, components)}}
        op["responses"][str(d.status if d else 200)] = ok_body
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Telehealth facial capture API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "patient": {"type": "http", "scheme": "bearer"},
            },
        },
    }
