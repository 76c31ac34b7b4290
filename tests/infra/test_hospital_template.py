"""infra/hospital.yaml: lints as a deploy sees it, imports only what the platform exports, and
its onboarding files are what the template takes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

HOSPITAL = ROOT / "infra" / "hospital.yaml"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-1"]


def _template(path: Path) -> dict[str, Any]:
    from local.provision import load_template

    return load_template(path)


def _imports(node: Any) -> set[str]:
    """The export names a template imports (each `Fn::ImportValue` of a `!Sub` string)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if "Fn::ImportValue" in node:
            value = node["Fn::ImportValue"]
            found.add(value["Fn::Sub"] if isinstance(value, dict) else value)
        for item in node.values():
            found |= _imports(item)
    elif isinstance(node, list):
        for item in node:
            found |= _imports(item)
    return found


def test_the_hospital_template_passes_cfn_lint() -> None:
    from cfnlint.api import ManualArgs, lint

    matches = lint(HOSPITAL.read_text(encoding="utf-8"), config=ManualArgs(regions=REGIONS))
    assert [str(m) for m in matches if m.rule.id[0] in "EW"] == []


def test_every_import_is_a_platform_export() -> None:
    platform = _template(ROOT / "infra" / "platform.yaml")
    exported = {
        output["Export"]["Name"]["Fn::Sub"]
        for output in platform["Outputs"].values()
        if "Export" in output
    }
    imported = _imports(_template(HOSPITAL)["Resources"])
    assert imported and imported <= exported, imported - exported


def test_deleting_the_stack_keeps_what_belongs_to_people() -> None:
    resources = _template(HOSPITAL)["Resources"]
    for logical_id in ("FirstAdmin", "FirstAdminInGroup", "SmsNumber"):
        assert resources[logical_id]["DeletionPolicy"] == "Retain", logical_id
    # The tenant record itself is never deleted: the custom resource deactivates it.
    assert resources["Tenant"]["Type"] == "Custom::CareLoopTenant"


@pytest.mark.parametrize("path", sorted((ROOT / "infra" / "hospitals").glob("*.json")), ids=str)
def test_onboarding_files_give_the_templates_parameters(path: Path) -> None:
    import importlib.util

    from chalicelib.schemas import validate

    hospital = json.loads(path.read_text(encoding="utf-8"))
    validate("local-hospital", hospital)
    spec = importlib.util.spec_from_file_location(
        "params", ROOT / "infra" / "hospital_parameters.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parameters = module.stack_parameters(hospital, "prod")
    declared = _template(HOSPITAL)["Parameters"]
    assert set(parameters) <= set(declared)
    required = {name for name, spec in declared.items() if "Default" not in spec}
    assert required <= set(parameters), required - set(parameters)
    for name, value in parameters.items():
        pattern = declared[name].get("AllowedPattern")
        if pattern and declared[name]["Type"] == "String":
            assert re.fullmatch(pattern, value), (name, value)
