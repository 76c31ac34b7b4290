"""The daily export of the table to S3 for analysts (a schedule). Thin: which day, one call.

A throttled or failing export call raises, so that Lambda's retries of the scheduled run (and
then the dead-letter queue) apply; the retry names the same day, hence the same export."""

from __future__ import annotations

from typing import Any

from chalicelib import clock
from chalicelib.adapters.failures import error_code
from chalicelib.domain.errors import DependencyUnavailable
from chalicelib.domain.table_exports import ExportStarted, export_day
from chalicelib.observability import logger
from chalicelib.services.registry import services


def analytics_export(event: Any) -> ExportStarted:
    """Start today's export (the schedule's UTC day) of the table to the export bucket."""
    day = export_day(getattr(event, "time", None), clock.now())
    try:
        started = services().table_exports.export(day)
    except DependencyUnavailable as exc:
        # The day and the error's code only: nothing here names a patient.
        logger.warning(
            "table export not started; the schedule's retry will start it",
            extra={"export_date": day.isoformat(), "error": _cause(exc)},
        )
        raise
    if started["requested"]:
        logger.info("table export started", extra={**started})
    else:
        logger.info("table export of the day already there: none started", extra={**started})
    return started


def _cause(exc: Exception) -> str:
    cause = exc.__cause__ or exc
    return error_code(cause) or type(cause).__name__
