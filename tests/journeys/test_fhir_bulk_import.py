"""A hospital's history imported in bulk (`POST /fhir/imports`): NDJSON files the hospital put in
its own folder of the import bucket are read page by page by the fhir-import state machine,
with progress, a report of the refused lines (file, line, paths and messages: no values), the
same import again changing nothing, a page retried or replayed counting once, and lines cut by a
page's range read whole by the next."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.fhir.common import tenant_mrn_system
from tests.conftest import Api, ClinicCtx, error_paths, payload
from tests.journeys.support import iso, unique_phone

pytestmark = pytest.mark.journey
APPOINTMENT_SYSTEM = "https://renji.example.org/fhir/appointment-id"
BAD_BIRTH_DATE = "1961-13-45"
UNKNOWN_MRN = "MRN-NOBODY"


@pytest.fixture
def clinic(make_clinic: Any) -> ClinicCtx:
    made: ClinicCtx = make_clinic()
    return made


def upload(runtime: Any, tenant_id: str, path: str, lines: list[str]) -> None:
    from chalicelib.settings import get_settings

    runtime.client("s3").put_object(
        Bucket=get_settings().import_bucket,
        Key=f"{tenant_id}/{path}",
        Body=("\n".join(lines) + "\n").encode(),
    )


def patient_line(tenant_id: str, mrn: str, **extra: Any) -> str:
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": tenant_mrn_system(tenant_id), "value": mrn}],
        "name": [{"family": "Zhang", "given": [f"Wei{mrn[-3:]}"]}],
        "telecom": [{"system": "phone", "value": f"+86{unique_phone()}", "use": "mobile"}],
        "gender": "female",
        "birthDate": "1961-04-12",
        **extra,
    }
    return json.dumps(resource, ensure_ascii=False)


def visit_line(tenant_id: str, number: str, mrn: str, days_ago: int) -> str:
    from chalicelib import clock

    start = clock.now().replace(hour=2, minute=0, second=0, microsecond=0) - timedelta(
        days=days_ago
    )
    resource = {
        "resourceType": "Appointment",
        "identifier": [{"system": APPOINTMENT_SYSTEM, "value": number}],
        "status": "fulfilled",
        "start": iso(start),
        "end": iso(start + timedelta(minutes=30)),
        "serviceType": [{"text": "皮肤科"}],
        "participant": [
            {
                "actor": {"reference": f"Patient?identifier={tenant_mrn_system(tenant_id)}|{mrn}"},
                "status": "accepted",
            }
        ],
    }
    return json.dumps(resource, ensure_ascii=False)


def history(tenant_id: str, prefix: str, patients: int = 12) -> tuple[list[str], list[str]]:
    """A patients file (`patients` good ones, a blank line, a line that is not JSON, a bad
    birth date) and a visits file (one per patient, and one naming an unknown MRN)."""
    mrns = [f"{prefix}-{n:03d}" for n in range(patients)]
    people = [patient_line(tenant_id, mrn) for mrn in mrns]
    people[3:3] = ['{"resourceType": "Patient", "name": [']  # line 4
    people[6:6] = [patient_line(tenant_id, f"{prefix}-bad", birthDate=BAD_BIRTH_DATE)]  # 7
    people[9:9] = [""]  # line 10
    visits = [visit_line(tenant_id, f"{prefix}-V{n}", mrn, 30 + n) for n, mrn in enumerate(mrns)]
    visits[2:2] = [visit_line(tenant_id, f"{prefix}-V-lost", UNKNOWN_MRN, 20)]  # line 3
    return people, visits


def start_import(api: Api, clinic: ClinicCtx, files: list[str]) -> dict[str, Any]:
    response = api.call("POST", "/fhir/imports", clinic.tenant.admin, {"files": files})
    assert response.status_code == 202, response.body
    job: dict[str, Any] = payload(response)
    assert response.headers["Location"] == f"/fhir/imports/{job['id']}"
    assert job["status"] == "running" and [f["path"] for f in job["files"]] == files
    return job


def finished(runtime: Any, api: Api, clinic: ClinicCtx, job: dict[str, Any]) -> dict[str, Any]:
    runtime.settle()
    response = api.call("GET", f"/fhir/imports/{job['id']}", clinic.tenant.admin)
    assert response.status_code == 200, response.body
    found: dict[str, Any] = payload(response)
    return found


def rejections(api: Api, clinic: ClinicCtx, job: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = payload(
            api.call("GET", f"/fhir/imports/{job['id']}/rejections{query}", clinic.tenant.admin)
        )
        found += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return found


def counts(entry: dict[str, Any]) -> tuple[int, ...]:
    return tuple(entry[k] for k in ("lines", "created", "updated", "rejected", "skipped"))


def test_a_history_imports_with_progress_and_a_report_and_again_changes_nothing(
    runtime: Any, api: Api, clinic: ClinicCtx
) -> None:
    tenant_id = clinic.tenant.id
    people, visits = history(tenant_id, "MRN-H")
    upload(runtime, tenant_id, "history/patients.ndjson", people)
    upload(runtime, tenant_id, "history/appointments.ndjson", visits)
    files = ["history/patients.ndjson", "history/appointments.ndjson"]

    job = finished(runtime, api, clinic, start_import(api, clinic, files))
    assert job["status"] == "completed", job
    patients_file, visits_file = job["files"]
    assert counts(patients_file) == (15, 12, 0, 2, 1)
    assert counts(visits_file) == (13, 12, 0, 1, 0)
    assert patients_file["bytes_read"] == patients_file["size"] > 0
    assert job["progress"]["bytes_read"] == job["progress"]["bytes"]
    assert counts(job["progress"]) == (28, 24, 0, 3, 1)

    refused = rejections(api, clinic, job)
    assert [(r["file"], r["line"]) for r in refused] == [
        ("history/patients.ndjson", 4),
        ("history/patients.ndjson", 7),
        ("history/appointments.ndjson", 3),
    ]
    assert [e["path"] for e in refused[0]["errors"]] == ["line[4]"]
    assert "line[7].birthDate" in [e["path"] for e in refused[1]["errors"]]
    assert [e["path"] for e in refused[2]["errors"]] == ["line[3].resource.participant"]
    report = json.dumps(refused, ensure_ascii=False)
    for value in (BAD_BIRTH_DATE, UNKNOWN_MRN, "MRN-H-bad", "Zhang", "+86"):
        assert value not in report, value

    # The patients and their visits exist, as the hospital sent them.
    from chalicelib.domain.hospital_appointments import hospital_appointment_id
    from chalicelib.store.patients import PatientRepository

    patient = PatientRepository().find_by_mrn(tenant_id, "MRN-H-005")
    assert patient is not None and patient["birth_date"] == "1961-04-12"
    assert PatientRepository().find_by_mrn(tenant_id, "MRN-H-bad") is None
    visit_id = hospital_appointment_id(tenant_id, APPOINTMENT_SYSTEM, "MRN-H-V5")
    visit = payload(api.call("GET", f"/appointments/{visit_id}", clinic.tenant.staff))
    assert (visit["patient_id"], visit["status"]) == (patient["id"], "fulfilled")
    assert visit["department"] == "dermatology"

    # The same files again: nothing created, the same lines refused.
    again = finished(runtime, api, clinic, start_import(api, clinic, files))
    assert again["status"] == "completed" and again["id"] != job["id"]
    assert counts(again["progress"]) == (28, 0, 24, 3, 1)
    assert rejections(api, clinic, again) == refused


def test_files_are_named_in_the_callers_own_folder_only(
    runtime: Any, api: Api, clinic: ClinicCtx, make_clinic: Any
) -> None:
    other = make_clinic()
    upload(runtime, other.tenant.id, "theirs/patients.ndjson", ["{}"])
    upload(runtime, clinic.tenant.id, "ours/patients.ndjson", ["{}"])
    admin = clinic.tenant.admin
    body = {"files": ["ours/patients.ndjson", f"../{other.tenant.id}/theirs/patients.ndjson"]}
    response = api.call("POST", "/fhir/imports", admin, body)
    assert response.status_code == 400, response.body
    assert error_paths(response) == ["$.files[1]"]
    for wrong in ("/etc/passwd", "s3://careloop-local-imports/x.ndjson", "ours/./x.ndjson"):
        response = api.call("POST", "/fhir/imports", admin, {"files": [wrong]})
        assert response.status_code == 400, response.body
        assert error_paths(response) == ["$.files[0]"]
    # Another hospital's file is not in this one's folder.
    response = api.call("POST", "/fhir/imports", admin, {"files": ["theirs/patients.ndjson"]})
    assert response.status_code == 400, response.body
    assert error_paths(response) == ["$.files[0]"]
    # Another hospital's import is not found; staff cannot read imports.
    upload(runtime, clinic.tenant.id, "a.ndjson", [""])
    job = start_import(api, clinic, ["a.ndjson"])
    runtime.settle()
    for path in (f"/fhir/imports/{job['id']}", f"/fhir/imports/{job['id']}/rejections"):
        assert api.call("GET", path, other.tenant.admin).status_code == 404
        assert api.call("GET", path, clinic.tenant.staff).status_code == 403


def test_a_page_retried_or_replayed_counts_once(
    runtime: Any, api: Api, clinic: ClinicCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.domain.errors import DependencyUnavailable
    from chalicelib.store.fhir_imports import FhirImportRepository
    from local.faults import faults

    tenant_id = clinic.tenant.id
    people, visits = history(tenant_id, "MRN-R")
    upload(runtime, tenant_id, "retry/patients.ndjson", people)
    upload(runtime, tenant_id, "retry/appointments.ndjson", visits)

    # The first page ran, but its answer was lost (Lambda.ServiceException after it ran): the
    # state retries it, and the retry reads the position that page left.
    lost: list[str] = []
    roll = faults.roll

    def lose_the_first_answer(kind: str, identity: str) -> bool:
        if kind == "lambda_after" and "fhir_import_page" in identity and not lost:
            lost.append(identity)
            return True
        return roll(kind, identity)

    monkeypatch.setattr(faults, "roll", lose_the_first_answer)
    # The second page imported its lines, then could not move the position (throttled): the
    # page runs again, importing the same lines again (changing nothing) and counting once.
    advance = FhirImportRepository.advance
    throttled: list[int] = []

    def throttle_once(self: Any, *args: Any, **kwargs: Any) -> bool:
        if len(throttled) < 1 and args[2].file_index == 1:
            throttled.append(1)
            raise DependencyUnavailable("throttled (injected)")
        return advance(self, *args, **kwargs)

    monkeypatch.setattr(FhirImportRepository, "advance", throttle_once)

    job = finished(
        runtime,
        api,
        clinic,
        start_import(api, clinic, ["retry/patients.ndjson", "retry/appointments.ndjson"]),
    )
    assert lost and throttled, "no fault was injected"
    assert job["status"] == "completed", job
    patients_file, visits_file = job["files"]
    assert counts(patients_file) == (15, 12, 0, 2, 1)
    # The replayed page imported its visits on its first run: its second run finds them as sent.
    assert (visits_file["lines"], visits_file["rejected"]) == (13, 1)
    assert visits_file["created"] + visits_file["updated"] == 12
    assert len(rejections(api, clinic, job)) == 3


def test_lines_cut_by_a_pages_range_are_read_whole_by_the_next(
    runtime: Any, api: Api, clinic: ClinicCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.adapters.executions import execution_arn
    from chalicelib.domain import fhir_imports
    from chalicelib.settings import get_settings

    tenant_id = clinic.tenant.id
    people = [patient_line(tenant_id, f"MRN-P-{n:03d}") for n in range(30)]
    assert len(people[0].encode()) > 200
    upload(runtime, tenant_id, "paged/patients.ndjson", people)
    # 700-byte ranges (each line ~250 bytes, so most ranges cut one) and a new execution every
    # 4 pages.
    monkeypatch.setattr(fhir_imports, "PAGE_BYTES", 700)
    monkeypatch.setattr(fhir_imports, "PAGES_PER_EXECUTION", 4)

    job = finished(runtime, api, clinic, start_import(api, clinic, ["paged/patients.ndjson"]))
    assert job["status"] == "completed", job
    assert counts(job["progress"]) == (30, 30, 0, 0, 0)
    assert rejections(api, clinic, job) == []
    from chalicelib.store.patients import PatientRepository

    for n in (0, 2, 3, 29):
        assert PatientRepository().find_by_mrn(tenant_id, f"MRN-P-{n:03d}") is not None
    # More pages than one execution runs: the import was carried on by further executions.
    sfn = runtime.client("stepfunctions")
    machine = get_settings().fhir_import_arn
    parts = [
        sfn.describe_execution(
            executionArn=execution_arn(
                machine, fhir_imports.execution_name(tenant_id, job["id"], p)
            )
        )["status"]
        for p in (0, 1, 2)
    ]
    assert parts == ["SUCCEEDED"] * 3


def test_a_page_that_still_fails_marks_the_import_failed_and_tells_staff(
    runtime: Any, api: Api, clinic: ClinicCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.services.fhir_import import FhirImportService

    tenant_id = clinic.tenant.id
    upload(runtime, tenant_id, "broken/patients.ndjson", [patient_line(tenant_id, "MRN-F-001")])

    def broken(self: Any, tenant: Any) -> Any:
        raise RuntimeError("a bug of ours")  # not transient: no retry helps

    monkeypatch.setattr(FhirImportService, "places", broken)
    job = finished(runtime, api, clinic, start_import(api, clinic, ["broken/patients.ndjson"]))
    assert job["status"] == "failed" and job["error"] == "RuntimeError", job
    assert "finished_at" in job and counts(job["progress"]) == (0, 0, 0, 0, 0)
    tasks = payload(api.call("GET", "/tasks", clinic.tenant.staff))["items"]
    failed = [t for t in tasks if t["kind"] == "journey_step_failed"]
    assert len(failed) == 1, tasks
    assert job["id"] in json.dumps(failed[0])  # the task names the import's execution
