"""Starts the embedded AWS and wires CareLoop to it: the one path used by `make run`, the tests
and the benchmarks.

1. Environment from `.chalice/config.json` (stage `local`), plus the emulator's endpoint.
2. moto's server in this process, with Step Functions execution on and Lambda without Docker.
3. Hooks: Lambda invokes run the Chalice functions in-process; Wait states and `chalicelib.clock`
   read one virtual clock; every SMS, push and email lands in the outbox; table exports are
   written in AWS's layout (local/table_exports.py).
4. Resources provisioned from `infra/platform.yaml`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from local.identity import UserPool, sign_in
from local.outbox import Outbox
from local.provision import Provisioned, provision, tenant_data_role
from local.streams import StreamPollers
from local.vclock import VirtualClock
from local.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent
STAGE = "local"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def quiet_logs() -> None:
    """The emulator's chatter off: its HTTP log, and the traceback moto logs for every Fail
    state (even one its Parallel catches, as the aftercare answer wait does by design)."""
    for noisy in ("werkzeug", "moto", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stage_environment(stage: str = STAGE) -> dict[str, str]:
    """The environment variables Chalice would give the functions of `stage`."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env: dict[str, str] = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def emulator_client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


@dataclass
class Runtime:
    endpoint: str
    clock: VirtualClock
    outbox: Outbox
    pool: UserPool
    resources: Provisioned
    app: Any
    _server: Any
    # One signed-in user per (role, tenant, patient): a sign-in is four calls to the pool.
    _tokens: dict[tuple[str, str | None, str | None], str] = field(default_factory=dict)
    # A hospital's system on 127.0.0.1: what webhooks delivered (local/webhook_receiver.py).
    webhooks: WebhookReceiver | None = None
    # The table's stream, delivered to the analytics handler at each settle (local/streams.py).
    streams: StreamPollers | None = None

    def client(self, service: str) -> Any:
        return emulator_client(self.endpoint, service)

    def token(self, role: str, tenant_id: str | None = None, patient_id: str | None = None) -> str:
        """An ID token from the emulated user pool (valid for an hour, as Cognito's)."""
        key = (role, tenant_id, patient_id)
        if key not in self._tokens:
            self._tokens[key] = sign_in(
                self.client("cognito-idp"), self.pool, role, tenant_id, patient_id
            )
        return self._tokens[key]

    def settle(self) -> None:
        """Wait until every journey is idle (in a Wait, on a task token, or finished), then
        deliver what the table's stream holds (the analytics counters follow)."""
        from local.activity import activity

        activity.settle()
        if self.streams is not None:
            self.streams.drain()

    def reset(self, start: datetime) -> None:
        """An empty platform at `start`, as a fresh `start()` would give, in this process: for
        tests that play months or years, so no other test's tenants play along. Every execution
        is stopped first; nothing else may be sleeping on the clock (stop a schedules runner
        before)."""
        import urllib.request

        from local import table_exports
        from local.activity import activity
        from local.dead_letters import dead_letters
        from local.meter import meter

        self._stop_every_execution()
        activity.settle()
        reset = f"{self.endpoint}/moto-api/reset"
        request = urllib.request.Request(reset, method="POST")  # noqa: S310 - the emulator
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310
            pass
        self.resources, self.pool = _provision_platform(self.endpoint, self.app)
        # A warm container's caches (data keys, tenant settings, chain heads) name what the
        # reset emptied: built again, as a fresh start's would be.
        from chalicelib.services.registry import services

        services.cache_clear()
        if self.streams is not None:
            self.streams.forget()
        table_exports.forget()
        self._tokens.clear()
        self.clock.rewind(start)
        self.outbox.clear()
        if self.webhooks is not None:
            self.webhooks.clear()
        dead_letters.clear()
        meter.reset()

    def _stop_every_execution(self) -> None:
        sfn = self.client("stepfunctions")
        for machine in sfn.list_state_machines()["stateMachines"]:
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )
            for page in pages:
                for execution in page["executions"]:
                    sfn.stop_execution(executionArn=execution["executionArn"], cause="reset")

    def stop(self) -> None:
        self._server.stop()
        if self.webhooks is not None:
            self.webhooks.stop()


