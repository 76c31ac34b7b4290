"""Every error code the code can raise is in the API's catalogue (`ERROR_CODES`, which the
OpenAPI document lists), under the status its error type maps to."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import chalicelib
from chalicelib.api.http import CHALICE_ERROR_CODES, ERROR_CODES, STATUS_BY_ERROR, status_for
from chalicelib.domain.errors import DomainError

CHALICELIB = Path(chalicelib.__file__).parent


def error_types() -> dict[str, type[DomainError]]:
    """Every DomainError subclass defined anywhere in chalicelib/, by name."""
    for module in pkgutil.walk_packages([str(CHALICELIB)], "chalicelib."):
        importlib.import_module(module.name)
    found: dict[str, type[DomainError]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending += cls.__subclasses__()
    return found


def raised_codes() -> list[tuple[str, str, str]]:
    """(where, error type, code) for each `SomeError(..., code="...")` in chalicelib/."""
    raised = []
    for path in sorted(CHALICELIB.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            for keyword in node.keywords:
                if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                    where = f"{path.relative_to(CHALICELIB.parent)}:{node.lineno}"
                    raised.append((where, node.func.id, str(keyword.value.value)))
    return raised


def test_every_raised_code_is_catalogued_under_its_status() -> None:
    types = error_types()
    raised = raised_codes()
    assert len(raised) > 10, "the scan finds the codes raised with code=..."
    for where, type_name, code in raised:
        assert type_name in types, f"{where}: {type_name} is not a DomainError"
        status = status_for(types[type_name]("probe"))
        assert code in ERROR_CODES.get(status, ()), f"{where}: {code} ({status}) not catalogued"


def test_every_error_types_own_code_is_catalogued() -> None:
    for cls in error_types().values():
        if cls is DomainError:
            continue
        status = status_for(cls("probe"))
        assert status in STATUS_BY_ERROR.values(), cls
        assert cls("probe").code in ERROR_CODES[status], f"{cls.__name__}: {cls('probe').code}"


def test_chalices_own_answers_are_catalogued() -> None:
    answered = {"unsupported_media_type": 415, "bad_request": 400, "not_found": 404}
    for code, status in answered.items():
        assert code in CHALICE_ERROR_CODES.values()
        assert code in ERROR_CODES[status]
