"""Step Functions step handlers of the bulk FHIR import (statemachines/fhir-import.asl.json).
Thin: validate the input, one service call, return what the state machine reads."""

from __future__ import annotations

from chalicelib.domain.step_results import FhirImportFailed, FhirImportPage
from chalicelib.handlers.runner import Event, step_handler
from chalicelib.services.registry import services


@step_handler("fhir-import-task")
def fhir_import_page(event: Event) -> FhirImportPage:
    """One page of an import: a bounded range of the current file, its complete lines."""
    return services().fhir_bulk_import.page(event)


@step_handler("fhir-import-failed")
def fhir_import_failed(event: Event) -> FhirImportFailed:
    """A page that failed after every retry: the import ends failed, naming the error."""
    return services().fhir_bulk_import.failed(event)
