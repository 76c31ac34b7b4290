"""The map in DESIGN.md, enforced: who may import what, and where."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHALICELIB = ROOT / "chalicelib"
AWS_MODULES = {"boto3", "botocore", "pynamodb", "chalice", "moto", "aws_lambda_powertools"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def top(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("path", files(CHALICELIB / "domain"), ids=lambda p: p.name)
def test_domain_imports_nothing_of_aws_or_outer_layers(path: Path) -> None:
    for module in imports(path):
        assert top(module) not in AWS_MODULES, module
        if module.startswith("chalicelib."):
            assert module.startswith("chalicelib.domain"), module


def test_pynamodb_only_in_store() -> None:
    for path in files(CHALICELIB):
        if "pynamodb" in {top(m) for m in imports(path)}:
            assert path.parent.name == "store", path


def test_shipped_code_never_imports_the_local_runtime_or_moto() -> None:
    for path in [*files(CHALICELIB), ROOT / "app.py"]:
        assert not {top(m) for m in imports(path)} & {"local", "moto", "tests"}, path


def test_environment_is_read_only_in_settings() -> None:
    for path in files(CHALICELIB):
        if path.name != "settings.py":
            assert "os.environ" not in path.read_text(encoding="utf-8"), path


def test_no_scan_in_shipped_code() -> None:
    for path in [*files(CHALICELIB), ROOT / "app.py"]:
        text = path.read_text(encoding="utf-8")
        assert ".scan(" not in text and '"Scan"' not in text, path


def test_state_machines_are_not_inlined() -> None:
    for path in [*files(CHALICELIB), ROOT / "app.py"]:
        assert '"StartAt"' not in path.read_text(encoding="utf-8"), path
    template = (ROOT / "infra" / "platform.yaml").read_text(encoding="utf-8")
    assert re.search(r"^\s*(Definition|DefinitionString)\s*:", template, re.M) is None
    assert "StartAt" not in template
    assert template.count("DefinitionUri: ../statemachines/") == len(
        list((ROOT / "statemachines").glob("*.asl.json"))
    )
