"""The HTTP edge, in one place: token verification, body parsing and validation, and the mapping
of domain errors to HTTP status codes by type.

Route modules declare operations with `ApiBlueprint.route(...)`; the declaration is also what
the OpenAPI document is built from, so a route cannot exist without being described.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Blueprint, Request, Response

from chalicelib.adapters.failures import as_retryable, retried
from chalicelib.audit_trail import Trail, recording
from chalicelib.auth import verify_token
from chalicelib.domain.access import Principal, Role
from chalicelib.domain.audit import BREAK_GLASS_HEADER, Activity, ActorKind
from chalicelib.domain.errors import (
    Conflict,
    DependencyUnavailable,
    DomainError,
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionRequired,
    Problems,
    Retryable,
    TooManyRequests,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
    invalid,
)
from chalicelib.observability import count, logger
from chalicelib.schemas import validate
from chalicelib.settings import get_settings
from chalicelib.tenant_scope import acting_for

JSON_TYPES = ("application/json", "application/merge-patch+json")
Headers = dict[str, str | list[str]]
FieldChecks = Callable[[Principal, Any], list[FieldError]]

# Domain error type → HTTP status. Subclasses inherit their parent's status.
STATUS_BY_ERROR: dict[type[DomainError], int] = {
    ValidationFailed: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    PreconditionRequired: 428,
    TooManyRequests: 429,
    Retryable: 503,  # the one 5xx we answer on purpose: retry after Retry-After seconds
}

# Every error code the API answers with, by status: the OpenAPI document lists them, and
# tests/unit/test_error_codes.py finds every code raised in chalicelib/ here.
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: ("validation_failed", "bad_request", "beyond_booking_horizon"),
    401: ("unauthenticated",),
    403: ("forbidden", "break_glass_required", "departments_only", "loyalty_off"),
    404: ("not_found", "campaign_not_found", "segment_not_found"),
    409: (
        "version_conflict",
        "concurrent_change",
        "conflict",
        "idempotency_key_reused",
        "request_in_progress",
        "mrn_taken",
        "tenant_exists",
        "reply_number_taken",
        "patient_has_appointments",
        "appointment_exists",
        "slot_full",
        "invalid_status_change",
        "appointment_started",
        "appointment_not_started",
        "already_submitted",
        "task_closed",
        "staff_exists",
        "email_taken",
        "own_account",
        "already_linked",
        "not_linked",
        "channel_unavailable",
        "hospital_owned",
        "referrals_disabled",
        "draw_at_passed",
        "draw_not_committed",
        "draw_not_due",
        "draw_not_drawn",
        "insufficient_points",
        "out_of_stock",
        "voucher_not_usable",
    ),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    428: ("precondition_required",),
    429: ("too_many_requests",),
    503: ("dependency_unavailable", "send_in_progress", "retry_later"),
}

# Chalice answers a few requests itself before a view runs (415, 405); their codes in our terms.
CHALICE_ERROR_CODES = {
    "UnsupportedMediaType": "unsupported_media_type",
    "MethodNotAllowedError": "method_not_allowed",
    "BadRequestError": "bad_request",
    "NotFoundError": "not_found",
}


def status_for(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_body(code: str, message: str, details: list[FieldError] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = [{"path": d.path, "message": d.message} for d in details]
    return {"error": error}


def error_response(error: DomainError) -> Response:
    status = status_for(error)
    headers: Headers = {"WWW-Authenticate": 'Bearer realm="careloop"'} if status == 401 else {}
    if isinstance(error, Retryable | TooManyRequests):
        headers["Retry-After"] = str(error.retry_after_seconds)
    return Response(
        body=error_body(error.code, error.message, error.details),
        status_code=status,
        headers=headers,
    )


def normalise_chalice_errors(event: Request, get_response: Callable[[Request], Response]) -> Any:
    """HTTP middleware: give Chalice's own error responses the API's error shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code = CHALICE_ERROR_CODES.get(body["Code"], "internal_error")
        message = body["Message"] if code != "internal_error" else "an internal error occurred"
        response.body = error_body(code, message)
    return response


@dataclass(frozen=True)
class QueryParam:
    name: str
    description: str
    required: bool = False  # documented as such; the service names it in a 400 when absent


# The query of every paged list, and the page it answers.
PAGING = (
    QueryParam("limit", "Page size, 1 to 200 (default 50)"),
    QueryParam("cursor", "The next_cursor of the previous page"),
)


def page_of(items: list[Any], next_cursor: str | None) -> dict[str, object]:
    """A page of a list: its items, and the cursor of the next page unless this is the last."""
    page: dict[str, object] = {"items": items}
    if next_cursor:
        page["next_cursor"] = next_cursor
    return page


