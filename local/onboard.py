"""Onboards a hospital into the emulator from `infra/hospital.yaml`, as CloudFormation would.

moto's CloudFormation cannot deploy this template (no Cognito user, SES, End User Messaging or
subscription types; custom resources only ever receive Create; no End User Messaging backend),
so this reads the template itself: it expands `Fn::ForEach`, evaluates the conditions and the
intrinsic functions, creates each resource through its service's API, and sends the custom
resource's Create, Update and Delete requests to the platform's provisioner function, through a
Lambda invoke, with a response URL it listens on, as CloudFormation does. The SMS number is a
stand-in (+1555...): nothing emulates End User Messaging, and `/local/sms-reply --to` the
number is how a reply to it arrives.

Stacks live as long as the emulator does (in this process), as the emulator's data does.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.provision import load_template

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "hospital.yaml"
ClientFactory = Callable[[str], Any]
# The order CloudFormation's dependencies give this template's resources; deletion reverses it.
CREATION_ORDER = (
    "AWS::Cognito::UserPoolUser",
    "AWS::Cognito::UserPoolUserToGroupAttachment",
    "AWS::SES::ConfigurationSet",
    "AWS::SES::EmailIdentity",
    "AWS::SES::ConfigurationSetEventDestination",
    "AWS::SMSVOICE::PhoneNumber",
    "AWS::SNS::Topic",
    "AWS::IAM::ManagedPolicy",
    "Custom::CareLoopTenant",
)


class OnboardingFailed(Exception):
    """The stack could not be created, changed or deleted; the reason is the provisioner's."""


@dataclass
class HospitalStack:
    name: str
    parameters: dict[str, str]
    physical_ids: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)  # "Logical.Attribute" → value
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)  # what each was made with
    types: dict[str, str] = field(default_factory=dict)
    retained: set[str] = field(default_factory=set)
    outputs: dict[str, str] = field(default_factory=dict)
    responses: list[dict[str, Any]] = field(default_factory=list)  # the custom resource's answers


class _Responses:
    """Where the provisioner function PUTs its answers (a custom resource's ResponseURL)."""

    def __init__(self) -> None:
        self.received: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        responses = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with responses._arrived:
                    responses.received[self.path.strip("/")] = json.loads(body)
                    responses._arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, request_id: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{request_id}"

    def wait(self, request_id: str, timeout: float = 60) -> dict[str, Any]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: request_id in self.received, timeout):
                raise OnboardingFailed("the provisioner function did not answer the stack")
            return self.received.pop(request_id)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _alphanumeric(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", value)


def _substitute(node: Any, name: str, value: str) -> Any:
    """A Fn::ForEach body with its identifier replaced: `&{x}` (alphanumerics only, in logical
    ids), `${x}` in Fn::Sub strings and `{"Ref": x}`."""
    if isinstance(node, str):
        return node.replace(f"&{{{name}}}", _alphanumeric(value)).replace(f"${{{name}}}", value)
    if isinstance(node, list):
        return [_substitute(item, name, value) for item in node]
    if isinstance(node, dict):
        if node == {"Ref": name}:
            return value
        return {
            _substitute(key, name, value): _substitute(item, name, value)
            for key, item in node.items()
        }
    return node


class _Template:
    """The hospital template resolved against one stack's parameters, exports and resources."""

    def __init__(
        self,
        template: dict[str, Any],
        stack: HospitalStack,
        exports: dict[str, str],
        pseudo: dict[str, str],
    ) -> None:
        self._stack = stack
        self._exports = exports
        self._pseudo = pseudo
        self._parameters: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            value = stack.parameters.get(name, spec.get("Default"))
            if value is None:
                raise OnboardingFailed(f"parameter {name} is required")
            text = str(value)
            self._parameters[name] = (
                [v for v in text.split(",")] if spec["Type"] == "CommaDelimitedList" else text
            )
        self.conditions = {
            name: bool(self.resolve(expression))
            for name, expression in template.get("Conditions", {}).items()
        }
        self.resources = self._expand(template["Resources"])
        self.outputs = template.get("Outputs", {})

    def _expand(self, resources: dict[str, Any]) -> dict[str, Any]:
        expanded: dict[str, Any] = {}
        for key, body in resources.items():
            if key.startswith("Fn::ForEach::"):
                name, collection, fragment = body
                for value in self.resolve(collection):
                    expanded.update(_substitute(fragment, name, value))
            else:
                expanded[key] = body
        return {
            key: spec
            for key, spec in expanded.items()
            if "Condition" not in spec or self.conditions[spec["Condition"]]
        }

    def _name(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return None  # the property is dropped
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        if "." in name:
            return self._stack.attributes[name]
        return self._stack.physical_ids[name]

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((fn, arg),) = node.items()
            function = self._functions().get(fn)
            if function is not None:
                return function(arg)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not None}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self._name,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::ImportValue": self._import,
            "Fn::If": lambda arg: self.resolve(arg[1] if self.conditions[arg[0]] else arg[2]),
            "Fn::Equals": lambda arg: self.resolve(arg[0]) == self.resolve(arg[1]),
            "Fn::Not": lambda arg: not self.resolve(arg[0]),
            "Fn::Join": lambda arg: arg[0].join(str(v) for v in self.resolve(arg[1])),
        }

    def _get_att(self, arg: Any) -> str:
        logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        return self._stack.attributes[f"{logical}.{attribute}"]

    def _sub(self, arg: Any) -> str:
        text = arg if isinstance(arg, str) else arg[0]
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._name(m[1])), text)

    def _import(self, arg: Any) -> str:
        name = self.resolve(arg)
        if name not in self._exports:
            raise OnboardingFailed(f"the platform stack exports no {name}")
        return self._exports[name]


