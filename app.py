"""CareLoop's Chalice composition root: routes, Lambda functions, middleware. Nothing else."""

from __future__ import annotations

from chalice.app import Chalice, ConvertToMiddleware, Cron, Rate

from chalicelib.api import (
    accounts,
    appointments,
    audit,
    campaigns,
    care,
    complaints,
    draws,
    erasure,
    fhir,
    meta,
    patients,
    previews,
    questionnaires,
    referrals,
    scheduling,
    segments,
    tasks,
    templates,
    tenants,
    webhooks,
)
from chalicelib.api import (
    analytics as analytics_api,
)
from chalicelib.api import (
    loyalty as loyalty_api,
)
from chalicelib.api.http import normalise_chalice_errors
from chalicelib.handlers import (
    analytics,
    appointment_journey,
    inbound,
    journey_failures,
    loyalty,
    privacy,
    provisioning,
    smoke,
    table_exports,
)
from chalicelib.handlers import campaigns as campaign_tasks
from chalicelib.handlers import care as care_tasks
from chalicelib.handlers import complaints as complaint_tasks
from chalicelib.handlers import fhir_imports as fhir_import_tasks
from chalicelib.handlers import webhooks as webhook_tasks
from chalicelib.observability import logger, metrics
from chalicelib.settings import deployment_stage

# configure_logs=False: Powertools' Logger owns logging (see chalicelib/observability.py).
app = Chalice(app_name="careloop", configure_logs=False)

# Every log line carries the API Gateway request id, so one request can be followed end to end.
app.register_middleware(
    ConvertToMiddleware(
        logger.inject_lambda_context(
            clear_state=True, correlation_id_path="requestContext.requestId"
        )
    )
)
app.register_middleware(ConvertToMiddleware(metrics.log_metrics))
app.register_middleware(normalise_chalice_errors, "http")

for routes in (
    meta.api,
    tenants.api,
    patients.api,
    previews.api,
    scheduling.api,
    appointments.api,
    tasks.api,
    templates.api,
    questionnaires.api,
    care.api,
    segments.api,
    campaigns.api,
    accounts.api,
    audit.api,
    erasure.api,
    fhir.api,
    webhooks.api,
    analytics_api.api,
    referrals.api,
    draws.api,
    loyalty_api.api,
    complaints.api,
):
    app.register_blueprint(routes.blueprint)

# Step Functions tasks. Chalice names each Lambda's handler after the function (app.<name>),
# so every handler is bound here under its own name.
record_smoke_run = app.lambda_function(name="smoke_record")(smoke.record_smoke_run)
# The appointment journey: one function takes each step (the machine loops: wait, take, next).
appointment_journey_step = app.lambda_function(name="appointment_journey_step")(
    appointment_journey.appointment_journey_step
)
appointment_journey_skip = app.lambda_function(name="appointment_journey_skip")(
    appointment_journey.appointment_journey_skip
)
# Every journey's last resort: a step that failed after all its retries opens a staff task.
journey_step_failed = app.lambda_function(name="journey_step_failed")(
    journey_failures.journey_step_failed
)
campaign_batch = app.lambda_function(name="campaign_batch")(campaign_tasks.campaign_batch)
campaign_send = app.lambda_function(name="campaign_send")(campaign_tasks.campaign_send)
campaign_send_failed = app.lambda_function(name="campaign_send_failed")(
    campaign_tasks.campaign_send_failed
)

# Outbound webhooks: one signed delivery (retried by its state machine), then the dead letter.
webhook_deliver = app.lambda_function(name="webhook_deliver")(webhook_tasks.webhook_deliver)
webhook_dead_letter = app.lambda_function(name="webhook_dead_letter")(
    webhook_tasks.webhook_dead_letter
)

# Bulk FHIR imports: one page of a hospital's NDJSON files at a time, then the failure's mark.
fhir_import_page = app.lambda_function(name="fhir_import_page")(fhir_import_tasks.fhir_import_page)
fhir_import_failed = app.lambda_function(name="fhir_import_failed")(
    fhir_import_tasks.fhir_import_failed
)

