"""Provisions the platform into the emulator from `infra/platform.yaml`: the one definition that
deploys to AWS, never a second copy written here.

moto's CloudFormation creates the plain resources (table, topics). What it cannot do is done
through the service APIs with values resolved from the same template:
- S3 buckets are plain resources too (moto keeps a bucket's encryption, not its lifecycle rule
  or public access block; its bucket policy is not made);
- the SAM transform is not expanded, so `AWS::Serverless::StateMachine` definitions are read from
  their `DefinitionUri` and created through Step Functions with their substitutions applied;
- the table's TTL specification is dropped, so it is applied with UpdateTimeToLive, and its
  point-in-time recovery (which exports need) with UpdateContinuousBackups;
- Glue, Athena and the S3 bucket policies are not made: nothing local reads them (the export
  test reads the Glue table's columns and the queries' SQL from this template itself);
- `AWS::SES::EmailIdentity` is skipped, so the identity is verified through SES;
- Cognito has no CloudFormation model, so the user pool, its groups and its app client are
  created through cognito-idp with the template's properties (moto's pool then issues ID
  tokens and serves their JWKS, as Cognito does);
- `AWS::Lambda::EventInvokeConfig`'s retries are read for the in-process asynchronous
  invocations (local/dead_letters.py); the dead-letter queue itself is a plain queue;
- the Lambda functions come from `chalice package` on AWS; here each `@app.lambda_function`
  is registered under the name and logical id Chalice would give it.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalice.utils import to_cfn_resource_name

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "platform.yaml"
STACK_TYPES = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::KMS::Key",
        "AWS::IAM::Role",
        "AWS::S3::Bucket",
    }
)
ClientFactory = Callable[[str], Any]


@dataclass
class Provisioned:
    stack_name: str
    parameters: dict[str, str]
    region: str
    account: str
    physical_ids: dict[str, str] = field(default_factory=dict)  # logical id → Ref value
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)  # (id, attr) → GetAtt
    function_environment: dict[str, str] = field(default_factory=dict)  # from Globals
    # function logical id → MaximumRetryAttempts of its asynchronous invocations
    async_retries: dict[str, int] = field(default_factory=dict)

    def ref(self, logical_id: str) -> str:
        return self.physical_ids[logical_id]


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    # cfn-lint's loader understands the short forms (!Ref, !Sub, !GetAtt); a JSON round trip
    # turns its node types into plain dicts and lists.
    template: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(path))))
    return template


class _Resolver:
    def __init__(self, provisioned: Provisioned, region: str, account: str) -> None:
        self._p = provisioned
        self.region = region
        self._pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::StackName": provisioned.stack_name,
        }

    def _name(self, name: str) -> str:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._p.parameters:
            return self._p.parameters[name]
        if "." in name:
            logical, attribute = name.split(".", 1)
            return self._p.attributes[(logical, attribute)]
        return self._p.physical_ids[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self._name(arg)
            if fn == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._p.attributes[(logical, attribute)]
            if fn == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                extra = {k: self.resolve(v) for k, v in extra.items()}
                return re.sub(
                    r"\$\{([^}!]+)\}", lambda m: extra.get(m[1]) or self._name(m[1]), text
                )
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# runs in-process in the local runtime\n")
    return buffer.getvalue()


def _role(iam: Any, name: str, service: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        return str(created["Role"]["Arn"])


def tenant_data_role(iam: Any, stage: str = "local") -> str:
    """The tenant data role under the name the packaged template gives it (infra/package.py)."""
    return _role(iam, f"careloop-{stage}-tenant-data", "lambda.amazonaws.com")


def _create_stack(
    client: ClientFactory, provisioned: Provisioned, template: dict[str, Any]
) -> None:
    """Plain resources through moto's CloudFormation, then what it drops (TTL)."""
    cfn = client("cloudformation")
    stack_resources = {k: v for k, v in template["Resources"].items() if v["Type"] in STACK_TYPES}
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": template.get("Parameters", {}),
        "Resources": stack_resources,
    }
    cfn.create_stack(
        StackName=provisioned.stack_name,
        TemplateBody=json.dumps(body),
        Parameters=[
            {"ParameterKey": k, "ParameterValue": v} for k, v in provisioned.parameters.items()
        ],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    described = cfn.describe_stack_resources(StackName=provisioned.stack_name)
    for resource in described["StackResources"]:
        provisioned.physical_ids[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    dynamodb = client("dynamodb")
    for logical_id, spec in stack_resources.items():
        if spec["Type"] == "AWS::DynamoDB::Table":
            table = dynamodb.describe_table(TableName=provisioned.ref(logical_id))["Table"]
            provisioned.attributes[(logical_id, "Arn")] = table["TableArn"]
            if "LatestStreamArn" in table:
                provisioned.attributes[(logical_id, "StreamArn")] = table["LatestStreamArn"]
            # Dropped too: point-in-time recovery, which an export of the table needs.
            recovery = spec["Properties"].get("PointInTimeRecoverySpecification", {})
            if recovery.get("PointInTimeRecoveryEnabled"):
                dynamodb.update_continuous_backups(
                    TableName=table["TableName"],
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )
            ttl = spec["Properties"].get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                dynamodb.update_time_to_live(
                    TableName=table["TableName"],
                    TimeToLiveSpecification={
                        "Enabled": True,
                        "AttributeName": ttl["AttributeName"],
                    },
                )
        elif spec["Type"] == "AWS::KMS::Key":
            # Built, not described: moto's CloudFormation stores the key policy as a map, and
            # DescribeKey then fails to parse it (the keys' own operations do not read it).
            key_id = provisioned.ref(logical_id)
            arn = f"arn:aws:kms:{provisioned.region}:{provisioned.account}:key/{key_id}"
            provisioned.attributes[(logical_id, "Arn")] = arn
            provisioned.attributes[(logical_id, "KeyId")] = key_id
        elif spec["Type"] == "AWS::SNS::Topic":
            arn = provisioned.ref(logical_id)
            provisioned.attributes[(logical_id, "TopicArn")] = arn
            provisioned.attributes[(logical_id, "TopicName")] = arn.rsplit(":", 1)[1]
        elif spec["Type"] == "AWS::S3::Bucket":
            # moto keeps the encryption, not the lifecycle rule or the public access block.
            name = provisioned.ref(logical_id)
            provisioned.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"


def _register_functions(
    client: ClientFactory,
    provisioned: Provisioned,
    app_name: str,
    stage: str,
    lambda_names: list[str],
) -> None:
    """The app's Lambda functions, under the names and logical ids Chalice gives them."""
    lam = client("lambda")
    role = _role(client("iam"), f"{app_name}-{stage}-lambda", "lambda.amazonaws.com")
    for name in lambda_names:
        function = f"{app_name}-{stage}-{name}"
        created = lam.create_function(
            FunctionName=function,
            Runtime="python3.11",
            Role=role,
            Handler=f"app.{name}",
            Code={"ZipFile": _dummy_zip()},
        )
        logical_id = to_cfn_resource_name(name)
        provisioned.physical_ids[logical_id] = function
        provisioned.attributes[(logical_id, "Arn")] = created["FunctionArn"]


def _create_state_machine(
    sfn: Any,
    role: str,
    resolver: _Resolver,
    logical_id: str,
    props: dict[str, Any],
    template_dir: Path,
) -> str:
    definition = (template_dir / props["DefinitionUri"]).read_text()
    for key, value in resolver.resolve(props.get("DefinitionSubstitutions", {})).items():
        definition = definition.replace("${" + key + "}", str(value))
    if "${" in definition:
        missing = sorted(set(re.findall(r"\$\{(\w+)\}", definition)))
        raise ValueError(f"{logical_id}: unresolved placeholders {missing}")
    created = sfn.create_state_machine(
        name=resolver.resolve(props.get("Name", logical_id)),
        definition=definition,
        roleArn=role,
        type=props.get("Type", "STANDARD"),
    )
    return str(created["stateMachineArn"])


# CloudFormation's UserPool properties that CreateUserPool takes under the same name, and the
# one it names differently. (EnabledMfas is SetUserPoolMfaConfig's: nothing local checks MFA.)
_POOL_PROPERTIES = (
    "Policies",
    "Schema",
    "UsernameAttributes",
    "AutoVerifiedAttributes",
    "MfaConfiguration",
    "AccountRecoverySetting",
    "DeletionProtection",
    "UserPoolTags",
    "UsernameConfiguration",
    "UserAttributeUpdateSettings",
    "AdminCreateUserConfig",
)
_CLIENT_PROPERTIES = (
    "GenerateSecret",
    "ExplicitAuthFlows",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "IdTokenValidity",
    "AccessTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
    "ReadAttributes",
    "WriteAttributes",
)


def _create_identity(
    client: ClientFactory,
    provisioned: Provisioned,
    resolver: _Resolver,
    resources: dict[str, Any],
) -> None:
    """The user pool first (groups and clients refer to it), then its groups and app clients."""
    cognito = client("cognito-idp")

    def of_type(kind: str) -> list[tuple[str, dict[str, Any]]]:
        # Resolved only when their turn comes: a group's pool exists by then.
        return [
            (logical_id, resolver.resolve(spec.get("Properties", {})))
            for logical_id, spec in resources.items()
            if spec["Type"] == kind
        ]

    for logical_id, props in of_type("AWS::Cognito::UserPool"):
        pool = cognito.create_user_pool(
            PoolName=props["UserPoolName"],
            **{name: props[name] for name in _POOL_PROPERTIES if name in props},
        )["UserPool"]
        provisioned.physical_ids[logical_id] = pool["Id"]
        provisioned.attributes[(logical_id, "Arn")] = pool["Arn"]
        provisioned.attributes[(logical_id, "ProviderURL")] = (
            f"https://cognito-idp.{resolver.region}.amazonaws.com/{pool['Id']}"
        )
    for _, props in of_type("AWS::Cognito::UserPoolGroup"):
        cognito.create_group(
            UserPoolId=props["UserPoolId"],
            GroupName=props["GroupName"],
            Precedence=int(props.get("Precedence", 0)),
            Description=props.get("Description", ""),
        )
    for logical_id, props in of_type("AWS::Cognito::UserPoolClient"):
        created = cognito.create_user_pool_client(
            UserPoolId=props["UserPoolId"],
            ClientName=props["ClientName"],
            **{name: props[name] for name in _CLIENT_PROPERTIES if name in props},
        )["UserPoolClient"]
        provisioned.physical_ids[logical_id] = created["ClientId"]


def provision(
    client: ClientFactory,
    *,
    app_name: str,
    stage: str,
    lambda_names: list[str],
    region: str,
    account: str,
    parameters: dict[str, str] | None = None,
    template_path: Path = TEMPLATE,
) -> Provisioned:
    template = load_template(template_path)
    params = {
        name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
    }
    params.update({"Stage": stage, **(parameters or {})})
    provisioned = Provisioned(
        stack_name=f"{app_name}-{stage}", parameters=params, region=region, account=account
    )
    _create_stack(client, provisioned, template)
    _register_functions(client, provisioned, app_name, stage, lambda_names)
    resolver = _Resolver(provisioned, region, account)
    _create_identity(client, provisioned, resolver, template["Resources"])

    # What moto's CloudFormation skips: SAM state machines and the SES identity.
    sfn = client("stepfunctions")
    sfn_role = _role(client("iam"), f"{app_name}-{stage}-states", "states.amazonaws.com")
    for logical_id, spec in template["Resources"].items():
        props = spec.get("Properties", {})
        if spec["Type"] == "AWS::SES::EmailIdentity":
            client("ses").verify_email_identity(
                EmailAddress=resolver.resolve(props["EmailIdentity"])
            )
        elif spec["Type"] == "AWS::Lambda::EventInvokeConfig":
            function = props["FunctionName"]["Ref"]
            provisioned.async_retries[function] = int(props.get("MaximumRetryAttempts", 2))
        elif spec["Type"] == "AWS::Serverless::StateMachine":
            arn = _create_state_machine(
                sfn, sfn_role, resolver, logical_id, props, template_path.parent
            )
            provisioned.physical_ids[logical_id] = arn
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    for name, value in globals_env.get("Variables", {}).items():
        provisioned.function_environment[name] = str(resolver.resolve(value))
    return provisioned
