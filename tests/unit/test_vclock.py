"""The virtual clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from local.vclock import VirtualClock, parse_duration

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("3w", timedelta(weeks=3)),
        ("1d 2h", timedelta(days=1, hours=2)),
        ("1d+30m", timedelta(days=1, minutes=30)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1y", "d", "-1d", "1.5h", "99999999999999w"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_frozen_clock_moves_only_when_advanced() -> None:
    clock = VirtualClock(START)
    assert clock.now() == START
    assert clock.advance(timedelta(days=30)) == START + timedelta(days=30)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        clock.set(START)


def test_the_clock_stops_at_the_last_year_the_domain_accepts() -> None:
    clock = VirtualClock(START)
    with pytest.raises(ValueError, match="cannot move past"):
        clock.advance(timedelta(weeks=9_999_999))
    with pytest.raises(ValueError, match="cannot move past"):
        clock.set(datetime(9999, 12, 31, tzinfo=UTC))
    assert clock.now() == START


def test_flowing_clock_moves_with_real_time() -> None:
    clock = VirtualClock(START, flowing=True)
    time.sleep(0.05)
    assert clock.now() > START


def test_sleeper_wakes_when_the_clock_reaches_its_moment() -> None:
    clock = VirtualClock(START)
    woke: list[bool] = []
    sleeper = threading.Thread(
        target=lambda: woke.append(clock.sleep_until(START + timedelta(days=7)))
    )
    sleeper.start()
    clock.advance(timedelta(days=6))
    sleeper.join(timeout=0.3)
    assert sleeper.is_alive(), "six days are not enough"
    clock.advance(timedelta(days=1))
    sleeper.join(timeout=2)
    assert woke == [True]


def test_sleeper_can_be_cancelled() -> None:
    clock = VirtualClock(START)
    stop = threading.Event()
    result: list[bool] = []
    sleeper = threading.Thread(
        target=lambda: result.append(clock.sleep_until(START + timedelta(days=1), stop.is_set))
    )
    sleeper.start()
    stop.set()
    sleeper.join(timeout=2)
    assert result == [False]


def test_a_move_wakes_each_sleeper_at_its_own_moment_in_time_order() -> None:
    from local.activity import FlowThread

    clock = VirtualClock(START)
    woke: list[tuple[int, datetime]] = []

    def sleeper(days: int) -> None:
        clock.sleep_until(START + timedelta(days=days))
        woke.append((days, clock.now()))
        if days == 1:  # work done at a timer's moment may set a later timer, still on the way
            clock.sleep_until(START + timedelta(days=2))
            woke.append((2, clock.now()))

    threads = [FlowThread(target=sleeper, args=(days,)) for days in (3, 1, 5)]
    for thread in threads:
        thread.start()
    assert clock.advance(timedelta(days=4)) == START + timedelta(days=4)
    assert woke == [(days, START + timedelta(days=days)) for days in (1, 2, 3)]
    clock.advance(timedelta(days=1))
    for thread in threads:
        thread.join(timeout=2)
    assert woke[-1] == (5, START + timedelta(days=5))


def test_a_flowing_clock_stands_still_while_a_move_plays_out() -> None:
    from local.activity import FlowThread

    clock = VirtualClock(START, flowing=True)
    seen: list[timedelta] = []

    def sleeper() -> None:
        moment = clock.now() + timedelta(hours=1)
        clock.sleep_until(moment)
        time.sleep(0.05)  # real time passes while the timer's work runs
        seen.append(clock.now() - moment)

    thread = FlowThread(target=sleeper)
    thread.start()
    time.sleep(0.01)
    clock.advance(timedelta(days=1))
    thread.join(timeout=2)
    assert seen == [timedelta()], "now is the timer's moment for the work it starts"


def test_the_clock_goes_back_only_when_nothing_waits_on_it() -> None:
    from local.activity import FlowThread

    clock = VirtualClock(START + timedelta(days=10))
    clock.rewind(START)
    assert clock.now() == START
    thread = FlowThread(target=lambda: clock.sleep_until(START + timedelta(days=1)))
    thread.start()
    time.sleep(0.05)
    with pytest.raises(RuntimeError, match="timers are pending"):
        clock.rewind(START)
    clock.advance(timedelta(days=1))
    thread.join(timeout=2)
