"""No patient's name, phone or email appears in what the service logs, whatever happens."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any, cast

import pytest

from tests.conftest import Api, TenantCtx, patient_body

NAME, FAMILY = "Xiuying", "Quartermaine"
PHONE_NATIONAL, PHONE_E164 = "13812345678", "+8613812345678"
EMAIL = "xiuying.quartermaine@example.org"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    from chalicelib.observability import logger

    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    root = logging.getLogger()
    app_logger = logging.getLogger(logger.service)
    chalice_logger = logging.getLogger("careloop")
    saved = (root.level, app_logger.level)
    root.setLevel(logging.INFO)
    logger.setLevel("DEBUG")  # stricter than deployed: nothing at any level may leak
    for target in (root, app_logger, chalice_logger):
        target.addHandler(handler)
    # Powertools writes to its own stream handler; point it at the sink too.
    powertools_handler = cast(logging.StreamHandler[Any], logger.registered_handler)
    previous_stream = powertools_handler.setStream(sink)
    try:
        yield sink
    finally:
        for target in (root, app_logger, chalice_logger):
            target.removeHandler(handler)
        powertools_handler.setStream(previous_stream)
        root.setLevel(saved[0])
        logger.setLevel("INFO")


def test_no_phi_in_logs(
    runtime: Any, api: Api, tenant: TenantCtx, captured_logs: io.StringIO
) -> None:
    body = patient_body(name={"given": NAME, "family": FAMILY}, phone=PHONE_NATIONAL, email=EMAIL)
    created = api.call("POST", "/patients", tenant.staff, body)
    assert created.status_code == 201
    patient_id = created.json_body["id"]
    path = f"/patients/{patient_id}"
    someone_else = runtime.token("patient", tenant.id, "p-someone-else")
    steps: list[tuple[int, str, str, str, Any, dict[str, str]]] = [
        (200, "GET", path, tenant.staff, None, {}),
        (200, "POST", "/patients/search", tenant.staff, {"phone": PHONE_NATIONAL}, {}),
        (200, "PATCH", path, tenant.staff, {"email": EMAIL}, {"If-Match": '"1"'}),
        (409, "PATCH", path, tenant.staff, {"email": EMAIL}, {"If-Match": '"1"'}),
        # A 400 echoes the bad value to the caller, never to the log.
        (400, "POST", "/patients", tenant.staff, {**body, "email": f"not-an-email-{NAME}"}, {}),
        (400, "POST", "/patients", tenant.staff, {**body, "phone": f"{PHONE_NATIONAL}999"}, {}),
        (400, "POST", "/patients", tenant.staff, f'{{"name": "{FAMILY}'.encode(), {}),
        (404, "GET", path, someone_else, None, {}),
        (200, "GET", f"/fhir/Patient/{patient_id}", tenant.staff, None, {}),
        (200, "GET", f"{path}/export", tenant.staff, None, {}),
        (400, "GET", f"/fhir/Appointment?name={FAMILY}", tenant.staff, None, {}),
        (204, "DELETE", path, tenant.staff, None, {}),
    ]
    for status, method, url, token, sent, headers in steps:
        assert api.call(method, url, token, sent, headers).status_code == status, (method, url)

    logged = captured_logs.getvalue()
    assert "request refused" in logged, "the capture works: refusals are logged"
    for secret in (NAME, FAMILY, PHONE_NATIONAL, PHONE_E164, EMAIL, "xiuying"):
        assert secret not in logged
