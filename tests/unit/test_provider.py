"""The simulated provider: reproducible outcomes and latencies, tags that force outcomes, an outbox."""

from collections import Counter

import pytest

from common.adapters.simulated import SimulatedProvider
from common.domain.provider import EmailRequest, TransientProviderError
from common.domain.vocabulary import Outcome
from tests.unit.conftest import MemoryOutbox, simulated_settings


def provider(**settings) -> tuple[SimulatedProvider, MemoryOutbox, list[float]]:
    outbox, slept = MemoryOutbox(), []
    return SimulatedProvider(simulated_settings(**settings), outbox, sleep=slept.append), outbox, slept


def test_the_outcome_is_a_function_of_seed_email_and_attempt():
    first, _, _ = provider(seed="s1")
    again, _, _ = provider(seed="s1")
    other, _, _ = provider(seed="s2")
    emails = [f"user{i}@example.com" for i in range(200)]
    outcomes = [first.outcome_for(e, 1) for e in emails]
    assert outcomes == [again.outcome_for(e, 1) for e in emails]
    assert outcomes != [other.outcome_for(e, 1) for e in emails]


def test_outcomes_follow_the_configured_weights():
    simulated, _, _ = provider(bounce_rate=0.1, block_rate=0.1)
    counts = Counter(simulated.outcome_for(f"user{i}@example.com", 1) for i in range(20_000))
    assert counts[Outcome.BOUNCED] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[Outcome.BLOCKED] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[Outcome.DELIVERED] / 20_000 == pytest.approx(0.8, abs=0.015)


def test_about_one_call_in_ten_is_slow_taking_one_to_five_seconds():
    simulated, _, _ = provider(slow_rate=0.1, slow_min_seconds=1, slow_max_seconds=5)
    latencies = [simulated.latency_for(f"user{i}@example.com", 1) for i in range(10_000)]
    slow = [x for x in latencies if x > 0]
    assert len(slow) / 10_000 == pytest.approx(0.1, abs=0.01)
    assert min(slow) >= 1 and max(slow) <= 5


@pytest.mark.parametrize(("email", "attempts", "expected"), [
    ("ann+bounce@example.com", [1, 2, 5], [Outcome.BOUNCED] * 3),
    ("ann+blocked@example.com", [1, 2, 3], [Outcome.BLOCKED, Outcome.BLOCKED, Outcome.DELIVERED]),
    ("ann+blockedforever@example.com", [1, 4, 9], [Outcome.BLOCKED] * 3),
])
def test_tags_in_the_local_part_force_outcomes(email, attempts, expected):
    simulated, _, _ = provider(bounce_rate=0, block_rate=0)
    assert [simulated.outcome_for(email, a) for a in attempts] == expected


def test_every_send_is_recorded_in_the_outbox_and_can_be_looked_up_by_its_key():
    simulated, outbox, slept = provider(slow_rate=1.0, slow_min_seconds=2, slow_max_seconds=2)
    result = simulated.send(EmailRequest(to="ann@example.com", name="Ann", attempt=1, idempotency_key="job#1#1"))
    assert slept == [2.0]
    (entry,) = outbox.recorded
    assert (entry.to, entry.attempt, entry.outcome, entry.provider_message_id) == (
        "ann@example.com", 1, result.outcome, result.provider_message_id)
    assert entry.body == "Hi Ann, Welcome!"
    assert simulated.look_up("job#1#1").outcome is result.outcome
    assert simulated.look_up("job#1#2") is None


def test_throttled_sends_are_refused_before_anything_is_recorded():
    simulated, outbox, _ = provider(throttle_rate=0.2)
    refused = 0
    for i in range(2_000):
        try:
            simulated.send(EmailRequest(to=f"user{i}@example.com", name="N", attempt=1, idempotency_key=f"k{i}"))
        except TransientProviderError as error:
            assert not error.maybe_sent
            refused += 1
    assert refused / 2_000 == pytest.approx(0.2, abs=0.03)
    assert len(outbox.recorded) == 2_000 - refused
    tagged, _, _ = provider(throttle_rate=0)
    assert tagged.throttles("ann+throttled@example.com", 1) and not tagged.throttles("ann+throttled@example.com", 2)
