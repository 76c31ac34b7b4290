"""Issue 12: what CareLoop's appointment journeys cost beside the usual alternative, priced on
the same workload: a scheduler invoking a Lambda every minute that queries a due-time index for
the reminders to send (as public serverless patient-engagement samples do).

CareLoop's side comes from the figures bench/journey.py measured on the emulator; the
alternative is a cost model, pure arithmetic, with every assumption a field of `Workload`.
The alternative is priced as a lower bound: it does only what the pattern needs (one record read
and written per API request, a reminder item per message in the due-time index, the poll, the
mark-sent), while CareLoop's measured figures include all its record-keeping (audit, slot
capacity, journey state). So where CareLoop costs more, the gap is at most what is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bench.journey import LAMBDA_GB_SECONDS_EACH, PRICES

# Prices bench/journey.py does not list. AWS published on-demand prices, us-east-1 (2025).
ALTERNATIVE_PRICES = {
    # EventBridge Scheduler (aws.amazon.com/eventbridge/pricing): the first 14 million scheduled
    # invocations a month are free, then $1.00 per million. We charge the paid rate: the free
    # tier is per account and shared with every other schedule in it. At 43,200 invocations a
    # month the difference is $0.0432 a month.
    "eventbridge_scheduler_per_invocation": 1.00 / 1_000_000,
}
ALL_PRICES: dict[str, float] = {**PRICES, **ALTERNATIVE_PRICES}

MINUTES_PER_MONTH = 30 * 24 * 60  # a 30-day month: 43,200 polls at one a minute
# On-demand capacity units, as DynamoDB bills them (developer guide, read/write operations).
EVENTUALLY_CONSISTENT_READ_UNITS = 0.5  # an item under 4 KB, or an empty Query (its minimum)
GSI_WRITE_UNITS_PER_ITEM_WRITE = 1  # a write that puts or removes an item in an index pays it too

SERVICES = ("step_functions", "eventbridge_scheduler", "lambda", "api_gateway", "dynamodb")


@dataclass(frozen=True)
class Workload:
    """One hospital's month, the same for both models. The alternative's polling costs the same
    whatever the load, so what it costs per patient depends on how many patients share it."""

    # Patients of the hospital on the platform: they share the alternative's fixed polling cost.
    patients: int = 10_000
    # A chronic-care clinic (diabetes, hypertension, heart failure) sees its patients for a
    # follow-up every one to three months: one appointment every two months.
    appointments_per_patient_month: float = 0.5
    # Confirmation request and reminders 7 days, 1 day and 2 hours before (the measured path).
    messages_per_appointment: int = 4
    # Book, confirm, check in, fulfil (as bench.journey.happy_path counts them).
    api_requests_per_appointment: int = 4
    # The alternative, explicitly:
    polls_per_month: int = MINUTES_PER_MONTH  # a rule or schedule every minute, load or not
    poller_memory_mb: int = 128
    poller_ms_per_poll: int = 200  # a cold-ish Python function, a Query and nothing to send
    poller_ms_per_message: int = 100  # rendering and handing one message to the SMS provider
    # Each API request reads the appointment (strongly consistent, under 4 KB) and writes it once.
    reads_per_api_request: float = 1.0
    write_units_per_api_request: float = 1.0

    @property
    def appointments_per_month(self) -> float:
        return self.patients * self.appointments_per_patient_month

    @property
    def poller_gb_seconds_per_poll(self) -> float:
        return self.poller_memory_mb / 1024 * self.poller_ms_per_poll / 1000

    @property
    def poller_gb_seconds_per_message(self) -> float:
        return self.poller_memory_mb / 1024 * self.poller_ms_per_message / 1000


DEFAULT_WORKLOAD = Workload()


@dataclass(frozen=True)
class ModelCost:
    """A model's cost split into what a month costs whatever happens (the alternative's polling)
    and what each appointment adds, by service, so that it can be spread per appointment or per
    patient-month."""

    workload: Workload
    fixed_monthly_usd: dict[str, float] = field(default_factory=dict)
    per_appointment_usd: dict[str, float] = field(default_factory=dict)

    def monthly_usd_by_service(self) -> dict[str, float]:
        appointments = self.workload.appointments_per_month
        return {
            service: self.fixed_monthly_usd.get(service, 0.0)
            + self.per_appointment_usd.get(service, 0.0) * appointments
            for service in SERVICES
            if service in self.fixed_monthly_usd or service in self.per_appointment_usd
        }

    def monthly_usd(self) -> float:
        return sum(self.monthly_usd_by_service().values())

    def per_appointment(self) -> float:
        """Including its share of the fixed cost, at the workload's volume."""
        return self.monthly_usd() / self.workload.appointments_per_month

    def per_1000_appointments(self) -> float:
        return 1000 * self.per_appointment()

    def per_1000_patient_months(self) -> float:
        return 1000 * self.monthly_usd() / self.workload.patients

    def per_1000_appointments_by_service(self) -> dict[str, float]:
        appointments = self.workload.appointments_per_month
        return {k: 1000 * v / appointments for k, v in self.monthly_usd_by_service().items()}

    def per_1000_patient_months_by_service(self) -> dict[str, float]:
        patients = self.workload.patients
        return {k: 1000 * v / patients for k, v in self.monthly_usd_by_service().items()}


