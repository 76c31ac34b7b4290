"""`python -m local <command>`: the embedded runtime's command line.

serve [--port 8000]                  the API on localhost against the embedded AWS (make run)
token --tenant T --role staff [--patient P]   print a signed ID token for the running API
token --email admin@hospital.example          sign in as an invited account
clock [advance 1d | set 2027-01-01T09:00:00Z] read or move the running server's virtual clock
outbox [--to +8613800138000] [--channel sms]  what the running server has "sent"
sms-reply --from +8613800138000 --text C [--to +8610690000001]
                                               an SMS reply, as two-way SMS delivers it
dead-letters [--function inbound_sms]          SNS deliveries and schedule runs that still failed
onboard infra/hospitals/example.json [--delete]
                                     deploy (or delete) a hospital's stack, infra/hospital.yaml
analytics-rebuild --tenant demo-clinic [--check]
                                     compare a tenant's analytics counters with its records
                                     (and replace them with those totals, unless --check)
simulate examples/appointment-basics.json [--write-expected]
                                     play a scenario on a fresh embedded stack; print each
                                     patient's timeline and a summary (examples/README.md)
openapi                              rewrite openapi.yaml from the route declarations
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Keys and the running server's address; another folder keeps a test's server apart.
STATE_DIR = Path(os.environ.get("CARELOOP_LOCAL_STATE") or ROOT / ".local")
SERVER_FILE = STATE_DIR / "server.json"
DEFAULT_SERVER = "http://127.0.0.1:8000"


def _compact(document: object) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


# What the printed hints (and the README's quick-start) send: a tenant with the department a
# schedule needs, a patient, a clinician and a schedule open every day.
DEMO_TENANT = _compact(
    {
        "id": "demo-clinic",
        "name": "Demo Clinic",
        "time_zone": "Asia/Shanghai",
        "default_language": "zh-CN",
        "country": "CN",
        "sender": {"sms_reply_number": "+8610690000001", "email_from": "care@demo.example.com"},
        "departments": [{"id": "cardiology", "name": "Cardiology"}],
    }
)
DEMO_PATIENT = _compact({"name": {"given": "Wei", "family": "Zhang"}, "phone": "13800138000"})
DEMO_CLINICIAN = _compact({"name": "Dr. Li", "department": "cardiology"})
DEMO_SCHEDULE = _compact(
    {
        "department": "cardiology",
        "clinician": "dr-li",
        "location": "Building 2",
        "slot_minutes": 30,
        "capacity": 1,
        "weekly_hours": {
            day: [{"start": "09:00", "end": "12:00"}]
            for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        },
    }
)


def _running_server() -> str | None:
    """The address `serve` wrote down, while its process lives."""
    try:
        state = json.loads(SERVER_FILE.read_text(encoding="utf-8"))
        os.kill(int(state["pid"]), 0)
    except PermissionError:  # alive, under another user
        pass
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(state["url"])


def _server(args: argparse.Namespace) -> str:
    """--server, else CARELOOP_LOCAL_URL, else the server `make run` started (on any PORT)."""
    return str(
        args.server or os.environ.get("CARELOOP_LOCAL_URL") or _running_server() or DEFAULT_SERVER
    )


MOVE_TIMEOUT = 3600.0


def _call(url: str, body: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - a localhost URL the user chose
        url,
        data=data,
        headers={"Content-Type": "application/json"},
        method="POST" if data else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        sys.exit(f"{exc.code}: {exc.read().decode(errors='replace')}")
    except urllib.error.URLError as exc:
        sys.exit(f"cannot reach the local server at {url} ({exc.reason}); is `make run` running?")


def serve(args: argparse.Namespace) -> None:
    from local.runtime import quiet_logs, start
    from local.server import make_server
    from local.vclock import VirtualClock

    quiet_logs()
    print("Starting the embedded AWS and provisioning infra/platform.yaml ...", flush=True)
    runtime = start(clock=VirtualClock(flowing=True))
    import app as app_module
    from local import schedules

    schedules.start(app_module, runtime.clock)  # the daily recall sweep, on the virtual clock
    server = make_server(runtime.app, args.host, args.port)
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    SERVER_FILE.write_text(
        json.dumps({"url": f"http://{host}:{args.port}", "pid": os.getpid()}), encoding="utf-8"
    )
    print(banner(f"http://localhost:{args.port}", runtime.endpoint), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped")
    finally:
        if _running_server() == f"http://{host}:{args.port}":
            SERVER_FILE.unlink(missing_ok=True)
        runtime.stop()


def banner(base: str, emulator: str) -> str:
    """What `make run` prints. Every indented line is a command that works as printed, in a
    second terminal in this folder (the CLI finds this server's port)."""
    json_body = "-H 'Content-Type: application/json' -d"
    return f"""
CareLoop is serving {base}  (embedded AWS at {emulator}; Ctrl-C stops)

A tenant with a department, a patient, and the tenant's patients:
  TOKEN=$(.venv/bin/python -m local token --role operator)
  curl -s -X POST {base}/tenants -H "Authorization: Bearer $TOKEN" \\
       {json_body} '{DEMO_TENANT}'
  STAFF=$(.venv/bin/python -m local token --tenant demo-clinic --role staff)
  curl -s -X POST {base}/patients -H "Authorization: Bearer $STAFF" \\
       {json_body} '{DEMO_PATIENT}'
  curl -s {base}/patients -H "Authorization: Bearer $STAFF"

A clinician and a schedule in that department (then GET /slots and POST /appointments):
  ADMIN=$(.venv/bin/python -m local token --tenant demo-clinic --role admin)
  curl -s -X PUT {base}/clinicians/dr-li -H "Authorization: Bearer $ADMIN" \\
       {json_body} '{DEMO_CLINICIAN}'
  curl -s -X PUT {base}/schedules/dr-li-cardiology -H "Authorization: Bearer $ADMIN" \\
       {json_body} '{DEMO_SCHEDULE}'

The virtual clock and the outbox:
  .venv/bin/python -m local clock advance 1d    # or POST {base}/local/clock {{"advance":"1d"}}
  .venv/bin/python -m local outbox              # or GET {base}/local/outbox
  .venv/bin/python -m local sms-reply --from +8613800138000 --text C   # a patient's SMS reply
  curl -s {base}/local/webhook-receiver   # a hospital's system: its url takes POST /webhooks
API description: {base}/openapi.json
"""


def token(args: argparse.Namespace) -> None:
    """Signs in through the running server's emulated user pool, as a new user of the role, or
    as an invited account (--email)."""
    if args.email:
        print(_call(f"{_server(args)}/local/sign-in", {"email": args.email})["id_token"])
        return
    if not args.role:
        sys.exit("give --role (a new user) or --email (an invited account)")
    if args.role != "operator" and not args.tenant:
        sys.exit("--tenant is required for the patient, staff and admin roles")
    if args.role == "patient" and not args.patient:
        sys.exit("--patient is required for the patient role")
    body = {"role": args.role}
    if args.tenant:
        body["tenant_id"] = args.tenant
    if args.patient:
        body["patient_id"] = args.patient
    print(_call(f"{_server(args)}/local/sign-in", body)["id_token"])


def onboard(args: argparse.Namespace) -> None:
    """Creates or updates the hospital's stack (or deletes it) and prints what it made."""
    hospital = json.loads(args.hospital.read_text(encoding="utf-8"))
    base = _server(args)
    if args.delete:
        request = urllib.request.Request(  # noqa: S310 - a localhost URL the user chose
            f"{base}/local/hospitals/{urllib.parse.quote(hospital['tenant_id'])}", method="DELETE"
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                stack = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            sys.exit(f"{exc.code}: {exc.read().decode(errors='replace')}")
    else:
        stack = _call(f"{base}/local/hospitals", hospital, timeout=120)
    print(json.dumps(stack, ensure_ascii=False, indent=2))
    if not args.delete:
        admin = hospital["first_admin_email"]
        print(
            f"\nSign in as the hospital's admin:\n"
            f"  ADMIN=$(.venv/bin/python -m local token --email {admin})"
        )


def clock(args: argparse.Namespace) -> None:
    base = _server(args)
    # A move returns when every timer on the way has played out: months of a busy hospital
    # take a while.
    if args.action == "advance":
        result = _call(f"{base}/local/clock", {"advance": " ".join(args.value)}, MOVE_TIMEOUT)
    elif args.action == "set":
        result = _call(f"{base}/local/clock", {"set": args.value[0]}, MOVE_TIMEOUT)
    else:
        result = _call(f"{base}/local/clock")
    print(result["now"])


def outbox(args: argparse.Namespace) -> None:
    query = "&".join(
        f"{k}={urllib.parse.quote(v)}" for k, v in (("to", args.to), ("channel", args.channel)) if v
    )
    result = _call(f"{_server(args)}/local/outbox" + (f"?{query}" if query else ""))
    for message in result["items"]:
        subject = f" [{message['subject']}]" if message["subject"] else ""
        print(
            f"{message['sent_at']}  {message['channel']:<5} {message['to']}{subject}\n"
            f"    {message['body']}"
        )
    if not result["items"]:
        print("(nothing sent yet)")


def sms_reply(args: argparse.Namespace) -> None:
    body = {"from": args.sender, "text": args.text}
    if args.to:
        body["to"] = args.to
    result = _call(f"{_server(args)}/local/sms-reply", body)
    print(f"received as {result['inbound_message_id']}")


def dead_letters(args: argparse.Namespace) -> None:
    query = f"?function={urllib.parse.quote(args.function)}" if args.function else ""
    result = _call(f"{_server(args)}/local/dead-letters{query}")
    for letter in result["items"]:
        print(
            f"{letter['failed_at']}  {letter['event_kind']:<8} {letter['function']:<16} "
            f"{letter['error']} after {letter['attempts']} attempts  {letter['id']}"
        )
    if not result["items"]:
        print("(no dead letters)")


def analytics_rebuild(args: argparse.Namespace) -> None:
    result = _call(
        f"{_server(args)}/local/analytics/rebuild",
        {"tenant_id": args.tenant, "check_only": args.check},
        MOVE_TIMEOUT,
    )
    verb = "checked" if args.check else "rebuilt"
    print(
        f"{verb} {result['counters']} counters: {result['differing']} differed from the kept "
        f"ones, {result['written']} written"
    )


def simulate(args: argparse.Namespace) -> None:
    """Plays the scenario on a runtime of its own (no server needed); the transcript on stdout,
    or into examples/<name>.expected.txt beside the scenario with --write-expected."""
    from local.simulate import ScenarioError, expected_path, simulate_file

    try:
        transcript = simulate_file(args.scenario)
    except ScenarioError as exc:
        sys.exit(f"{args.scenario}: {exc}")
    if args.write_expected:
        written = expected_path(args.scenario)
        written.write_text(transcript, encoding="utf-8")
        print(f"wrote {written}")
    else:
        sys.stdout.write(transcript)


def openapi(args: argparse.Namespace) -> None:
    from local.openapi_doc import write_openapi

    path = write_openapi()
    print(f"wrote {path.relative_to(ROOT)}")


def _add_analytics_rebuild(commands: Any) -> None:
    p = commands.add_parser(
        "analytics-rebuild", help="check or rebuild a tenant's analytics counters from its records"
    )
    p.add_argument("--tenant", required=True)
    p.add_argument("--check", action="store_true", help="compare only; write nothing")
    p.add_argument("--server")
    p.set_defaults(func=analytics_rebuild)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="serve the API against the embedded AWS")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=serve)

    p = commands.add_parser(
        "token", help="sign in through the emulated user pool; print the ID token (an hour)"
    )
    p.add_argument("--role", choices=["patient", "staff", "admin", "operator"])
    p.add_argument("--email", help="an invited account: a hospital's first admin, a staff member")
    p.add_argument("--tenant")
    p.add_argument("--patient")
    p.add_argument("--server")
    p.set_defaults(func=token)

    p = commands.add_parser("clock", help="read or move the virtual clock")
    p.add_argument("action", nargs="?", choices=["advance", "set"])
    p.add_argument("value", nargs="*")
    p.add_argument("--server")
    p.set_defaults(func=clock)

    p = commands.add_parser("outbox", help="list what was sent")
    p.add_argument("--to")
    p.add_argument("--channel", choices=["sms", "push", "topic", "email"])
    p.add_argument("--server")
    p.set_defaults(func=outbox)

    p = commands.add_parser("sms-reply", help="send an SMS reply as a patient would")
    p.add_argument("--from", dest="sender", required=True, help="the patient's number, E.164")
    p.add_argument("--text", required=True)
    p.add_argument(
        "--to", help="the hospital's number (default: the one the last text to --from came from)"
    )
    p.add_argument("--server")
    p.set_defaults(func=sms_reply)

    p = commands.add_parser("dead-letters", help="list what still failed after Lambda's retries")
    p.add_argument("--function", help="only this function's, e.g. inbound_sms")
    p.add_argument("--server")
    p.set_defaults(func=dead_letters)

    p = commands.add_parser(
        "onboard", help="deploy a hospital's stack (infra/hospital.yaml) into the running server"
    )
    p.add_argument(
        "hospital", type=Path, help="its onboarding file, e.g. infra/hospitals/example.json"
    )
    p.add_argument("--delete", action="store_true", help="delete the stack (the data stays)")
    p.add_argument("--server")
    p.set_defaults(func=onboard)

    _add_analytics_rebuild(commands)
    p = commands.add_parser(
        "simulate", help="play a scenario file on a fresh embedded stack; print the transcript"
    )
    p.add_argument("scenario", type=Path, help="a scenario, e.g. examples/appointment-basics.json")
    p.add_argument(
        "--write-expected",
        action="store_true",
        help="write the transcript to <name>.expected.txt beside the scenario",
    )
    p.set_defaults(func=simulate)

    p = commands.add_parser("openapi", help="rewrite openapi.yaml")
    p.set_defaults(func=openapi)

    args = parser.parse_args(argv)
    if args.command == "clock" and args.action and not args.value:
        parser.error(f"clock {args.action} needs a value")
    args.func(args)


if __name__ == "__main__":
    main()