@dataclass(frozen=True)
class ErrorCode:
    """A stable error code an operation may answer with, documented under its status."""

    status: int
    code: str
    meaning: str


@dataclass(frozen=True)
class Operation:
    """One route as the API and its OpenAPI document see it."""

    path: str
    method: str
    operation_id: str
    summary: str
    tag: str
    roles: frozenset[Role] | None  # None: no token needed
    request_schema: str | None = None
    response_schema: str | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    codes: tuple[ErrorCode, ...] = ()  # the rule-specific codes among those statuses
    query: tuple[QueryParam, ...] = ()
    if_match: str | None = None  # "required" or "optional"
    idempotent: bool = False  # accepts Idempotency-Key
    local_only: bool = False
    # Checks only the domain can make (a phone in the tenant's country), run as well when the
    # schema refuses the body, so that one 400 names every failing field.
    field_checks: FieldChecks | None = field(default=None, compare=False)


def implied_errors(operation: Operation) -> dict[int, set[str]]:
    """The error codes the edge itself may answer an operation with, from its declaration: what
    the OpenAPI document must list for it whatever the route declares."""
    implied: dict[int, set[str]] = {}

    def add(status: int, *codes: str) -> None:
        implied.setdefault(status, set()).update(codes)

    if operation.roles is not None:
        add(401, "unauthenticated")
        add(403, "forbidden")
        add(503, "dependency_unavailable")  # a throttled table or key service, after retries
    if operation.request_schema:
        add(400, "validation_failed")
        add(413, "payload_too_large")
        add(415, "unsupported_media_type")
    if operation.idempotent:
        add(400, "validation_failed")  # a malformed Idempotency-Key
        add(409, "idempotency_key_reused", "request_in_progress")
    if operation.if_match:
        add(409, "version_conflict")
    if operation.if_match == "required":
        add(428, "precondition_required")
    return implied


@dataclass
class ApiRequest:
    """What a view gets: the verified principal, the validated body and the raw request."""

    verified: Principal | None  # None on the few routes that need no token
    body: Any
    raw: Request

    @property
    def principal(self) -> Principal:
        if self.verified is None:
            raise RuntimeError("this route takes no token, so it has no principal")
        return self.verified

    def header(self, name: str) -> str | None:
        value: str | None = self.raw.headers.get(name)
        return value

    def query(self, name: str) -> str | None:
        params = self.raw.query_params
        value: str | None = params.get(name) if params else None
        return value


@dataclass
class ApiResponse:
    body: Any
    status: int = 200
    headers: Headers = field(default_factory=dict)


OPERATIONS: list[Operation] = []


