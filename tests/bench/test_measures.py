"""The benchmark's yardsticks: a run's critical path, and the retry delays it reads from send_email's log lines."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bench.run import RetryDelays, critical_path, retry_hops

LATENCY = {("ann@example.com", 1): 0.2, ("ann@example.com", 2): 0.3, ("ann@example.com", 3): 4.0,
           ("bob@example.com", 1): 5.0}


def test_the_critical_path_is_the_longest_chain_of_one_contacts_latencies_and_retry_delays():
    # Given ann blocked twice (retried after 1 s, then 3 s) and bob delivered once, slowly
    delays = {("ann@example.com", 1): 1, ("ann@example.com", 2): 3}
    attempts = [("ann@example.com", 1), ("bob@example.com", 1), ("ann@example.com", 2), ("ann@example.com", 3)]
    # When the critical path is computed
    path = critical_path(attempts, lambda email, n: LATENCY[(email, n)], lambda email, n: delays.get((email, n), 0))
    # Then it is ann's chain, not bob's single slow send: 0.2 + 1 + 0.3 + 3 + 4.0
    assert path == 8.5


def test_a_run_without_sends_has_no_critical_path():
    assert critical_path([], lambda *_: 1.0, lambda *_: 1.0) == 0.0


def invocation(*records: dict) -> SimpleNamespace:
    return SimpleNamespace(log="\n".join(["START RequestId: r-1", *map(json.dumps, records), "END RequestId: r-1"]))


def test_retry_delays_are_read_from_the_retry_scheduled_lines_only():
    # Given an invocation that logged a sent contact, a blocked one and the blocked one again a later attempt
    delays = RetryDelays()
    delays.on_invocation(invocation(
        {"message": "contact sent", "contact": "p-ann", "attempt": 1, "outcome": "sent"},
        {"message": "contact retry_scheduled", "contact": "p-cy", "attempt": 1, "retry_in_seconds": 1},
        {"message": "contact retry_scheduled", "contact": "p-cy", "attempt": 2, "retry_in_seconds": 2}))
    # And one that logged nothing about retries
    delays.on_invocation(invocation({"message": "contact sent", "contact": "p-bob", "attempt": 1}))
    # Then each scheduled delay is known by (pseudonym, attempt)
    assert delays.seconds == {("p-cy", 1): 1, ("p-cy", 2): 2}


def test_a_retry_hop_is_the_time_beyond_the_previous_attempts_latency_and_retry_delay():
    # Given ann's first attempt at 10.0 s (0.2 s latency, retried after 1 s) and her second at 12.0 s
    attempts = [("ann@example.com", 1, 10.0), ("bob@example.com", 1, 10.5), ("ann@example.com", 2, 12.0)]
    delays = {("ann@example.com", 1): 1}
    # When the hops are measured
    hops = retry_hops(attempts, lambda email, n: LATENCY[(email, n)], lambda email, n: delays.get((email, n), 0))
    # Then the one retry came 0.8 s later than 10.0 + 0.2 + 1
    assert hops == [pytest.approx(0.8)]
