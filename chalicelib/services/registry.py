"""Builds the services once per process, bound to the configured table."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from chalicelib.services.patients import PatientService
from chalicelib.services.tenants import TenantService
from chalicelib.store.patients import PatientRepository
from chalicelib.store.tenants import TenantRepository


@dataclass(frozen=True)
class Services:
    tenants: TenantService
    patients: PatientService


@cache
def services() -> Services:
    tenants = TenantService(TenantRepository())
    return Services(tenants=tenants, patients=PatientService(PatientRepository(), tenants))