def platform_exports(
    ref: Callable[[str], str], attribute: Callable[[str, str], str], stage: str
) -> dict[str, str]:
    """What the platform stack exports to hospital stacks (its Outputs' Export names), from
    what the local provisioning made of infra/platform.yaml."""
    prefix = f"careloop-{stage}"
    return {
        f"{prefix}-tenant-provisioner-arn": attribute("TenantProvisioner", "Arn"),
        f"{prefix}-inbound-sms-topic-arn": ref("InboundSmsTopic"),
        f"{prefix}-email-feedback-topic-arn": ref("EmailFeedbackTopic"),
        f"{prefix}-topics-key-arn": ref("DataKey"),
        f"{prefix}-user-pool-id": ref("UserPool"),
        f"{prefix}-import-bucket": ref("ImportBucket"),
    }


def stand_in_number(tenant_id: str) -> str:
    """A two-way number for the hospital, the same each time (+1555 and seven digits)."""
    digits = int(hashlib.sha256(tenant_id.encode()).hexdigest(), 16) % 10**7
    return f"+1555{digits:07d}"


class Onboarder:
    """Creates, updates and deletes hospital stacks in the emulator."""

    def __init__(
        self,
        client: ClientFactory,
        *,
        stage: str,
        region: str,
        account: str,
        exports: dict[str, str],
    ) -> None:
        self._client = client
        self._exports = exports
        self.stage = stage
        self._stage = stage
        self._region = region
        self._account = account
        self.stacks: dict[str, HospitalStack] = {}

    def _template(self, stack: HospitalStack) -> _Template:
        return _Template(
            load_template(TEMPLATE),
            stack,
            self._exports,
            {
                "AWS::Region": self._region,
                "AWS::AccountId": self._account,
                "AWS::Partition": "aws",
                "AWS::StackName": stack.name,
            },
        )

    def deploy(self, parameters: dict[str, str]) -> HospitalStack:
        """Create the hospital's stack, or update it if it exists (as `aws cloudformation
        deploy` does)."""
        tenant_id = parameters["TenantId"]
        previous = self.stacks.get(tenant_id)
        stack = HospitalStack(
            name=f"careloop-{self._stage}-hospital-{tenant_id}",
            parameters={**parameters, "Stage": self._stage},
        )
        if previous is not None:
            stack.physical_ids = dict(previous.physical_ids)
            stack.attributes = dict(previous.attributes)
            stack.properties = dict(previous.properties)
            stack.types = dict(previous.types)
            stack.responses = previous.responses
        template = self._template(stack)
        wanted = template.resources
        ordered = sorted(wanted, key=lambda k: CREATION_ORDER.index(wanted[k]["Type"]))
        created: list[str] = []
        try:
            for logical_id in ordered:
                spec = wanted[logical_id]
                props = template.resolve(spec.get("Properties", {}))
                stack.types[logical_id] = spec["Type"]
                if spec.get("DeletionPolicy") == "Retain":
                    stack.retained.add(logical_id)
                if logical_id not in stack.physical_ids:
                    created.append(logical_id)
                self._put(stack, logical_id, spec["Type"], props)
                stack.properties[logical_id] = props
        except OnboardingFailed:
            if previous is None:  # a failed Create rolls back what it made
                self._delete_resources(stack, [k for k in reversed(created)])
            raise
        # Resources the new template no longer has (a department's topic) go after the update.
        gone = [k for k in stack.physical_ids if k not in wanted]
        self._delete_resources(stack, sorted(gone, key=lambda k: -self._rank(stack, k)))
        stack.outputs = {
            name: str(template.resolve(output["Value"]))
            for name, output in template.outputs.items()
            if "Condition" not in output or template.conditions[output["Condition"]]
        }
        self.stacks[tenant_id] = stack
        return stack

    def delete(self, tenant_id: str) -> HospitalStack:
        stack = self.stacks.get(tenant_id)
        if stack is None:
            raise KeyError(tenant_id)
        order = sorted(stack.physical_ids, key=lambda k: -self._rank(stack, k))
        self._delete_resources(stack, order)
        del self.stacks[tenant_id]
        return stack

    @staticmethod
    def _rank(stack: HospitalStack, logical_id: str) -> int:
        return CREATION_ORDER.index(stack.types[logical_id])

    # --- each resource type ------------------------------------------------------------

    def _put(self, stack: HospitalStack, logical_id: str, kind: str, props: dict[str, Any]) -> None:
        exists = logical_id in stack.physical_ids
        if kind == "Custom::CareLoopTenant":
            self._custom(stack, logical_id, props, "Update" if exists else "Create")
            return
        if exists and stack.properties.get(logical_id) == props:
            return  # unchanged
        makers: dict[str, Callable[[HospitalStack, str, dict[str, Any], bool], None]] = {
            "AWS::Cognito::UserPoolUser": self._user,
            "AWS::Cognito::UserPoolUserToGroupAttachment": self._group_member,
            "AWS::SES::ConfigurationSet": self._configuration_set,
            "AWS::SES::EmailIdentity": self._email_identity,
            "AWS::SES::ConfigurationSetEventDestination": self._event_destination,
            "AWS::SMSVOICE::PhoneNumber": self._phone_number,
            "AWS::SNS::Topic": self._topic,
            "AWS::IAM::ManagedPolicy": self._managed_policy,
        }
        if kind not in makers:
            raise OnboardingFailed(f"the local onboarding cannot make a {kind}")
        makers[kind](stack, logical_id, props, exists)

    def _user(self, stack: HospitalStack, logical_id: str, props: dict[str, Any], _: bool) -> None:
        cognito = self._client("cognito-idp")
        # Kept from an earlier stack of the hospital (DeletionPolicy: Retain).
        with suppress(cognito.exceptions.UsernameExistsException):
            cognito.admin_create_user(
                UserPoolId=props["UserPoolId"],
                Username=props["Username"],
                UserAttributes=props["UserAttributes"],
                DesiredDeliveryMediums=props.get("DesiredDeliveryMediums", ["EMAIL"]),
            )
        stack.physical_ids[logical_id] = props["Username"]

    def _group_member(
        self, stack: HospitalStack, logical_id: str, props: dict[str, Any], _: bool
    ) -> None:
        self._client("cognito-idp").admin_add_user_to_group(
            UserPoolId=props["UserPoolId"], Username=props["Username"], GroupName=props["GroupName"]
        )
        stack.physical_ids[logical_id] = f"{props['Username']}:{props['GroupName']}"

    def _configuration_set(
        self, stack: HospitalStack, logical_id: str, props: dict[str, Any], exists: bool
    ) -> None:
        if not exists:
            # One set, seen by both SES APIs (moto's v2 has no event destinations).
            self._client("sesv2").create_configuration_set(ConfigurationSetName=props["Name"])
        stack.physical_ids[logical_id] = props["Name"]

    def _email_identity(
        self, stack: HospitalStack, logical_id: str, props: dict[str, Any], exists: bool
    ) -> None:
        domain = props["EmailIdentity"]
        if not exists:
            self._client("sesv2").create_email_identity(
                EmailIdentity=domain,
                ConfigurationSetName=props["ConfigurationSetAttributes"]["ConfigurationSetName"],
            )
        stack.physical_ids[logical_id] = domain
        for n in (1, 2, 3):  # the CNAMEs SES asks the hospital to publish; stand-ins here
            token = hashlib.sha256(f"{domain}{n}".encode()).hexdigest()[:32]
            stack.attributes[f"{logical_id}.DkimDNSTokenName{n}"] = f"{token}._domainkey.{domain}"
            stack.attributes[f"{logical_id}.DkimDNSTokenValue{n}"] = f"{token}.dkim.amazonses.com"

    def _event_destination(
        self, stack: HospitalStack, logical_id: str, props: dict[str, Any], exists: bool
    ) -> None:
        destination = props["EventDestination"]
        set_name = props["ConfigurationSetName"]
        if not exists:
            ses = self._client("ses")
            # moto keeps event-destination names account-wide (SES: per set) and cannot delete
            # one: locally the name carries its set's, and one left by an earlier stack of the
            # hospital is the same destination.
            with suppress(ses.exceptions.EventDestinationAlreadyExistsException):
                ses.create_configuration_set_event_destination(
                    ConfigurationSetName=set_name,
                    EventDestination={
                        "Name": f"{set_name}-{destination['Name']}",
                        "Enabled": destination["Enabled"],
                        "MatchingEventTypes": destination["MatchingEventTypes"],
                        "SNSDestination": {"TopicARN": destination["SnsDestination"]["TopicARN"]},
                    },
                )
        stack.physical_ids[logical_id] = f"{set_name}|{destination['Name']}"

    def _phone_number(
        self, stack: HospitalStack, logical_id: str, props: dict[str, Any], _: bool
    ) -> None:
        # No emulator has End User Messaging: the number is a stand-in, the same each time.
        number = stand_in_number(stack.parameters["TenantId"])
        stack.physical_ids[logical_id] = f"phone-{number.lstrip('+')}"
        stack.attributes[f"{logical_id}.PhoneNumber"] = number

    def _topic(self, stack: HospitalStack, logical_id: str, props: dict[str, Any], _: bool) -> None:
        sns = self._client("sns")
        key = props.get("KmsMasterKeyId")
        arn = sns.create_topic(
            Name=props["TopicName"],
            Attributes={"KmsMasterKeyId": key} if key else {},
            Tags=props.get("Tags", []),
        )["TopicArn"]
        for subscription in props.get("Subscription") or []:
            sns.subscribe(
                TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"]
            )
        stack.physical_ids[logical_id] = arn

    def _managed_policy(
        self, stack: HospitalStack, logical_id: str, props: dict[str, Any], exists: bool
    ) -> None:
        iam, document = self._client("iam"), json.dumps(props["PolicyDocument"])
        if exists:  # a changed document is the policy's new default version
            arn = stack.physical_ids[logical_id]
            iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
            return
        created = iam.create_policy(
            PolicyName=props["ManagedPolicyName"],
            PolicyDocument=document,
            Description=props.get("Description", ""),
        )
        stack.physical_ids[logical_id] = created["Policy"]["Arn"]

    def _custom(
        self, stack: HospitalStack, logical_id: str, props: dict[str, Any], request: str
    ) -> None:
        event: dict[str, Any] = {
            "RequestType": request,
            "ResourceType": stack.types[logical_id],
            "LogicalResourceId": logical_id,
            "ResourceProperties": props,
        }
        if request != "Create":
            event["PhysicalResourceId"] = stack.physical_ids[logical_id]
        if request == "Update":
            event["OldResourceProperties"] = stack.properties[logical_id]
        answer = self._invoke(stack, props["ServiceToken"], event)
        if answer["Status"] != "SUCCESS":
            raise OnboardingFailed(f"{logical_id} {request} failed: {answer.get('Reason')}")
        if request != "Delete":
            stack.physical_ids[logical_id] = answer["PhysicalResourceId"]
            for key, value in (answer.get("Data") or {}).items():
                stack.attributes[f"{logical_id}.{key}"] = value

    def _invoke(
        self, stack: HospitalStack, service_token: str, event: dict[str, Any]
    ) -> dict[str, Any]:
        responses = _Responses()
        try:
            request_id = str(uuid.uuid4())
            event = {
                **event,
                "RequestId": request_id,
                "ResponseURL": responses.url(request_id),
                "StackId": f"arn:aws:cloudformation:{self._region}:{self._account}:"
                f"stack/{stack.name}/{uuid.uuid5(uuid.NAMESPACE_URL, stack.name)}",
                "ServiceToken": service_token,
            }
            self._client("lambda").invoke(
                FunctionName=service_token, Payload=json.dumps(event).encode()
            )
            answer = responses.wait(request_id)
        finally:
            responses.close()
        stack.responses.append({"RequestType": event["RequestType"], **answer})
        return answer

    def _delete_policy(self, arn: str) -> None:
        iam = self._client("iam")
        for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
            if not version["IsDefaultVersion"]:
                iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
        iam.delete_policy(PolicyArn=arn)

    def _delete_resources(self, stack: HospitalStack, logical_ids: list[str]) -> None:
        for logical_id in logical_ids:
            physical = stack.physical_ids.get(logical_id)
            kind = stack.types.get(logical_id, "")
            if physical is None:
                continue
            if logical_id in stack.retained:
                stack.physical_ids.pop(logical_id)
                continue
            if kind == "Custom::CareLoopTenant":
                self._custom(stack, logical_id, stack.properties[logical_id], "Delete")
            elif kind == "AWS::SNS::Topic":
                self._client("sns").delete_topic(TopicArn=physical)
            elif kind == "AWS::IAM::ManagedPolicy":
                self._delete_policy(physical)
            elif kind == "AWS::SES::ConfigurationSetEventDestination":
                pass  # goes with its configuration set (moto has no call to delete one)
            elif kind == "AWS::SES::EmailIdentity":
                self._client("sesv2").delete_email_identity(EmailIdentity=physical)
            elif kind == "AWS::SES::ConfigurationSet":
                self._client("sesv2").delete_configuration_set(ConfigurationSetName=physical)
            stack.physical_ids.pop(logical_id)
            stack.properties.pop(logical_id, None)
