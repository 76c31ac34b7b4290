"""Builds the OpenAPI 3.1 document from the route declarations and the JSON Schema files.

The schema files stay the one source of truth: each becomes a component, as does each entry of
its `$defs`, and references are rewritten to point at those components, so the result is
self-contained and standard client generators produce every model.
`openapi.yaml` at the repository root is this document, committed (a test keeps them equal).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from chalicelib.api.http import ERROR_CODES, Operation, implied_errors
from chalicelib.schemas import load_schema, schema_names

TITLE = "CareLoop API"
VERSION = "1.0.0"
COMPONENT = "#/components/schemas/"
_FILE_REF = re.compile(r"^(?P<file>[a-z0-9-]+)\.json(?P<pointer>#.*)?$")

STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "Deleted",
    400: "Invalid request: every failing field is listed by its JSON path",
    401: "Missing, expired, malformed or wrongly signed token",
    403: "The token's role may not do this",
    404: "Not found (also another tenant's or another patient's record)",
    409: "Conflict: the version changed, or a unique value is taken",
    413: "Body too large",
    415: "Body is not JSON",
    428: "If-Match header required",
    429: "Too many attempts; retry after Retry-After seconds",
    503: "A service we depend on is unavailable; retry later",
}


def _component_name(file: str, pointer: str) -> str | None:
    """The component a schema file's whole schema or one of its `$defs` becomes: `patient`,
    `patient.guardian`. None for a pointer deeper than that."""
    parts = [p for p in pointer.split("/") if p]
    if not parts:
        return file
    if len(parts) == 2 and parts[0] == "$defs":
        return f"{file}.{parts[1]}"
    return None


def _resolve(file: str, pointer: str) -> Any:
    node: Any = load_schema(file)
    for part in (p for p in pointer.split("/") if p):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _rewrite_refs(node: Any, own_file: str) -> Any:
    """The schema with `$ref`s pointing at components. A reference deeper than a component
    (`patient.json#/$defs/guardian/properties/name`) is replaced by what it points at: client
    generators only follow references to whole components."""
    if isinstance(node, list):
        return [_rewrite_refs(item, own_file) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$id", "$schema", "$defs"):
            continue
        if key == "$ref" and isinstance(value, str):
            file, pointer = _ref_target(value, own_file)
            name = _component_name(file, pointer)
            if name is None:
                out.update(_rewrite_refs(_resolve(file, pointer), file))
                continue
            out[key] = COMPONENT + name
        else:
            out[key] = _rewrite_refs(value, own_file)
    return _constraints_apart(out)


def _constraints_apart(schema: dict[str, Any]) -> dict[str, Any]:
    """An object's "phone or email" (`anyOf` of `required`s), moved into an `allOf`: the same
    schema, but generators then keep the object's model instead of typing it `Any`."""
    for combinator in ("anyOf", "oneOf"):
        branches = schema.get(combinator)
        if "properties" in schema and branches and all(set(b) == {"required"} for b in branches):
            schema.setdefault("allOf", []).append({combinator: schema.pop(combinator)})
    return schema


def _ref_target(ref: str, own_file: str) -> tuple[str, str]:
    if ref.startswith("#"):
        return own_file, ref[1:]
    match = _FILE_REF.match(ref)
    if not match:
        raise ValueError(f"unsupported $ref {ref!r} in {own_file}.json")
    return match["file"], (match["pointer"] or "#")[1:]


def component_schemas() -> dict[str, Any]:
    """Every schema file, and each of its `$defs` hoisted into a component of its own, so that
    standard client generators see every model (they do not look inside `$defs`)."""
    components: dict[str, Any] = {}
    for file in schema_names():
        schema = load_schema(file)
        for name, definition in schema.get("$defs", {}).items():
            components[f"{file}.{name}"] = _rewrite_refs(copy.deepcopy(definition), file)
        whole = _rewrite_refs(copy.deepcopy(schema), file)
        if set(whole) - {"title", "description", "$comment"}:  # not only a bag of $defs
            components[file] = whole
    return components