def lambda_invocation_usd(gb_seconds: float, prices: Mapping[str, float]) -> float:
    return prices["lambda_per_request"] + gb_seconds * prices["lambda_per_gb_second"]


def scheduler_cost(
    workload: Workload = DEFAULT_WORKLOAD, prices: Mapping[str, float] = ALL_PRICES
) -> ModelCost:
    """The usual alternative. Every minute: a scheduler invokes the poller, which Queries the
    due-time index (eventually consistent, as an index's reads are; an empty Query still costs
    its minimum). Each message: its reminder item is written at booking, returned by one poll
    (counted apart from the poll's minimum: an upper bound), sent, and marked sent by an
    UpdateItem that takes it out of the index; each of those writes pays the index's write unit
    as well as the table's. Each API request: API Gateway and the API function, with one read
    and one write of the appointment."""
    polls = workload.polls_per_month
    messages = workload.messages_per_appointment
    api_requests = workload.api_requests_per_appointment
    read_unit, write_unit = prices["dynamodb_per_read_unit"], prices["dynamodb_per_write_unit"]

    fixed = {
        "eventbridge_scheduler": polls * prices["eventbridge_scheduler_per_invocation"],
        "lambda": polls * lambda_invocation_usd(workload.poller_gb_seconds_per_poll, prices),
        "dynamodb": polls * EVENTUALLY_CONSISTENT_READ_UNITS * read_unit,
    }
    item_write_units = 1 + GSI_WRITE_UNITS_PER_ITEM_WRITE
    reminder_write_units = messages * (item_write_units + item_write_units)  # put, mark sent
    reminder_read_units = messages * EVENTUALLY_CONSISTENT_READ_UNITS
    per_appointment = {
        "lambda": api_requests * lambda_invocation_usd(LAMBDA_GB_SECONDS_EACH, prices)
        + messages * workload.poller_gb_seconds_per_message * prices["lambda_per_gb_second"],
        "api_gateway": api_requests * prices["api_gateway_per_request"],
        "dynamodb": (reminder_read_units + api_requests * workload.reads_per_api_request)
        * read_unit
        + (reminder_write_units + api_requests * workload.write_units_per_api_request) * write_unit,
    }
    return ModelCost(workload, fixed_monthly_usd=fixed, per_appointment_usd=per_appointment)


def careloop_cost(
    measured: Mapping[str, Any],
    workload: Workload = DEFAULT_WORKLOAD,
    prices: Mapping[str, float] = ALL_PRICES,
) -> ModelCost:
    """CareLoop from the measured figures of one appointment (bench.journey.happy_path), priced
    as bench.journey.cost_usd prices them. No fixed cost: an appointment's execution waits for
    its messages, nothing runs while no appointment is booked."""
    transitions = measured["journey_state_transitions"]
    lambdas = measured["journey_lambda_invocations"]
    api_requests = measured["journey_api_requests"]
    per_appointment = {
        "step_functions": transitions * prices["step_functions_per_transition"],
        "lambda": (lambdas + api_requests) * lambda_invocation_usd(LAMBDA_GB_SECONDS_EACH, prices),
        "api_gateway": api_requests * prices["api_gateway_per_request"],
        "dynamodb": measured["journey_dynamodb_reads"] * prices["dynamodb_per_read_unit"]
        + measured["journey_dynamodb_write_units"] * prices["dynamodb_per_write_unit"],
    }
    return ModelCost(workload, per_appointment_usd=per_appointment)


def break_even_appointments_per_month(careloop: ModelCost, scheduler: ModelCost) -> float | None:
    """The monthly volume at which both cost the same: below it CareLoop costs less (the polling
    is paid for nothing), above it the alternative does. None if CareLoop's appointment costs no
    more than the alternative's, as then it costs less at any volume."""
    careloop_each = sum(careloop.per_appointment_usd.values())
    scheduler_each = sum(scheduler.per_appointment_usd.values())
    fixed = sum(scheduler.fixed_monthly_usd.values()) - sum(careloop.fixed_monthly_usd.values())
    if careloop_each <= scheduler_each:
        return None
    return fixed / (careloop_each - scheduler_each)


