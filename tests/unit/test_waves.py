"""Concurrent calls come back in waves: what finished together, together; everything exactly once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from common.domain.waves import in_waves, one_wave


def test_fast_calls_come_back_in_the_first_wave_and_slow_ones_in_the_second():
    # Given six calls, two of which take 0.6 s, and a first wave of 0.2 s
    def call(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    inputs = [0.0, 0.6, 0.0, 0.0, 0.6, 0.01]
    with ThreadPoolExecutor(max_workers=6) as executor:
        # When they run in waves
        waves = list(in_waves(executor, first_wave_seconds=0.2)(call, inputs))
    # Then the first wave holds the fast ones, the second the rest, and every call comes back once
    assert [[index for index, _ in wave] for wave in waves] == [[0, 2, 3, 5], [1, 4]]
    assert sorted(index for wave in waves for index, _ in wave) == list(range(6))
    assert all(result == inputs[index] for wave in waves for index, result in wave)


def test_the_first_wave_is_handed_back_before_the_slow_calls_finish():
    # Given a fast call and a slow one of 1 s, in waves with a first wave of 0.1 s
    def call(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as executor:
        waves = in_waves(executor, first_wave_seconds=0.1)(call, [0.0, 1.0])
        # When the first wave is taken
        first = next(waves)
        first_came_after = time.monotonic() - started
        # Then it holds the fast call, and came long before the slow one ended (its retries go out meanwhile)
        assert first == [(0, 0.0)] and first_came_after < 0.6
        # And the slow call comes in the second wave
        assert list(waves) == [[(1, 1.0)]]


def test_one_wave_runs_in_order_and_nothing_for_no_input():
    assert list(one_wave(str.upper, ["a", "b"])) == [[(0, "A"), (1, "B")]]
    assert list(one_wave(str.upper, [])) == []


def test_nothing_to_run_gives_no_wave():
    with ThreadPoolExecutor(max_workers=1) as executor:
        assert list(in_waves(executor, first_wave_seconds=0.2)(str, [])) == []