def _json_content(schema_name: str, with_example: bool) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": {"$ref": COMPONENT + schema_name}}
    examples = load_schema(schema_name).get("examples") if with_example else None
    if examples:
        media["example"] = examples[0]
    return {"application/json": media}


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "x-careloop-roles": sorted(role.value for role in op.roles) if op.roles else [],
    }
    if op.local_only:
        out["x-careloop-local-only"] = True
    out["security"] = [{"bearer": []}] if op.roles is not None else []
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    params += [
        {
            "name": q.name,
            "in": "query",
            "required": q.required,
            "description": q.description,
            "schema": {"type": "string"},
        }
        for q in op.query
    ]
    if op.if_match:
        params.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": op.if_match == "required",
                "description": "The ETag of the version being changed",
                "schema": {"type": "string"},
            }
        )
    if op.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Retries with the same key and body get the first response "
                "(header Idempotent-Replayed: true) and create nothing more",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{8,100}$"},
            }
        )
    if params:
        out["parameters"] = params
    if op.request_schema:
        content = _json_content(op.request_schema, with_example=True)
        body: dict[str, Any] = {"required": True, "content": content}
        if op.method == "PATCH":
            # One media type: generators make a broken union of two identical bodies.
            content["application/merge-patch+json"] = content.pop("application/json")
            body["description"] = "A JSON Merge Patch (sent as application/json, it reads the same)"
        out["requestBody"] = body
    success: dict[str, Any] = {"description": STATUS_TEXT.get(op.status, "OK")}
    if op.response_schema:
        success["content"] = _json_content(op.response_schema, with_example=False)
    if op.response_schema and "version" in load_schema(op.response_schema).get("properties", {}):
        success["headers"] = {
            "ETag": {
                "schema": {"type": "string"},
                "description": "The record's version, for If-Match",
            }
        }
    responses: dict[str, Any] = {str(op.status): success}
    implied = implied_errors(op)
    for status in error_statuses(op):
        codes = {c.code: c.meaning for c in op.codes if c.status == status}
        responses[str(status)] = (
            _with_codes(status, codes) if codes else {"$ref": f"#/components/responses/E{status}"}
        )
    out["responses"] = responses
    # The codes the edge itself answers with here; the domain's are listed per status under
    # components/responses.
    out["x-careloop-error-codes"] = {str(k): sorted(v) for k, v in sorted(implied.items())}
    return out


def _with_codes(status: int, codes: dict[str, str]) -> dict[str, Any]:
    """An error response whose rule-specific codes are named (in the text and for tools)."""
    listed = "; ".join(f"`{code}`: {meaning}" for code, meaning in codes.items())
    return {
        "description": f"{STATUS_TEXT[status]}. Codes besides the usual ones: {listed}",
        "content": {"application/json": {"schema": {"$ref": COMPONENT + "error"}}},
        "x-careloop-error-codes": codes,
    }


def error_statuses(op: Operation) -> list[int]:
    """What the route declares, and what its declaration implies at the edge (a body: 400, 413,
    415; a token: 401, 403, 503; an Idempotency-Key: 409...)."""
    return sorted(set(op.errors) | set(implied_errors(op)))


def _error_response(status: int) -> dict[str, Any]:
    codes = ERROR_CODES[status]
    response: dict[str, Any] = {
        "description": f"{STATUS_TEXT[status]}. error.code is one of: {', '.join(codes)}",
        "content": {"application/json": {"schema": {"$ref": COMPONENT + "error"}}},
        "x-careloop-error-codes": list(codes),
    }
    if status in (429, 503):
        response["headers"] = {
            "Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait"}
        }
    return response


def build_spec(operations: Iterable[Operation]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    statuses: set[int] = set()
    for op in sorted(operations, key=lambda o: (o.path, o.method)):
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
        statuses.update(error_statuses(op))
    error_responses = {f"E{status}": _error_response(status) for status in sorted(statuses)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "Patient-relationship backend. Authenticate with a Cognito ID token "
                "(Authorization: Bearer ...). Errors share one shape: "
                "{error: {code, message, details[{path, message}]}}."
            ),
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "responses": error_responses,
            "schemas": component_schemas(),
        },
    }
