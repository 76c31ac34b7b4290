"""Environment → typed settings, read once, lazily.

Nothing else in `chalicelib` reads `os.environ`: it asks `get_settings()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_name: str
    jwt_issuer: str
    jwt_audience: str
    jwks_url: str
    aws_endpoint_url: str | None
    max_body_bytes: int
    appointment_journey_arn: str
    aftercare_journey_arn: str
    recall_journey_arn: str
    recall_backfill_arn: str
    staff_topic_arn: str
    events_topic_arn: str
    sender_email: str
    app_link_base: str
    push_application_arn: str
    user_pool_id: str = ""
    # The API's data access, fenced per tenant by IAM (tenant_scope.py); empty: the own role.
    tenant_data_role_arn: str = ""
    campaign_driver_arn: str = ""
    campaign_outreach_arn: str = ""
    data_key_arn: str = ""  # the platform's KMS key: it wraps each tenant's data key
    webhook_delivery_arn: str = ""  # the webhook state machine: one execution per delivery
    fhir_import_arn: str = ""  # the bulk FHIR import machine: one execution per import (part)
    import_bucket: str = ""  # hospitals' import files, each under `<tenant id>/`
    analytics_table_name: str = ""  # counters kept from the table's stream
    table_arn: str = ""  # the table, as its daily export to S3 names it
    export_bucket: str = ""  # the table's daily exports, read by analysts through Athena
    # Only the local stage may call a webhook on its own loopback receiver (local/); every
    # other stage refuses loopback addresses like any internal one.
    allow_loopback_webhooks: bool = False

    @property
    def is_local(self) -> bool:
        return self.stage == "local"


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"missing required environment variable {name}")
    return value


def deployment_stage() -> str:
    """The stage name alone, for what must be named when app.py is imported (SNS topics)."""
    return os.environ.get("CARELOOP_STAGE", "prod")


@cache
def get_settings() -> Settings:
    issuer = _required("JWT_ISSUER").rstrip("/")
    return Settings(
        stage=deployment_stage(),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        table_name=_required("TABLE_NAME"),
        jwt_issuer=issuer,
        jwt_audience=_required("JWT_AUDIENCE"),
        # Cognito publishes its signing keys under the issuer; the local runtime points this
        # at a file it writes.
        jwks_url=os.environ.get("JWKS_URL") or f"{issuer}/.well-known/jwks.json",
        aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        max_body_bytes=int(os.environ.get("MAX_BODY_BYTES", "65536")),
        # Journeys and messaging; empty where a function does not need them.
        appointment_journey_arn=os.environ.get("APPOINTMENT_JOURNEY_ARN", ""),
        aftercare_journey_arn=os.environ.get("AFTERCARE_JOURNEY_ARN", ""),
        recall_journey_arn=os.environ.get("RECALL_JOURNEY_ARN", ""),
        recall_backfill_arn=os.environ.get("RECALL_BACKFILL_ARN", ""),
        staff_topic_arn=os.environ.get("STAFF_TOPIC_ARN", ""),
        events_topic_arn=os.environ.get("EVENTS_TOPIC_ARN", ""),
        sender_email=os.environ.get("SENDER_EMAIL", ""),
        app_link_base=os.environ.get("APP_LINK_BASE", "https://app.careloop.example").rstrip("/"),
        push_application_arn=os.environ.get("PUSH_PLATFORM_APPLICATION_ARN", ""),
        user_pool_id=os.environ.get("USER_POOL_ID", ""),
        tenant_data_role_arn=os.environ.get("TENANT_DATA_ROLE_ARN", ""),
        campaign_driver_arn=os.environ.get("CAMPAIGN_DRIVER_ARN", ""),
        campaign_outreach_arn=os.environ.get("CAMPAIGN_OUTREACH_ARN", ""),
        data_key_arn=os.environ.get("DATA_KEY_ARN", ""),
        webhook_delivery_arn=os.environ.get("WEBHOOK_DELIVERY_ARN", ""),
        fhir_import_arn=os.environ.get("FHIR_IMPORT_ARN", ""),
        import_bucket=os.environ.get("IMPORT_BUCKET", ""),
        analytics_table_name=os.environ.get("ANALYTICS_TABLE_NAME", ""),
        table_arn=os.environ.get("TABLE_ARN", ""),
        export_bucket=os.environ.get("EXPORT_BUCKET", ""),
        allow_loopback_webhooks=deployment_stage() == "local",
    )
