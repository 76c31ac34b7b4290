"""A hospital's onboarding file (infra/hospitals/*.json) as infra/hospital.yaml's parameters.

`python infra/hospital_parameters.py infra/hospitals/example.json [--stage prod]` prints them
as `aws cloudformation deploy --parameter-overrides` takes them; `make onboard` reads the same
file into the local emulator.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

# The file's keys → the template's parameters (departments become the two parallel lists).
NAMES = {
    "tenant_id": "TenantId",
    "hospital_name": "HospitalName",
    "time_zone": "TimeZone",
    "language": "Language",
    "country": "Country",
    "email_domain": "EmailDomain",
    "email_local_part": "EmailLocalPart",
    "sms_sender_id": "SmsSenderId",
    "sms_number_type": "SmsNumberType",
    "first_admin_email": "FirstAdminEmail",
    "first_admin_name": "FirstAdminName",
    "alert_email": "AlertEmail",
}


def stack_parameters(hospital: dict[str, Any], stage: str) -> dict[str, str]:
    unknown = set(hospital) - set(NAMES) - {"departments"}
    if unknown:
        raise ValueError(f"unknown keys in the hospital file: {', '.join(sorted(unknown))}")
    if "tenant_id" not in hospital:
        raise ValueError("the hospital file must name its tenant_id")
    parameters = {"Stage": stage}
    parameters.update({NAMES[key]: str(value) for key, value in hospital.items() if key in NAMES})
    departments = hospital.get("departments") or []
    for department in departments:
        if "," in department["name"] or "," in department["id"]:
            raise ValueError("department ids and names cannot contain commas")
    if departments:
        parameters["DepartmentIds"] = ",".join(d["id"] for d in departments)
        parameters["DepartmentNames"] = ",".join(d["name"] for d in departments)
    return parameters


def read(path: Path, stage: str) -> dict[str, str]:
    return stack_parameters(json.loads(path.read_text(encoding="utf-8")), stage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("hospital", type=Path)
    parser.add_argument("--stage", default="prod")
    args = parser.parse_args()
    print(" ".join(shlex.quote(f"{k}={v}") for k, v in read(args.hospital, args.stage).items()))


if __name__ == "__main__":
    main()
