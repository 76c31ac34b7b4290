"""Builds the services once per process, bound to the configured table."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from chalicelib.services.appointments import AppointmentService
from chalicelib.services.devices import DeviceService
from chalicelib.services.patients import PatientService
from chalicelib.services.questionnaires import QuestionnaireService
from chalicelib.services.responses import ResponseService
from chalicelib.services.scheduling import SchedulingService
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.services.tasks import TaskService
from chalicelib.services.templates import TemplateService
from chalicelib.services.tenants import TenantService
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.config import ConfigRepository
from chalicelib.store.devices import DeviceRepository
from chalicelib.store.messages import DeliveryRepository, StaffTaskRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.responses import ResponseRepository
from chalicelib.store.tenants import TenantRepository


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


@cache
def services() -> Services:
    tenants = TenantService(TenantRepository())
    patients = PatientRepository()
    config = ConfigRepository()
    appointments = AppointmentRepository()
    patient_service = PatientService(patients, tenants, appointments)
    questionnaire_service = QuestionnaireService(config)
    return Services(
        tenants=tenants,
        patients=patient_service,
        scheduling=SchedulingService(config, appointments, tenants),
        appointments=AppointmentService(
            appointments, config, patients, tenants, StaffQueue(StaffTaskRepository())
        ),
        tasks=TaskService(StaffTaskRepository(), DeliveryRepository(), patient_service),
        templates=TemplateService(config),
        devices=DeviceService(DeviceRepository()),
        questionnaires=questionnaire_service,
        responses=ResponseService(ResponseRepository(), questionnaire_service),
    )