def _parse_body(
    request: Request, schema: str, more_checks: Callable[[Any], list[FieldError]] | None = None
) -> Any:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise UnsupportedMediaType(f"send the body as {' or '.join(JSON_TYPES)}")
    raw = request.raw_body or b""
    if len(raw) > get_settings().max_body_bytes:
        raise PayloadTooLarge(f"the body is larger than {get_settings().max_body_bytes} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("$", "the body is not well-formed JSON") from exc
    except RecursionError as exc:
        raise invalid("$", "the body is nested too deeply") from exc
    _check_plain(body, "$", 0)
    try:
        validate(schema, body)
    except ValidationFailed as failure:
        if more_checks is None:
            raise
        problems = Problems()
        problems.details = list(failure.details)
        with suppress(DomainError):  # e.g. a throttled read: the schema's 400 still stands
            named = {detail.path for detail in failure.details}
            problems.details += [d for d in more_checks(body) if d.path not in named]
        problems.raise_if_any()
    return body


MAX_DEPTH = 12  # our deepest body is 4 levels; anything far deeper is not a real request


def _check_plain(node: Any, path: str, depth: int) -> None:
    """Refuse what no schema would accept but could break code before validation does: absurd
    nesting (recursion in validators) and strings that are not valid Unicode (lone surrogates)."""
    if depth > MAX_DEPTH:
        raise invalid(path, "is nested too deeply")
    if isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise invalid(path, "is not valid Unicode text") from exc
    elif isinstance(node, dict):
        for key, value in node.items():
            _check_plain(key, path, depth + 1)
            _check_plain(value, f"{path}.{key}", depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_plain(value, f"{path}[{index}]", depth + 1)


def _to_response(result: Any, operation: Operation) -> Response:
    if result is None:
        return Response(body="", status_code=204)
    if not isinstance(result, ApiResponse):
        result = ApiResponse(result, operation.status)
    headers = dict(result.headers)
    if isinstance(result.body, dict) and "version" in result.body:
        # Every versioned record comes with its version as ETag (for If-Match), in one place.
        headers["ETag"] = f'"{result.body["version"]}"'
    return Response(body=result.body, status_code=result.status, headers=headers)


def _authenticated(request: Request, tenant_scope: ExitStack) -> Principal:
    """The verified caller, unless their account was disabled after the token was issued. From
    here on the request's data access is fenced to the caller's tenant (chalicelib/tenant_scope);
    an operator's or an unlinked account's route enters the tenant it acts for itself."""
    from chalicelib.services.registry import services

    principal = verify_token(request.headers.get("authorization"))
    tenant_scope.enter_context(acting_for(principal.tenant_id))
    services().staff.check_not_revoked(principal)
    return principal


def _check_query(request: Request, operation: Operation) -> None:
    """Only the route's own query parameters: an unknown one is refused, not ignored (a
    `?phone=` look-up would otherwise list every patient; look-ups take a body)."""
    declared = {parameter.name for parameter in operation.query}
    unknown = sorted(set(request.query_params or {}) - declared)
    if unknown:
        raise invalid(unknown[0], "is not a query parameter of this route")


IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{8,100}")


def _once(
    operation: Operation,
    principal: Principal,
    key: str,
    request: Request,
    run: Callable[[], Response],
) -> Response:
    """Run a creating request at most once per Idempotency-Key; replay its first response."""
    from chalicelib.store.idempotency import IdempotencyRepository

    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise invalid("Idempotency-Key", "use 8 to 100 letters, digits or . _ : -")
    owner = f"T#{principal.tenant_id}" if principal.tenant_id else "PLATFORM"
    scope = f"{owner}#U#{principal.subject}#{operation.operation_id}#{key}"
    target = json.dumps(request.uri_params or {}, sort_keys=True).encode()
    body = request.raw_body or b""
    body = body.encode() if isinstance(body, str) else body
    fingerprint = hashlib.sha256(target + b"\n" + body).hexdigest()
    records = IdempotencyRepository()
    stored = records.claim(scope, fingerprint)
    if stored is not None:
        if stored.fingerprint != fingerprint:
            raise Conflict(
                "this Idempotency-Key was already used for a different request",
                code="idempotency_key_reused",
            )
        if not stored.complete or stored.status is None:
            raise Conflict(
                "a request with this Idempotency-Key is still being processed",
                code="request_in_progress",
            )
        replay = dict(stored.body["headers"])
        replay["Idempotent-Replayed"] = "true"
        return Response(body=stored.body["body"], status_code=stored.status, headers=replay)
    try:
        response = run()
        headers = {k: v for k, v in response.headers.items() if isinstance(v, str)}
        saved = {"body": response.body, "headers": headers}
        retried(lambda: records.complete(scope, response.status_code, saved))
    except Exception:
        # Whatever failed, the key is free again: a change that did commit is found by the
        # retry itself (a booking's id derives from the key), so retrying is always safe.
        with suppress(Exception):  # else the claim lapses after LOCK_SECONDS
            retried(lambda: records.release(scope))
        raise
    return response


# Path parameters that name a record, and the record type the audit trail calls them.
RECORD_PARAMS = {
    "patient_id": "patient",
    "appointment_id": "appointment",
    "response_id": "questionnaire_response",
    "task_id": "task",
    "journey_id": "care",
}


def _audited(
    operation: Operation,
    request: Request,
    principal: Principal | None,
    trail: Trail,
    response: Response,
    path_params: dict[str, str],
) -> Response:
    """Write the request's audit entry when it touched patient data (or named a record), before
    the answer leaves. A read whose entry cannot be written is not answered (503); a change
    that committed is answered, and the missing entry is logged and counted for an alarm."""
    from chalicelib.services.registry import services
    from chalicelib.tenant_scope import acting_tenant

    tenant_id = acting_tenant()
    named = [(RECORD_PARAMS[k], v) for k, v in path_params.items() if k in RECORD_PARAMS]
    if principal is None or tenant_id is None or not (trail.records or trail.patients or named):
        return response
    patients = set(trail.patients)
    if "patient_id" in path_params and is_plausible_id(path_params["patient_id"]):
        patients.add(path_params["patient_id"])  # a refused read of a record is audited too
    records = tuple(
        {"type": kind, "id": record_id}
        for kind, record_id in [*named, *trail.records]
        if is_plausible_id(record_id)
    )
    body = request.json_body if operation.request_schema and response.status_code < 400 else None
    code = response.body.get("error", {}).get("code") if isinstance(response.body, dict) else None
    identity = (request.context or {}).get("identity") or {}
    activity = Activity(
        actor={"kind": ActorKind.PERSON, "subject": principal.subject, "role": principal.role},
        action=operation.operation_id,
        subjects=(),
        records=records,  # type: ignore[arg-type]
        fields=tuple(sorted(body)) if isinstance(body, dict) else (),
        outcome=f"{response.status_code} {code}" if code else str(response.status_code),
        source={
            "ip": str(identity.get("sourceIp") or ""),
            "user_agent": str(request.headers.get("user-agent") or "")[:200],
            "request_id": str((request.context or {}).get("requestId") or ""),
        },
        break_glass=trail.break_glass,
        reason=trail.reason,
    )
    try:
        services().audit.record(tenant_id, activity, patients, found=trail.patients - trail.erased)
    except Exception as failure:
        logger.exception("audit entry not written", extra={"operation": operation.operation_id})
        count("AuditWriteFailed")
        if operation.method == "GET":
            error = failure if isinstance(failure, DomainError) else as_retryable(failure)
            return error_response(error or DependencyUnavailable("the audit trail is unavailable"))
    return response


def is_plausible_id(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", value))


class ApiBlueprint:
    """A Chalice Blueprint whose routes go through the edge above."""

    def __init__(self, import_name: str, tag: str) -> None:
        self.blueprint = Blueprint(import_name)
        self._tag = tag

    def route(
        self,
        path: str,
        method: str,
        *,
        summary: str,
        roles: frozenset[Role] | set[Role] | None,
        request_schema: str | None = None,
        response_schema: str | None = None,
        status: int = 200,
        errors: tuple[int, ...] = (),
        codes: tuple[ErrorCode, ...] = (),
        query: tuple[QueryParam, ...] = (),
        if_match: str | None = None,
        idempotent: bool = False,
        local_only: bool = False,
        field_checks: FieldChecks | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(view: Callable[..., Any]) -> Callable[..., Any]:
            operation = Operation(
                path=path,
                method=method,
                operation_id=view.__name__,
                summary=summary,
                tag=self._tag,
                roles=frozenset(roles) if roles is not None else None,
                request_schema=request_schema,
                response_schema=response_schema,
                status=status,
                errors=errors,
                codes=codes,
                query=query,
                if_match=if_match,
                idempotent=idempotent,
                local_only=local_only,
                field_checks=field_checks,
            )
            OPERATIONS.append(operation)
            blueprint = self.blueprint

            def _checks_for(
                principal: Principal | None,
            ) -> Callable[[Any], list[FieldError]] | None:
                if field_checks is None or principal is None:
                    return None
                return lambda body: field_checks(principal, body)

            def handle(**path_params: str) -> Response:
                request: Request = blueprint.current_request
                caller: list[Principal] = []
                reason = request.headers.get(BREAK_GLASS_HEADER.lower())
                with ExitStack() as tenant_scope, recording(reason) as trail:
                    response = _handle(tenant_scope, caller, **path_params)
                    principal = caller[0] if caller else None
                    return _audited(operation, request, principal, trail, response, path_params)

            def _handle(
                tenant_scope: ExitStack, caller: list[Principal], **path_params: str
            ) -> Response:
                request: Request = blueprint.current_request
                try:
                    principal = None
                    if operation.roles is not None:
                        principal = _authenticated(request, tenant_scope)
                        caller.append(principal)
                        if principal.role not in operation.roles:
                            raise Forbidden(f"role {principal.role} may not {summary.lower()}")
                    _check_query(request, operation)
                    body = (
                        _parse_body(request, request_schema, _checks_for(principal))
                        if request_schema
                        else None
                    )
                    api_request = ApiRequest(principal, body, request)
                    key = request.headers.get("idempotency-key") if idempotent else None
                    if key is not None and principal is not None:
                        return _once(
                            operation,
                            principal,
                            key,
                            request,
                            lambda: _to_response(view(api_request, **path_params), operation),
                        )
                    result = view(api_request, **path_params)
                except Exception as failure:
                    error = failure if isinstance(failure, DomainError) else as_retryable(failure)
                    if error is None:
                        raise
                    logger.info(
                        "request refused",
                        extra={
                            "operation": operation.operation_id,
                            "error_code": error.code,
                            "status": status_for(error),
                        },
                    )
                    count("RequestRefused")
                    return error_response(error)
                return _to_response(result, operation)

            handle.__name__ = view.__name__
            handle.__doc__ = view.__doc__
            blueprint.route(path, methods=[method], content_types=list(JSON_TYPES))(handle)
            return view

        return register
