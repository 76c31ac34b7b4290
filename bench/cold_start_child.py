"""One cold start, in a fresh process: import the app, handle the first request, print the
milliseconds both took (what Lambda reports as init plus first invoke)."""

from __future__ import annotations

import time

_started = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402


def main() -> None:
    which, patient_id, token = sys.argv[1:4]
    from bench.events import Context, get_event

    if which == "careloop":
        from app import app
    else:
        from bench.floor_app import app
    imported = time.perf_counter()
    event = get_event(
        "/patients/{patient_id}", f"/patients/{patient_id}", {"patient_id": patient_id}, token
    )
    response = app(event, Context())
    done = time.perf_counter()
    if response["statusCode"] != 200:
        raise SystemExit(f"{which}: {response['statusCode']} {response['body']}")
    print(
        json.dumps(
            {
                "total_ms": (done - _started) * 1000,
                "import_ms": (imported - _started) * 1000,
                "first_request_ms": (done - imported) * 1000,
            }
        )
    )


if __name__ == "__main__":
    main()
