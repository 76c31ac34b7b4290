"""The cost model of issue 12: CareLoop's measured journey beside a scheduler polling every
minute. Arithmetic only; no emulator."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.alternative import (
    ALL_PRICES,
    MINUTES_PER_MONTH,
    ModelCost,
    Workload,
    break_even_appointments_per_month,
    careloop_cost,
    comparison_section,
    print_comparison,
    scheduler_cost,
)
from bench.journey import cost_usd

MEASURED = {
    "journey_state_transitions": 15,
    "journey_lambda_invocations": 5,
    "journey_api_requests": 4,
    "journey_dynamodb_reads": 20,
    "journey_dynamodb_write_units": 40,
}
# Round prices, so that a hand computation is exact enough to read.
ROUND_PRICES = {
    "step_functions_per_transition": 10.0,
    "lambda_per_request": 1.0,
    "lambda_per_gb_second": 100.0,
    "dynamodb_per_write_unit": 2.0,
    "dynamodb_per_read_unit": 1.0,
    "api_gateway_per_request": 5.0,
    "eventbridge_scheduler_per_invocation": 3.0,
}


def _fixed(cost: ModelCost) -> float:
    return sum(cost.fixed_monthly_usd.values())


def test_the_polling_costs_the_same_for_1_and_1000_appointments() -> None:
    one = scheduler_cost(Workload(patients=1, appointments_per_patient_month=1))
    thousand = scheduler_cost(Workload(patients=1000, appointments_per_patient_month=1))
    assert _fixed(one) == _fixed(thousand) > 0
    assert one.monthly_usd() - _fixed(one) == pytest.approx(
        (thousand.monthly_usd() - _fixed(thousand)) / 1000
    )


def test_the_polling_is_spread_over_the_patients_sharing_it() -> None:
    small = scheduler_cost(Workload(patients=100))
    large = scheduler_cost(Workload(patients=100_000))
    assert small.per_1000_patient_months() > large.per_1000_patient_months()


def test_careloop_scales_linearly_with_appointments() -> None:
    per_month = [
        careloop_cost(MEASURED, Workload(patients=1000, appointments_per_patient_month=rate))
        for rate in (0.25, 0.5, 1.0)
    ]
    assert [c.per_1000_patient_months() for c in per_month] == pytest.approx(
        [per_month[0].per_1000_patient_months() * k for k in (1, 2, 4)]
    )
    assert {round(c.per_1000_appointments(), 12) for c in per_month} == {
        round(per_month[0].per_1000_appointments(), 12)
    }
    assert per_month[0].fixed_monthly_usd == {}


def test_careloop_is_priced_as_the_journey_bench_prices_it() -> None:
    careloop = careloop_cost(MEASURED)
    assert careloop.per_appointment() == pytest.approx(
        cost_usd(transitions=15, lambdas=5, api_requests=4, reads=20, write_units=40)
    )


def test_a_tiny_workload_by_hand() -> None:
    workload = Workload(
        patients=2,
        appointments_per_patient_month=1.0,
        messages_per_appointment=1,
        api_requests_per_appointment=1,
        polls_per_month=10,
        poller_memory_mb=1024,
        poller_ms_per_poll=1000,  # 1 GB-second a poll
        poller_ms_per_message=500,  # 0.5 GB-second a message
    )
    scheduler = scheduler_cost(workload, ROUND_PRICES)
    # 10 polls: scheduler 3, Lambda 1 + 1 GB-s x 100, an empty Query's 0.5 read unit x 1.
    assert scheduler.fixed_monthly_usd == {
        "eventbridge_scheduler": 30.0,
        "lambda": 1010.0,
        "dynamodb": 5.0,
    }
    # An appointment: its API request (gateway 5; Lambda 1 + 0.025 GB-s x 100; 1 read, 1 write)
    # and its message (0.5 GB-s x 100 to send; item read 0.5; put and mark sent, 2 units each).
    each = scheduler.per_appointment_usd
    assert each["api_gateway"] == 5.0
    assert each["lambda"] == pytest.approx(1 + 2.5 + 50)
    assert each["dynamodb"] == pytest.approx((0.5 + 1) * 1.0 + (4 + 1) * 2.0)
    monthly = 1045.0 + 2 * (5.0 + 53.5 + 11.5)
    assert scheduler.monthly_usd() == pytest.approx(monthly)
    assert scheduler.per_1000_appointments() == pytest.approx(1000 * monthly / 2)
    assert scheduler.per_1000_patient_months() == pytest.approx(1000 * monthly / 2)

    measured = {**MEASURED, "journey_api_requests": 1}
    careloop = careloop_cost(measured, workload, ROUND_PRICES)
    # 15 transitions x 10; (5 + 1) Lambdas x (1 + 2.5); gateway 5; 20 reads x 1 + 40 writes x 2.
    assert careloop.per_appointment() == pytest.approx(150 + 21 + 5 + 100)
    assert careloop.per_1000_patient_months() == pytest.approx(1000 * 276)


def test_break_even_is_where_both_cost_the_same() -> None:
    workload = Workload()
    careloop, scheduler = careloop_cost(MEASURED, workload), scheduler_cost(workload)
    volume = break_even_appointments_per_month(careloop, scheduler)
    assert volume is not None
    patients = volume / workload.appointments_per_patient_month
    at_break_even = replace(workload, patients=round(patients))
    assert careloop_cost(MEASURED, at_break_even).monthly_usd() == pytest.approx(
        scheduler_cost(at_break_even).monthly_usd(), rel=0.01
    )


def test_no_break_even_when_careloop_costs_less_per_appointment() -> None:
    free_journey = dict.fromkeys(MEASURED, 0)
    careloop, scheduler = careloop_cost(free_journey), scheduler_cost()
    assert break_even_appointments_per_month(careloop, scheduler) is None


def test_the_section_states_workload_prices_and_both_models(
    capsys: pytest.CaptureFixture[str],
) -> None:
    section = comparison_section({**MEASURED, "journey_api_requests": 3})
    assert section["workload"]["api_requests_per_appointment"] == 3  # as measured
    assert section["workload"]["polls_per_month"] == MINUTES_PER_MONTH == 43_200
    assert section["prices_usd"] == ALL_PRICES
    for model in ("careloop", "scheduler_every_minute"):
        figures = section[model]
        by_service = figures["cost_per_1000_patient_months_by_service_usd"]
        assert sum(by_service.values()) == pytest.approx(
            figures["cost_per_1000_patient_months_usd"], abs=1e-3
        )
        assert figures["dominated_by"].endswith(".")
    assert section["careloop"]["fixed_monthly_usd"] == 0
    print_comparison(section)
    assert "scheduler every minute" in capsys.readouterr().out
