"""Analytics routes: a measure's figures by period and group, as JSON or CSV."""

from __future__ import annotations

import csv
import io

from chalicelib.api.http import ApiBlueprint, ApiRequest, ApiResponse, QueryParam
from chalicelib.domain.access import CLINIC_ROLES
from chalicelib.domain.common import Document
from chalicelib.services.analytics import MeasureReport, Overview
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="analytics")

CSV = "text/csv"


def as_csv(report: MeasureReport) -> str:
    """One line per period (and group), one column per figure, in the report's order."""
    fields = sorted({name for row in report["rows"] for name in row["values"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "group", *fields])
    for row in report["rows"]:
        values = row["values"]
        writer.writerow([row["period"], row.get("group", ""), *(values.get(f, "") for f in fields)])
    return out.getvalue()


@api.route(
    "/analytics/overview",
    "GET",
    summary="The month's headline figures beside the previous month and a year before",
    roles=CLINIC_ROLES,
    response_schema="analytics-overview",
    errors=(400, 401, 403),
    query=(QueryParam("month", "YYYY-MM in the hospital's zone (default: this month)"),),
)
def get_analytics_overview(request: ApiRequest) -> Overview:
    return services().analytics.overview(request.principal, request.query("month"))


@api.route(
    "/analytics/drifting-away",
    "GET",
    summary="The patients most at risk of being lost, with the parts of their score",
    roles=CLINIC_ROLES,
    response_schema="drifting-away",
    errors=(400, 401, 403),
    query=(QueryParam("limit", "How many patients, highest score first (1-200, default 50)"),),
)
def get_drifting_away(request: ApiRequest) -> Document:
    return services().analytics.drifting_away(request.principal, request.query("limit"))


@api.route(
    "/analytics/{measure}",
    "GET",
    summary="A measure's figures by period and group",
    roles=CLINIC_ROLES,
    response_schema="analytics-report",
    errors=(400, 401, 403, 404),
    query=(
        QueryParam(
            "from", "The first day, YYYY-MM-DD in the hospital's zone (default: a year ago)"
        ),
        QueryParam("to", "The last day, YYYY-MM-DD (default: today)"),
        QueryParam("granularity", "day, week (ISO weeks) or month (default)"),
        QueryParam("group_by", "all (default) or one dimension the measure lists"),
    ),
)
def get_analytics(request: ApiRequest, measure: str) -> MeasureReport | ApiResponse:
    report = services().analytics.measure(
        request.principal,
        measure,
        request.query("from"),
        request.query("to"),
        request.query("granularity"),
        request.query("group_by"),
    )
    if CSV in (request.header("accept") or ""):
        return ApiResponse(as_csv(report), 200, {"Content-Type": f"{CSV}; charset=utf-8"})
    return report
