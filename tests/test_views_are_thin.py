"""Capture, review, export and media views only parse, call a handler and serialize."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import pytest

from telehealth.http import api_capture, api_export, api_media, api_review

# Names a view must not touch: database access and audit rows are a handler's job.
FORBIDDEN = {"SESSIONMAKER", "ENGINE", "audit", "UnitOfWork", "record_refusal"}


def _names(node: ast.AST) -> set[str]:
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
    return found


@pytest.mark.parametrize("module", [api_capture, api_export, api_media], ids=lambda m: m.__name__)
def test_a_capture_or_export_view_cannot_open_a_session_or_write_audit_rows(module: ModuleType) -> None:
    tree = ast.parse(inspect.getsource(module))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not FORBIDDEN & (imported | _names(tree)), module.__name__
    assert not any(m and m.startswith("sqlalchemy") for m in modules)


@pytest.mark.parametrize("view", [api_review.timeline, api_review.montage], ids=lambda f: f.__name__)
def test_the_timeline_and_montage_views_only_call_their_handler(view: object) -> None:
    tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(view)))
    names = _names(tree)
    assert "REVIEW" in names and not FORBIDDEN & names
