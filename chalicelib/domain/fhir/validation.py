"""A resource checked against the FHIR models of `fhir.resources` (FHIR_VERSION), every failure
named by its JSON path (`$.entry[3].resource.birthDate`).

The models (and pydantic) are imported on the first check, never with this module: they cost a
Lambda's cold start about half a second, and most requests never need them. The models check
structure, cardinality and primitive formats; code values (a gender, a status) are the mappers'
own to check.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import FieldError, ValidationFailed
from chalicelib.domain.fhir.common import FHIR_VERSION

if TYPE_CHECKING:
    from fhir_core.fhirabstractmodel import FHIRAbstractModel

# The models check an element's required primitives (a status) only once its other fields pass:
# up to this many rounds take the failing fields out and check again, so that one answer names
# every failure (and the resource's own required primitives are looked up besides).
MAX_ROUNDS = 4

# How pydantic names a failure, said the way our other 400s say it.
_MESSAGES = {
    "missing": "is required",
    "model_field_validation.missing": "is required",
    "extra_forbidden": f"is not an element of this resource in FHIR {FHIR_VERSION}",
}


@cache
def _model_class(resource_type: str) -> type[FHIRAbstractModel] | None:
    """The model of a resource type, None if FHIR has no such resource (a data type such as
    HumanName is not a resource either)."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource

    try:
        model = get_fhir_model_class(resource_type)
    except ValueError:
        return None
    return model if issubclass(model, Resource) else None


def _unknown_resource_types(node: Any, path: str) -> Iterator[FieldError]:
    """Resources nested anywhere (Bundle entries, contained) of a type FHIR does not have: the
    models fail on those with a KeyError rather than a validation error, so they are found
    first."""
    if isinstance(node, Mapping):
        kind = node.get("resourceType")
        if kind is not None and (not isinstance(kind, str) or _model_class(kind) is None):
            yield FieldError(f"{path}.resourceType", f"{kind!r} is not a FHIR resource type")
        for key, value in node.items():
            yield from _unknown_resource_types(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _unknown_resource_types(value, f"{path}[{index}]")


def _json_path(root: str, location: tuple[int | str, ...]) -> str:
    path = root
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ".resourceType" if part == "resource_type" else f".{part}"
    return path


def _message(error: Mapping[str, Any]) -> str:
    known = _MESSAGES.get(str(error["type"]))
    if known is not None:
        return known
    return str(error["msg"]).removeprefix("Value error, ")


def _shape_problems(resource: object, path: str) -> list[FieldError]:
    """What keeps the models from reading `resource` at all: not an object, no or an unknown
    resource type, here or in a resource nested in it."""
    if not isinstance(resource, Mapping):
        return [FieldError(path, "must be a JSON object (a FHIR resource)")]
    if not isinstance(resource.get("resourceType"), str):
        return [FieldError(f"{path}.resourceType", "is required: the type of the resource")]
    return list(_unknown_resource_types(resource, path))


def _without(node: Any, location: tuple[int | str, ...]) -> bool:
    """Takes out the member of an object that holds the failure at `location` (a list item's
    failure takes out its list). False if there is none to take."""
    members = [index for index, part in enumerate(location) if isinstance(part, str)]
    if not members:
        return False
    last = members[-1]
    holder = node
    for part in location[:last]:
        try:
            holder = holder[part]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(holder, dict) and location[last] in holder:
        del holder[location[last]]
        return True
    return False


def _model_problems(
    model: type[FHIRAbstractModel], resource: Mapping[str, Any], path: str
) -> list[FieldError]:
    """The models' failures, in rounds (see MAX_ROUNDS); the first path of each is kept."""
    from pydantic import ValidationError

    found: dict[str, FieldError] = {}
    candidate: Any = resource  # copied before anything is taken out of it
    for round_number in range(MAX_ROUNDS):
        try:
            model.model_validate(candidate)
        except ValidationError as failure:
            errors = failure.errors()
        else:
            break
        fresh = [e for e in errors if _json_path(path, e["loc"]) not in found]
        for error in fresh:
            where = _json_path(path, error["loc"])
            found[where] = FieldError(where, _message(error))
        if round_number == 0:
            candidate = copy.deepcopy(dict(resource))
        taken_out = [_without(candidate, error["loc"]) for error in errors]
        if not fresh or not any(taken_out):
            break
    if found:  # a missing element beside them, which the rounds may not have reached
        for missing in _missing_required(model, resource, path):
            found.setdefault(missing.path, missing)
    return list(found.values())


def _missing_required(
    model: type[FHIRAbstractModel], resource: Mapping[str, Any], path: str
) -> list[FieldError]:
    """The resource's required primitive elements (a status, a type) that are absent."""
    missing = []
    for name, _extension in model.model_construct().get_required_fields():
        key = model.model_fields[name].alias or name
        if key not in resource and f"_{key}" not in resource:
            missing.append(FieldError(f"{path}.{key}", "is required"))
    return missing


def resource_problems(resource: object, path: str = "$") -> list[FieldError]:
    """Every way `resource` is not a valid FHIR resource, each named by path under `path`."""
    shape = _shape_problems(resource, path)
    if shape or not isinstance(resource, Mapping):
        return shape
    kind = resource["resourceType"]
    model = _model_class(kind)
    if model is None:  # found as a shape problem already; said again for the type checker
        return [FieldError(f"{path}.resourceType", f"{kind!r} is not a FHIR resource type")]
    try:
        return _model_problems(model, resource, path)
    except (KeyError, TypeError) as failure:  # the models' own checks on malformed input
        return [FieldError(path, f"is not a valid FHIR {kind}: {failure}")]


def validate_resource(resource: object) -> None:
    """Raises ValidationFailed naming every failing field if `resource` is not a valid FHIR
    resource of its `resourceType`."""
    problems = resource_problems(resource)
    if problems:
        kind = resource.get("resourceType") if isinstance(resource, Mapping) else None
        summary = "; ".join(f"{d.path}: {d.message}" for d in problems[:5])
        raise ValidationFailed(
            f"not a valid FHIR {kind or 'resource'}: {summary}", details=problems
        )