SERVICE_WORDS = {
    "step_functions": "Step Functions Standard state transitions",
    "eventbridge_scheduler": "the scheduler's invocations",
    "lambda": "Lambda",
    "api_gateway": "API Gateway requests",
    "dynamodb": "DynamoDB reads and writes",
}


def what_dominates(cost: ModelCost) -> str:
    """One sentence: the largest service, its share, and how much of the model is fixed."""
    by_service = cost.monthly_usd_by_service()
    total = sum(by_service.values())
    largest = max(by_service, key=lambda service: by_service[service])
    fixed_share = sum(cost.fixed_monthly_usd.values()) / total
    sentence = f"{SERVICE_WORDS[largest]} make {by_service[largest] / total:.0%} of the cost"
    if fixed_share:
        polls = cost.workload.polls_per_month
        return (
            f"{sentence}; {fixed_share:.0%} is the polling ({polls:,} runs a month, load or not)."
        )
    return f"{sentence}; nothing is fixed, it all scales with appointments."


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in values.items()}


def _model_section(cost: ModelCost) -> dict[str, Any]:
    return {
        "cost_per_1000_appointments_usd": round(cost.per_1000_appointments(), 4),
        "cost_per_1000_patient_months_usd": round(cost.per_1000_patient_months(), 4),
        "cost_per_1000_appointments_by_service_usd": _rounded(
            cost.per_1000_appointments_by_service()
        ),
        "cost_per_1000_patient_months_by_service_usd": _rounded(
            cost.per_1000_patient_months_by_service()
        ),
        "fixed_monthly_usd": round(sum(cost.fixed_monthly_usd.values()), 4),
        "dominated_by": what_dominates(cost),
    }


def comparison_section(
    measured: Mapping[str, Any], workload: Workload = DEFAULT_WORKLOAD
) -> dict[str, Any]:
    """For bench/results.json. The alternative serves the same API requests as were measured."""
    workload = replace(workload, api_requests_per_appointment=measured["journey_api_requests"])
    careloop = careloop_cost(measured, workload)
    scheduler = scheduler_cost(workload)
    break_even = break_even_appointments_per_month(careloop, scheduler)
    return {
        "workload": {
            **asdict(workload),
            "appointments_per_month": workload.appointments_per_month,
            "careloop_lambda_gb_seconds_each": LAMBDA_GB_SECONDS_EACH,
        },
        "prices_usd": ALL_PRICES,
        "careloop": _model_section(careloop),
        "scheduler_every_minute": _model_section(scheduler),
        "break_even_appointments_per_month": None if break_even is None else round(break_even),
        "break_even_patients": (
            None
            if break_even is None
            else round(break_even / workload.appointments_per_patient_month)
        ),
        "note": (
            "The alternative is a lower bound (only the pattern's own reads and writes); "
            "CareLoop's figures include all its record-keeping. Messages are not priced."
        ),
    }


def print_comparison(section: Mapping[str, Any]) -> None:
    workload = section["workload"]
    careloop, scheduler = section["careloop"], section["scheduler_every_minute"]
    print(
        f"CareLoop beside a scheduler polling every minute ({workload['patients']:,} patients, "
        f"{workload['appointments_per_patient_month']} appointments per patient-month, "
        f"{workload['messages_per_appointment']} messages each; us-east-1 on-demand, USD):"
    )
    print(f"  {'':<22} {'per 1000 appts':>14} {'per 1000 patient-months':>24}")
    for label, model in (("careloop", careloop), ("scheduler every minute", scheduler)):
        print(
            f"  {label:<22} {model['cost_per_1000_appointments_usd']:>14.4f} "
            f"{model['cost_per_1000_patient_months_usd']:>24.4f}"
        )
    print(f"  by service, per 1000 patient-months: {'careloop':>10} {'scheduler':>10}")
    for service in SERVICES:
        ours = careloop["cost_per_1000_patient_months_by_service_usd"].get(service, 0.0)
        theirs = scheduler["cost_per_1000_patient_months_by_service_usd"].get(service, 0.0)
        print(f"    {service:<35} {ours:>10.4f} {theirs:>10.4f}")
    print(f"  careloop: {careloop['dominated_by']}")
    print(f"  scheduler: {scheduler['dominated_by']}")
    if section["break_even_appointments_per_month"] is None:
        print("  CareLoop costs less at any volume.")
    else:
        print(
            f"  same cost at {section['break_even_appointments_per_month']:,} appointments a month "
            f"({section['break_even_patients']:,} patients); CareLoop costs less below, more above."
        )
    print(f"  {section['note']}")
