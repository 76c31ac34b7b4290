"""Logger and Metrics, created once per process and attached to the app as middleware.

Log lines carry ids and error codes, never names, phone numbers, email addresses or bodies.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

# The service name differs from the Chalice app name: a Powertools Logger named like the app
# would print every line twice through Chalice's own log handler.
logger = Logger(service="careloop-api")
metrics = Metrics(namespace="CareLoop", service="careloop-api")