def start(*, clock: VirtualClock, port: int | None = None) -> Runtime:
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(stage_environment())
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            # The emulator's Step Functions interpreter calls the other services on this port.
            "MOTO_PORT": str(port),
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    default_user_config["lambda"] = {"use_docker": False}

    from chalicelib import clock as app_clock
    from chalicelib.settings import get_settings

    get_settings.cache_clear()
    app_clock.use_clock(clock)

    import app as app_module
    from app import app
    from local import api as local_api
    from local import (
        aws_calls,
        ddb_hooks,
        faults,
        lambdas,
        meter,
        sfn_hooks,
        sns_dispatch,
        table_exports,
    )
    from local import outbox as outbox_hooks
    from local import streams as local_streams

    outbox = Outbox()
    aws_calls.install_from_environment()
    ddb_hooks.install()
    faults.install()
    meter.install()
    sfn_hooks.install(clock)
    outbox_hooks.install(outbox)
    sns_dispatch.install(app_module)
    table_exports.install()
    handlers = {
        lambdas.function_name(app.app_name, STAGE, fn.name): fn for fn in app.pure_lambda_functions
    }
    lambdas.install(handlers, REGION, ACCOUNT)
    if "/local/clock" not in app.routes:
        app.register_blueprint(local_api.api.blueprint)
    local_api.bind(clock, outbox)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _call_in_process()
    resources, pool = _provision_platform(endpoint, app)
    receiver = WebhookReceiver().start()
    local_api.bind_webhook_receiver(receiver)
    streams = local_streams.install(
        app_module,
        emulator_client(endpoint, "dynamodb"),
        emulator_client(endpoint, "dynamodbstreams"),
        get_settings().table_name,
        lambda name: lambdas.function_name(app.app_name, STAGE, name),
    )
    return Runtime(
        endpoint, clock, outbox, pool, resources, app, server, webhooks=receiver, streams=streams
    )


_IN_PROCESS: list[Any] = []  # moto's mock, started once per process


def _call_in_process() -> None:
    """The product's own AWS calls (and the Step Functions interpreter's) reach the emulator's
    backends in this process, through moto's botocore stubber: about 3 ms a call instead of 8
    over its HTTP port, where every request takes a new connection and thread. The backends are
    the ones the server serves, so the tests' clients and the CLI, which keep the endpoint, see
    the same data."""
    if not _IN_PROCESS:
        from moto import mock_aws

        mock = mock_aws()
        mock.start(reset=False)
        _IN_PROCESS.append(mock)
    # The mock puts its own fake keys in the environment: the product's are what the fault
    # tier tells the product's calls by (local/faults.py).
    os.environ.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
    os.environ.pop("AWS_ENDPOINT_URL", None)


def _provision_platform(endpoint: str, app: Any) -> tuple[Provisioned, UserPool]:
    """Everything the platform needs in an empty emulator: the template's resources (the user
    pool among them), the push stand-in and the functions' environment."""
    from chalicelib.settings import get_settings
    from local import api as local_api
    from local.dead_letters import dead_letters
    from local.onboard import Onboarder, platform_exports

    resources = provision(
        lambda service: emulator_client(endpoint, service),
        app_name=app.app_name,
        stage=STAGE,
        lambda_names=[fn.name for fn in app.pure_lambda_functions],
        region=REGION,
        account=ACCOUNT,
    )
    # SNS platform applications are made with provider credentials, outside the template: the
    # local runtime makes a stand-in.
    push = emulator_client(endpoint, "sns").create_platform_application(
        Name="careloop-local-push", Platform="GCM", Attributes={"PlatformCredential": "local"}
    )
    # The functions' environment from the template's Globals (topic and state machine ARNs,
    # the user pool's id...), where the local stage's own configuration does not set it. Set,
    # not defaulted: after a reset the new pool has a new id (CI failed on the old one).
    fixed_by_stage = stage_environment()
    for name, value in resources.function_environment.items():
        if name not in fixed_by_stage:
            os.environ[name] = value
    os.environ["PUSH_PLATFORM_APPLICATION_ARN"] = push["PlatformApplicationArn"]
    # The role the API assumes for one tenant's data (infra/package.py makes it on AWS): the
    # emulator checks no IAM, but the API takes a tagged session for every tenant it acts for,
    # as deployed (tests/permissions evaluates those calls against the role's policy).
    os.environ["TENANT_DATA_ROLE_ARN"] = tenant_data_role(emulator_client(endpoint, "iam"))
    # A new pool has a new id (a reset makes one): its issuer, client and keys, not the last's.
    pool = UserPool(resources.ref("UserPool"), resources.ref("AppClient"), REGION)
    os.environ["JWKS_URL"] = pool.jwks_url(endpoint)
    get_settings.cache_clear()
    dead_letters.retries = resources.async_retries
    local_api.bind_inbound_topic(resources.ref("InboundSmsTopic"))
    local_api.bind_user_pool(emulator_client(endpoint, "cognito-idp"), pool)
    local_api.bind_onboarder(
        Onboarder(
            lambda service: emulator_client(endpoint, service),
            stage=STAGE,
            region=REGION,
            account=ACCOUNT,
            exports=platform_exports(
                resources.ref, lambda logical, name: resources.attributes[(logical, name)], STAGE
            ),
        )
    )
    return resources, pool
