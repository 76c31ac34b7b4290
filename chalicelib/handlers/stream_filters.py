"""Which records of the table's stream each stream handler is given (Lambda's filter criteria):
infra/package.py sets them on each function's mapping, the local runtime's pollers apply them."""

from __future__ import annotations

from chalicelib.domain import analytics, loyalty
from chalicelib.domain.common import Document

FILTERS_BY_FUNCTION: dict[str, list[Document]] = {
    "analytics_stream": analytics.STREAM_FILTERS,
    "loyalty_stream": loyalty.STREAM_FILTERS,
}
