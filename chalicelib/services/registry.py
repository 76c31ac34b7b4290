"""Builds the services once per process, bound to the configured table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from chalicelib.adapters.accounts import Accounts
from chalicelib.adapters.channels import Channels
from chalicelib.adapters.executions import Executions
from chalicelib.adapters.import_files import ImportFiles
from chalicelib.adapters.kms import KeyService
from chalicelib.adapters.table_exports import TableExports
from chalicelib.adapters.tenant_credentials import TenantCredentials
from chalicelib.adapters.webhooks import WebhookCaller
from chalicelib.domain.common import Document
from chalicelib.services.account_links import AccountLinkService
from chalicelib.services.aftercare import Aftercare
from chalicelib.services.analytics import AnalyticsService
from chalicelib.services.appointment_journey import AppointmentJourneyService
from chalicelib.services.appointments import AppointmentService
from chalicelib.services.audit import AuditService
from chalicelib.services.campaigns import CampaignService
from chalicelib.services.care_config import CareConfigService
from chalicelib.services.complaints import ComplaintService
from chalicelib.services.deliveries import Deliveries
from chalicelib.services.devices import DeviceService
from chalicelib.services.draws import DrawService
from chalicelib.services.erasure import ErasureService
from chalicelib.services.fhir import FhirService
from chalicelib.services.fhir_bulk_import import BulkImportService
from chalicelib.services.fhir_import import FhirImportService
from chalicelib.services.inbound import InboundMessages
from chalicelib.services.journey_previews import JourneyPreviews
from chalicelib.services.keyring import Keyring
from chalicelib.services.loyalty import LoyaltyService
from chalicelib.services.owed_messages import OwedMessages
from chalicelib.services.patients import PatientService
from chalicelib.services.questionnaires import QuestionnaireService
from chalicelib.services.recall import RecallService
from chalicelib.services.referrals import ReferralService
from chalicelib.services.responses import ResponseService
from chalicelib.services.satisfaction import SatisfactionService
from chalicelib.services.scheduling import SchedulingService
from chalicelib.services.segments import SegmentService
from chalicelib.services.staff import StaffService
from chalicelib.services.staff_queue import JourneyFailures, StaffQueue
from chalicelib.services.table_exports import TableExportService
from chalicelib.services.tasks import TaskService
from chalicelib.services.templates import TemplateService
from chalicelib.services.tenants import TenantService
from chalicelib.services.timelines import Timelines
from chalicelib.services.webhooks import WebhookService
from chalicelib.settings import get_settings
from chalicelib.store.account_links import AccountLinkRepository
from chalicelib.store.analytics import AnalyticsRepository
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.audit import AuditRepository
from chalicelib.store.campaigns import CampaignRepository
from chalicelib.store.care import CareRepository
from chalicelib.store.complaints import ComplaintRepository
from chalicelib.store.config import ConfigRepository
from chalicelib.store.contacts import ContactRepository
from chalicelib.store.data_keys import DataKeyRepository
from chalicelib.store.devices import DeviceRepository
from chalicelib.store.draws import DrawRepository
from chalicelib.store.erasure import ErasureRepository
from chalicelib.store.fhir_imports import FhirImportRepository
from chalicelib.store.journey_records import JourneyRecordRepository
from chalicelib.store.loyalty import LedgerRepository
from chalicelib.store.messages import DeliveryRepository, StaffTaskRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.referrals import ReferralRepository
from chalicelib.store.responses import ResponseRepository
from chalicelib.store.satisfaction import SatisfactionRepository
from chalicelib.store.sealing import use_keys
from chalicelib.store.segments import SegmentRepository
from chalicelib.store.signing import sign_tenant_data_with
from chalicelib.store.staff import StaffRepository
from chalicelib.store.tenants import TenantRepository
from chalicelib.store.webhooks import WebhookRepository


@dataclass(frozen=True)
class Services:
    tenants: TenantService
    patients: PatientService
    scheduling: SchedulingService
    appointments: AppointmentService
    tasks: TaskService
    templates: TemplateService
    devices: DeviceService
    questionnaires: QuestionnaireService
    responses: ResponseService
    appointment_journey: AppointmentJourneyService
    journey_previews: JourneyPreviews
    timelines: Timelines
    inbound: InboundMessages
    care_config: CareConfigService
    aftercare: Aftercare
    recall: RecallService
    segments: SegmentService
    campaigns: CampaignService
    journey_failures: JourneyFailures
    staff: StaffService
    account_links: AccountLinkService
    audit: AuditService
    erasure: ErasureService
    fhir: FhirService
    fhir_import: FhirImportService
    fhir_bulk_import: BulkImportService
    webhooks: WebhookService
    analytics: AnalyticsService
    table_exports: TableExportService
    referrals: ReferralService
    draws: DrawService
    loyalty: LoyaltyService
    owed_messages: OwedMessages
    complaints: ComplaintService
    satisfaction: SatisfactionService


@cache
def services() -> Services:  # noqa: PLR0915 - the one composition root: a line per service
    """The one place services are built: the API, the journey tasks and the SNS handlers all
    use these (one repository of each kind per container)."""
    role = get_settings().tenant_data_role_arn
    sign_tenant_data_with(TenantCredentials(role).frozen_for if role else None)
    keyring = Keyring(DataKeyRepository(), KeyService())
    use_keys(keyring)  # the store seals PHI fields with each tenant's keys
    tenant_repository = TenantRepository()
    tenants = TenantService(tenant_repository)
    patients = PatientRepository()
    config = ConfigRepository()
    appointments = AppointmentRepository()
    staff_tasks = StaffTaskRepository()
    deliveries = DeliveryRepository()
    contacts = ContactRepository()
    devices = DeviceRepository()
    responses = ResponseRepository()
    care = CareRepository()
    channels = Channels()
    executions = Executions()
    queue = StaffQueue(staff_tasks, channels)
    sender = Deliveries(
        deliveries, contacts, config, devices, channels, queue, get_settings().sender_email
    )
    questionnaire_service = QuestionnaireService(config)
    # Told of appointment status changes, submitted responses and urgent alerts (below).
    webhooks = WebhookService(
        WebhookRepository(),
        executions,
        WebhookCaller(),
        tenant_repository,
        appointments,
        responses,
        staff_tasks,
        questionnaire_service,
    )
    care_config = CareConfigService(config, tenants, questionnaire_service)
    segment_repository = SegmentRepository()
    segment_service = SegmentService(segment_repository, patients, tenants)

    staff_records = StaffRepository()
    complaint_repository, ledger = ComplaintRepository(), LedgerRepository()
    owed = OwedMessages(SatisfactionRepository(), tenant_repository, patients, sender)
    audit = AuditService(
        AuditRepository(),
        keyring,
        tenants,
        staff_records,
        channels.publish,
    )
    complaints = ComplaintService(
        complaint_repository,
        owed,
        tenant_repository,
        patients,
        appointments,
        staff_records,
        queue,
        check_access=audit.check_departments,
    )
    satisfaction = SatisfactionService(
        SatisfactionRepository(), complaints, tenant_repository, patients, appointments, care
    )

    def flag_high_risk(tenant_id: str, response: Document) -> None:
        segment_service.flag_high_risk(tenant_id, response["patient_id"], "urgent-answer")

    aftercare = Aftercare.build(
        care,
        tenant_repository,
        patients,
        responses,
        care_config,
        sender,
        queue,
        executions,
        on_urgent=(flag_high_risk, webhooks.urgent_alert),
        builtin_plans=satisfaction.plans_for,
    )
    recall = RecallService(
        care,
        tenant_repository,
        patients,
        appointments,
        care_config,
        sender,
        queue,
        executions,
        segment_repository,
    )
    care_config.on_rule_saved.append(recall.start_backfill)

    def submitted(tenant_id: str, response: Document) -> None:
        aftercare.reactions.submitted(tenant_id, response)
        satisfaction.submitted(tenant_id, response)

    analytics_counters = AnalyticsRepository()
    campaign_repository = CampaignRepository()
    referrals = ReferralService(ReferralRepository(), patients, segment_repository, tenants)
    patient_service = PatientService(
        patients,
        tenants,
        appointments,
        contacts,
        on_changed=(recall.on_patient_changed,),
        check_access=audit.check_departments,
        referral_of=referrals.for_new_patient,
    )
    appointment_service = AppointmentService(
        appointments,
        config,
        patients,
        tenants,
        queue,
        executions,
        deliveries,
        on_booked=(recall.on_booked, aftercare.reactions.on_booked),
        on_status_changed=(webhooks.appointment_changed,),
        check_access=audit.check_departments,
    )
    accounts = Accounts()
    fhir = FhirService(
        patient_service,
        tenants,
        appointments,
        appointment_service.present,
        responses,
        deliveries,
        care,
        questionnaire_service,
        config,
    )

    def publish_event(event: Document) -> None:
        channels.publish(
            get_settings().events_topic_arn,
            event["type"],
            json.dumps(event),
            {"event_type": event["type"]},
        )

    def history_visit(tenant_id: str, event: Document) -> None:
        recall.on_visit(event)

    fhir_import = FhirImportService(
        tenants,
        patients,
        appointments,
        config,
        appointment_service.after_commit,
        publish_event,
        on_patient_changed=(recall.on_patient_changed,),
        on_booked=(recall.on_booked, aftercare.reactions.on_booked),
        on_history_visit=(history_visit,),
    )
    settings = get_settings()
    return Services(
        referrals=referrals,
        draws=DrawService(DrawRepository(), segment_service, tenants),
        owed_messages=owed,
        loyalty=LoyaltyService(
            ledger,
            patients,
            patient_service,
            appointments,
            tenant_repository,
            referrer_of=referrals.rewarded_referrer,
            owed=owed,
        ),
        complaints=complaints,
        satisfaction=satisfaction,
        table_exports=TableExportService(
            TableExports(), settings.table_name, settings.table_arn, settings.export_bucket
        ),
        fhir_import=fhir_import,
        fhir_bulk_import=BulkImportService(
            FhirImportRepository(), ImportFiles(), executions, tenants, fhir_import
        ),
        staff=StaffService(staff_records, tenants, accounts),
        audit=audit,
        erasure=ErasureService(
            patients,
            appointments,
            deliveries,
            care.for_patient,
            devices,
            ErasureRepository(),
            audit,
            executions,
            channels,
            queue,
            forget_elsewhere=(
                analytics_counters.forget_patient,
                complaint_repository.forget_patient,
                referrals.forget,
            ),
        ),
        fhir=fhir,
        webhooks=webhooks,
        analytics=AnalyticsService(
            analytics_counters,
            tenant_repository,
            patients,
            appointments,
            deliveries,
            staff_records,
            care,
            staff_tasks,
            config,
            campaign_repository,
            responses,
            complaint_repository,
            ledger,
        ),
        account_links=AccountLinkService(
            AccountLinkRepository(),
            accounts,
            tenants,
            patient_service,
            contacts,
            channels,
            get_settings().sender_email,
        ),
        tenants=tenants,
        patients=patient_service,
        scheduling=SchedulingService(config, appointments, tenants),
        appointments=appointment_service,
        tasks=TaskService(staff_tasks, deliveries, patient_service),
        templates=TemplateService(config, tenant_repository),
        devices=DeviceService(devices, channels),
        questionnaires=questionnaire_service,
        responses=ResponseService(
            responses,
            patients,
            questionnaire_service,
            submitted,
            on_saved=(webhooks.response_submitted,),
            check_access=audit.check_departments,
        ),
        journey_previews=JourneyPreviews(tenants, sender, care_config),
        timelines=Timelines(
            appointment_service,
            appointments,
            JourneyRecordRepository(),
            patient_service,
            patients,
            tenants,
            care,
            deliveries,
            staff_tasks,
            responses,
        ),
        appointment_journey=AppointmentJourneyService(
            tenant_repository,
            patients,
            appointments,
            sender,
            queue,
            JourneyRecordRepository(),
            publish_event,
            on_status_changed=(webhooks.appointment_changed,),
        ),
        inbound=InboundMessages(
            contacts, tenant_repository, patients, appointment_service, deliveries, channels
        ),
        journey_failures=JourneyFailures(queue, appointments),
        care_config=care_config,
        aftercare=aftercare,
        recall=recall,
        segments=segment_service,
        campaigns=CampaignService(
            campaign_repository,
            segment_service,
            tenants,
            patients,
            sender,
            executions,
            analytics_counters,
        ),
    )
