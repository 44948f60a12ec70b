"""Capture, review, export and media views only parse, call a handler and serialize."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import pytest

from telehealth.http import api_capture, api_export, api_media, api_review

# Names a view must not touch: opening database work or writing audit rows is a handler's job.
FORBIDDEN = {"SESSIONMAKER", "audit", "UnitOfWork", "record_refusal"}


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
    assert not (FORBIDDEN - {"SESSIONMAKER"}) & imported
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef)):
        calls = [c for c in ast.walk(fn) if isinstance(c, ast.Call)]
        # A view may hand the sessionmaker to a handler, never call it itself.
        opened = [c for c in calls if isinstance(c.func, ast.Subscript) and "SESSIONMAKER" in _names(c.func)]
        assert not opened, f"{module.__name__}.{fn.name} opens a database session"
        assert "audit" not in _names(fn), f"{module.__name__}.{fn.name} writes audit rows"


@pytest.mark.parametrize("view", [api_review.timeline, api_review.montage], ids=lambda f: f.__name__)
def test_the_timeline_and_montage_views_only_call_their_handler(view: object) -> None:
    tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(view)))
    names = _names(tree)
    assert "review_handler" in names and not {"audit", "begin"} & names