aftercare_task = app.lambda_function(name="aftercare_task")(care_tasks.aftercare_task)
recall_task = app.lambda_function(name="recall_task")(care_tasks.recall_task)
recall_backfill = app.lambda_function(name="recall_backfill")(care_tasks.recall_backfill)

# The custom resource of every hospital's stack (infra/hospital.yaml).
tenant_provisioner = app.lambda_function(name="tenant_provisioner")(provisioning.tenant_provisioner)

# Every day at 01:00 UTC (09:00 in China): start the recalls that became due. Recall messages
# themselves go out at 10:00 in each patient's own time zone.
recall_sweep = app.schedule(Cron(0, 1, "*", "*", "?", "*"), name="recall_sweep")(
    care_tasks.recall_sweep
)

# Every 10 minutes: a booking, reschedule or cancel that committed but could not start or stop
# its execution at once (throttled, failing) gets it started or stopped from its marker.
repair_sweep = app.schedule(Rate(10, unit=Rate.MINUTES), name="repair_sweep")(
    appointment_journey.repair_sweep
)

# Every 15 minutes: complaints past their deadline escalate to their departments' leads (a Query
# of the deadline index per tenant), and messages owed to patients that quiet hours held back
# (a complaint's answer, a promoter's thank-you) go out.
complaint_sweep = app.schedule(Rate(15, unit=Rate.MINUTES), name="complaint_sweep")(
    complaint_tasks.complaint_sweep
)

# Daily at 02:30 UTC: deleted patients past their tenant's retention are erased.
retention_sweep = app.schedule(Cron(30, 2, "*", "*", "?", "*"), name="retention_sweep")(
    privacy.retention_sweep
)

# Daily at 17:00 UTC (01:00 in China, where the hospitals are: their day is over): the table is
# exported to S3 for analysts (Athena, infra/athena/). An export reads the table's point-in-time
# backup, not the table, so it takes nothing from the day's traffic at any hour.
analytics_export = app.schedule(Cron(0, 17, "*", "*", "?", "*"), name="analytics_export")(
    table_exports.analytics_export
)

# SNS handlers: two-way SMS replies and SES feedback arrive on the platform's topics; a visit
# that took place (journey-events) starts its care plans and restarts recall counts.
_topic = f"careloop-{deployment_stage()}-{{}}".format
inbound_sms = app.on_sns_message(topic=_topic("inbound-sms"))(inbound.inbound_sms)
email_feedback = app.on_sns_message(topic=_topic("email-feedback"))(inbound.email_feedback)
journey_event = app.on_sns_message(topic=_topic("journey-events"))(care_tasks.journey_event)

# The table's stream moves the analytics counters (chalicelib/domain/analytics.py). The ARN is
# the table's stream as infra/package.py names it (`!GetAtt CareLoopTable.StreamArn`); locally
# the runtime polls the emulator's stream and delivers to this handler (local/streams.py).
analytics_stream = app.on_dynamodb_record(
    stream_arn=f"arn:aws:dynamodb:::table/careloop-{deployment_stage()}/stream/latest",
    name="analytics_stream",
    batch_size=100,
    starting_position="TRIM_HORIZON",
    maximum_batching_window_in_seconds=5,
)(analytics.analytics_stream)

# The same stream gives loyalty the journeys' records it earns points from (a booking linked to
# a recall or a re-check, a visit attended or missed, a check-in answered), each function with
# its own filter (chalicelib/handlers/stream_filters.py).
loyalty_stream = app.on_dynamodb_record(
    stream_arn=f"arn:aws:dynamodb:::table/careloop-{deployment_stage()}/stream/latest",
    name="loyalty_stream",
    batch_size=100,
    starting_position="TRIM_HORIZON",
    maximum_batching_window_in_seconds=5,
)(loyalty.loyalty_stream)

# Daily at 16:05 UTC (00:05 in China): points that expired leave their balances, oldest first.
loyalty_expiry_sweep = app.schedule(Cron(5, 16, "*", "*", "?", "*"), name="loyalty_expiry_sweep")(
    loyalty.loyalty_expiry_sweep
)
