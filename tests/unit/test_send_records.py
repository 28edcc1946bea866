"""What an operator reads after a delivery: each contact's verdict and why (send_email logs both), its ledger item
(`localcloud contact`), its dead letter and its retry. Every field, in every path through deliver_batch."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from common.domain.ledger import Claim
from common.domain.provider import SendResult
from common.domain.sending import ContactResult, _send_safely, _Work
from common.domain.vocabulary import DeadLetterReason, Outcome, State, Verdict
from tests.unit.conftest import SimulatedCrash
from tests.unit.pipeline import LEASE_SECONDS, Pipeline


def rows(*emails: str) -> str:
    return "".join(f"Name {i}, {email}, 555-555-5555, 1 Main St, Austin, TX, 73301\n" for i, email in enumerate(emails))


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline(max_attempts=3, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})


def what(result: ContactResult) -> tuple:
    return result.row, result.email, result.attempt, result.verdict, result.detail, result.ready_at


def provider_id(pipeline: Pipeline, email: str, attempt: int = 1) -> str:
    (entry,) = [e for e in pipeline.outbox.recorded if e.to == email and e.attempt == attempt]
    return entry.provider_message_id


def test_a_first_delivery_records_each_outcome_in_full(pipeline):
    # Given a message with a contact delivered, one bounced, one blocked, and the first address again
    job_id = pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob+bounce@example.com",
                                                    "cy+blocked@example.com"))
    message = pipeline.inbox.popleft()
    from common.domain.messages import ContactBatch, Delivery

    batch = ContactBatch.decode(message.body)
    first, *rest = batch.deliveries
    message.body = ContactBatch(job_id=batch.job_id, source_key=batch.source_key, deliveries=(
        first, Delivery(email="ann@example.com", name="Ann Again", row=4), *rest,
        Delivery(email="ann@example.com", name="Ann Thrice", row=5))).encode()
    # When it is delivered
    report = pipeline.deliver(message)
    # Then every contact's result says what happened and why, in the provider's words
    assert sorted(map(what, report.results)) == [
        (1, "ann@example.com", 1, Verdict.SENT, "250 accepted", None),
        (2, "bob+bounce@example.com", 1, Verdict.BOUNCED, "550 5.1.1 mailbox unavailable", None),
        (3, "cy+blocked@example.com", 1, Verdict.RETRY_SCHEDULED, "421 4.7.0 temporarily blocked, try again later",
         None),
        (4, "ann@example.com", 1, Verdict.DUPLICATE, "", None),
        (5, "ann@example.com", 1, Verdict.DUPLICATE, "", None)]
    assert {(r.job_id, r.source_key) for r in report.results} == {(job_id, "incoming/a.csv")}
    # And each provider call's latency was measured (the simulated provider answers at once here)
    assert len(report.send_seconds) == 3 and all(0 <= s < 1 for s in report.send_seconds)
    # And the ledger keeps the provider's message id and answer of each settled contact
    ann, bob, cy = (pipeline.ledger.entry(e) for e in ("ann@example.com", "bob+bounce@example.com",
                                                        "cy+blocked@example.com"))
    assert (ann.state, ann.provider_message_id, ann.detail, ann.next_attempt_at) == (
        State.SENT, provider_id(pipeline, "ann@example.com"), "250 accepted", 0)
    assert (bob.state, bob.provider_message_id, bob.detail) == (
        State.BOUNCED, provider_id(pipeline, "bob+bounce@example.com"), "550 5.1.1 mailbox unavailable")
    (retry,) = pipeline.queue.retries
    # And the blocked contact's result says when it is tried again (send_email logs it), the others say nothing
    assert {r.email: r.retry_in_seconds for r in report.results if r.retry_in_seconds is not None} == {
        "cy+blocked@example.com": retry.delay_seconds}
    assert retry.delay_seconds >= 1
    assert (cy.state, cy.provider_message_id, cy.detail, cy.next_attempt_at) == (
        State.BLOCKED, provider_id(pipeline, "cy+blocked@example.com"),
        "421 4.7.0 temporarily blocked, try again later", pipeline.clock + retry.delay_seconds)
    # And the bounce's dead letter carries the contact, its row, attempt and the provider's answer
    (letter,) = pipeline.queue.letters
    assert (letter.reason, letter.email, letter.name, letter.job_id, letter.source_key, letter.row, letter.attempt,
            letter.provider_response) == (DeadLetterReason.BOUNCED, "bob+bounce@example.com", "Name 1", job_id,
                                          "incoming/a.csv", 2, 1, "550 5.1.1 mailbox unavailable")
    # And the blocked contact's retry is the same person and row, one attempt further
    ((delivery,),) = [retry.batch.deliveries]
    assert (delivery.email, delivery.name, delivery.row, delivery.attempt) == ("cy+blocked@example.com", "Name 2", 3, 2)
    assert (retry.batch.job_id, retry.batch.source_key) == (job_id, "incoming/a.csv")
    # And ann's second and third rows each count as a duplicate of the job
    assert pipeline.job(job_id).duplicate == 2


def test_a_retry_is_scheduled_after_the_jittered_delay_of_the_next_attempt():
    # Given a policy whose delay grows from 8 s, and draws at the top of the jitter
    pipeline = Pipeline(max_attempts=4, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})
    from common.domain.sending import RetryPolicy

    pipeline.policy = RetryPolicy(max_attempts=4, base_delay_seconds=8, max_delay_seconds=1000)
    pipeline.ports.draw = lambda: 1.0
    pipeline.upload("incoming/a.csv", rows("ann+blockedforever@example.com"))
    delays = []
    for _ in range(3):
        pipeline.deliver(pipeline.inbox.popleft())
        delays.append(pipeline.queue.retries[-1].delay_seconds)
        entry = pipeline.ledger.entry("ann+blockedforever@example.com")
        assert entry.next_attempt_at == pipeline.clock + delays[-1]
        pipeline.collect_retries()
    # Then attempt n+1 waits up to base x 2^(n-1): 8, 16, 32 s
    assert delays == [8, 16, 32]


def test_a_redelivery_repeats_follow_ups_and_says_what_it_found(pipeline):
    # Given a message whose contacts settled as sent, bounced and blocked, delivered once
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob+bounce@example.com", "cy+blocked@example.com"))
    message = pipeline.inbox.popleft()
    pipeline.deliver(message)
    (first_retry,) = pipeline.queue.retries
    blocked_until = pipeline.ledger.entry("cy+blocked@example.com").next_attempt_at
    # When the same message comes back 0.4 s later (its follow-ups may not have been written)
    pipeline.clock += 0.4
    report = pipeline.deliver(message)
    # Then nothing is sent again, and each result says what the ledger holds
    assert sorted(map(what, report.results)) == [
        (1, "ann@example.com", 1, Verdict.ALREADY_DONE, "found SENT", None),
        (2, "bob+bounce@example.com", 1, Verdict.ALREADY_DONE, "found BOUNCED, follow-up repeated", None),
        (3, "cy+blocked@example.com", 1, Verdict.ALREADY_DONE, "found BLOCKED, follow-up repeated", None)]
    assert len(pipeline.outbox.recorded) == 3
    # And the bounce's letter is written again, with the answer the ledger kept
    first_letter, again = pipeline.queue.letters
    assert replace(again, at="") == replace(first_letter, at="")  # `at`: when each was written
    # And the retry again, for what is left of its delay (rounded up), the same contact one attempt further
    _, retry = pipeline.queue.retries
    assert retry.delay_seconds == math.ceil(blocked_until - pipeline.clock)
    assert retry.batch == first_retry.batch


def test_a_redelivery_long_after_the_retry_was_due_sends_it_at_once_and_never_waits_past_the_cap(pipeline):
    pipeline.upload("incoming/a.csv", rows("cy+blocked@example.com"))
    message = pipeline.inbox.popleft()
    pipeline.policy = type(pipeline.policy)(max_attempts=3, base_delay_seconds=100, max_delay_seconds=8)
    pipeline.ports.draw = lambda: 1.0
    pipeline.deliver(message)
    assert pipeline.queue.retries[-1].delay_seconds == 8  # capped
    pipeline.clock += 600
    pipeline.deliver(message)
    assert pipeline.queue.retries[-1].delay_seconds == 0


def test_a_contact_held_by_a_live_lease_of_another_delivery_says_for_how_long_and_comes_back_then(pipeline):
    # Given a delivery that died mid-send, leaving its claim leased
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    message = pipeline.inbox.popleft()
    pipeline.crash_once_at("after_claim")
    with pytest.raises(SimulatedCrash):
        pipeline.deliver(message)
    lease_until = pipeline.clock + LEASE_SECONDS
    # When its message is delivered again 20 s later
    pipeline.clock += 20
    report = pipeline.deliver(message)
    # Then the contact waits for the lease: the result says how long, and when it is worth trying again
    assert list(map(what, report.results)) == [
        (1, "ann@example.com", 1, Verdict.RETRY_LATER, f"leased by another delivery for {LEASE_SECONDS - 20} s",
         lease_until)]
    assert report.comes_back_in(pipeline.clock) == LEASE_SECONDS - 20


def test_a_retry_whose_ledger_item_is_gone_is_stale_and_says_so(pipeline):
    pipeline.upload("incoming/a.csv", rows("cy+blocked@example.com"))
    pipeline.deliver(pipeline.inbox.popleft())
    pipeline.collect_retries()
    retry = pipeline.inbox.popleft()
    pipeline.ledger.tables.contacts.clear()  # the item expired or was removed by hand
    report = pipeline.deliver(retry)
    assert list(map(what, report.results)) == [(1, "cy+blocked@example.com", 2, Verdict.STALE, "found no entry",
                                                 None)]


def died_after_sending_to_ann(can_look_up: bool) -> tuple[Pipeline, object]:
    """A delivery that died right after the provider took ann's email, and the lease has run out since."""
    pipeline = Pipeline(can_look_up=can_look_up, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    message = pipeline.inbox.popleft()
    pipeline.provider.crash_after_send.add("ann@example.com")
    with pytest.raises(SimulatedCrash):
        pipeline.deliver(message)
    pipeline.clock += LEASE_SECONDS + 1
    return pipeline, message


def test_an_unknown_outcome_records_why_and_dead_letters_with_it():
    # Given a provider that cannot be asked, and a send that died after the provider took it
    pipeline, message = died_after_sending_to_ann(can_look_up=False)
    # When its message comes back after the lease
    report = pipeline.deliver(message)
    # Then the contact is UNKNOWN, with the reason in the result, the ledger and the letter, and no message id
    reason = "outcome unknown and the provider cannot be asked"
    assert list(map(what, report.results)) == [(1, "ann@example.com", 1, Verdict.UNKNOWN, reason, None)]
    entry = pipeline.ledger.entry("ann@example.com")
    assert (entry.state, entry.detail, entry.provider_message_id) == (State.UNKNOWN, reason, "")
    (letter,) = pipeline.queue.letters
    assert (letter.reason, letter.provider_response) == (DeadLetterReason.UNKNOWN_OUTCOME, reason)
    assert report.taken_over == 1


def test_a_takeover_lost_to_another_redelivery_says_so(pipeline):
    # Given a delivery of ann and bob that died after claiming both
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob@example.com"))
    message = pipeline.inbox.popleft()
    pipeline.crash_once_at("after_claim")
    with pytest.raises(SimulatedCrash):
        pipeline.deliver(message)
    pipeline.clock += LEASE_SECONDS + 1
    claim = pipeline.ledger.claim

    def a_twin_takes_ann_first(claims):
        if claims and claims[0].take_over_lease_before is not None:
            pipeline.ledger.claim = claim
            claim([replace(c, holder="twin") for c in claims[:1]])  # another redelivery wins ann's takeover
        return claim(claims)

    pipeline.ledger.claim = a_twin_takes_ann_first
    # When the message comes back after the leases
    report = pipeline.deliver(message)
    # Then ann's result says another delivery has her, and bob is still taken over and sent
    assert sorted(map(what, report.results))[0] == (1, "ann@example.com", 1, Verdict.RETRY_LATER,
                                                    "claim taken over elsewhere", None)
    assert sorted(map(what, report.results))[1][3] is Verdict.SENT
    assert report.taken_over == 1


def test_a_throttled_send_is_recorded_as_blocked_with_the_providers_refusal(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    pipeline.provider.transient_for.add("ann@example.com")
    report = pipeline.deliver(pipeline.inbox.popleft())
    assert list(map(what, report.results)) == [(1, "ann@example.com", 1, Verdict.RETRY_SCHEDULED,
                                                 "throttled: throttled", None)]
    assert [r.retry_in_seconds for r in report.results] == [pipeline.queue.retries[0].delay_seconds]
    entry = pipeline.ledger.entry("ann@example.com")
    assert (entry.state, entry.provider_message_id, entry.detail) == (State.BLOCKED, "", "throttled: throttled")


def test_a_lost_answer_keeps_the_claim_and_says_why_the_message_must_come_back(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    pipeline.provider.answer_lost_for.add("ann@example.com")
    report = pipeline.deliver(pipeline.inbox.popleft())
    assert list(map(what, report.results)) == [(1, "ann@example.com", 1, Verdict.RETRY_LATER,
                                                 "timed out waiting for the answer", None)]
    entry = pipeline.ledger.entry("ann@example.com")
    assert (entry.state, entry.unsent) == (State.CLAIMED, False)


def test_a_settle_that_lost_its_claim_reports_it_stale_and_writes_no_follow_up(pipeline):
    pipeline.upload("incoming/a.csv", rows("bob+bounce@example.com", "cy+blocked@example.com"))
    settle = pipeline.ledger.settle
    pipeline.ledger.settle = lambda transitions: (settle([]), list(transitions))[1]  # every move rejected
    report = pipeline.deliver(pipeline.inbox.popleft())
    assert sorted(map(what, report.results)) == [
        (1, "bob+bounce@example.com", 1, Verdict.BOUNCED, "550 5.1.1 mailbox unavailable", None),
        (1, "bob+bounce@example.com", 1, Verdict.STALE, "claim lost before settling", None),
        (2, "cy+blocked@example.com", 1, Verdict.RETRY_SCHEDULED, "421 4.7.0 temporarily blocked, try again later",
         None),
        (2, "cy+blocked@example.com", 1, Verdict.STALE, "claim lost before settling", None)]
    assert pipeline.queue.letters == [] and pipeline.queue.retries == []


def test_out_of_time_contacts_say_why(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    report = pipeline.deliver(pipeline.inbox.popleft(), seconds_left=0)
    assert list(map(what, report.results)) == [(1, "ann@example.com", 1, Verdict.OUT_OF_TIME,
                                                 "no time left in this invocation", pipeline.clock)]


def test_a_malformed_message_is_kept_whole_up_to_ten_thousand_characters(pipeline):
    from tests.unit.pipeline import Message

    body = "x" * 20_000
    pipeline.deliver(Message("m-1", body))
    (letter,) = pipeline.queue.letters
    assert letter.reason is DeadLetterReason.MALFORMED_MESSAGE and letter.message == "x" * 10_000


# -- the pacer and the deadline, at the moment a send would start ----------------------------------------
class Clock:
    def __init__(self, now: float):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FixedPacer:
    """Hands out `start`, then each later slot of `starts`; slots are 0.2 s wide (on time: 0.1 s late at most)."""

    def __init__(self, start: float, *starts: float):
        self.starts = [start, *starts]
        self.handed = 0

    def next_start(self) -> float:
        self.handed += 1
        return self.starts[min(self.handed, len(self.starts)) - 1]

    def on_time(self, start: float, now: float) -> bool:
        return now - start <= 0.1


def send_with(pacer_start: float | None, now: float, deadline: float | None, later_slots: tuple = (),
              oversleep: float = 0.0):
    from common.domain.provider import EmailRequest
    from common.domain.sending import SendPorts

    clock = Clock(now)
    sent = []

    class Provider:
        can_look_up = True

        def send(self, request):
            sent.append(request.to)
            return SendResult(Outcome.DELIVERED, provider_message_id="p-1", detail="250 accepted")

    def sleep(seconds: float) -> None:  # a busy machine wakes the thread `oversleep` seconds late, once
        nonlocal oversleep
        clock.sleep(seconds)
        clock.now += oversleep
        oversleep = 0.0

    ports = SendPorts(ledger=None, provider=Provider(), retries=None, dead_letters=None, clock=clock,
                      pacer=None if pacer_start is None else FixedPacer(pacer_start, *later_slots), sleep=sleep)
    outcome, seconds = _send_safely(ports, deadline)(EmailRequest(to="a@example.com", name="A", attempt=1,
                                                                    idempotency_key="k"))
    return outcome, seconds, clock.slept, sent


def test_a_send_waits_for_its_pacer_slot_then_goes():
    outcome, seconds, slept, sent = send_with(pacer_start=105.0, now=100.0, deadline=200.0)
    assert slept == [5.0] and sent == ["a@example.com"] and outcome.outcome is Outcome.DELIVERED
    assert 0 <= seconds < 1


def test_a_send_whose_slot_is_now_does_not_sleep():
    _, _, slept, sent = send_with(pacer_start=100.0, now=100.0, deadline=None)
    assert slept == [] and sent == ["a@example.com"]


@pytest.mark.parametrize("slot", [150.0, 150.5])
def test_a_slot_at_or_after_the_deadline_is_not_started(slot):
    outcome, seconds, slept, sent = send_with(pacer_start=slot, now=100.0, deadline=150.0)
    assert (str(outcome), seconds, slept, sent) == (
        "no send slot before this invocation's deadline; not started", 0.0, [], [])


def test_a_slot_just_before_the_deadline_is_used():
    _, _, slept, sent = send_with(pacer_start=149.5, now=100.0, deadline=150.0)
    assert slept == [49.5] and sent == ["a@example.com"]


@pytest.mark.parametrize("now", [150.0, 151.0])
def test_no_send_starts_at_or_after_the_deadline(now):
    outcome, seconds, _, sent = send_with(pacer_start=None, now=now, deadline=150.0)
    assert (str(outcome), seconds, sent) == ("the invocation is about to time out; not started", 0.0, [])


def test_a_send_just_before_the_deadline_goes():
    _, _, _, sent = send_with(pacer_start=None, now=149.9, deadline=150.0)
    assert sent == ["a@example.com"]


def test_the_email_carries_the_contacts_name(pipeline):
    seen = []
    send = pipeline.provider.send
    pipeline.provider.send = lambda request: (seen.append(request), send(request))[1]
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    pipeline.deliver(pipeline.inbox.popleft())
    (request,) = seen
    assert (request.to, request.name, request.attempt) == ("ann@example.com", "Name 0", 1)
    assert request.idempotency_key.endswith("#1")


def test_work_results_default_to_no_detail():
    work = _Work.__new__(_Work)
    claim = Claim(email="a@example.com", token="t", attempt=2, carrier="c", lease_until=0, job_id="j", row=7,
                  name="A", source_key="k")
    assert what(work.result(claim, Verdict.DUPLICATE)) == (7, "a@example.com", 2, Verdict.DUPLICATE, "", None)
    assert (work.result(claim, Verdict.DUPLICATE).job_id, work.result(claim, Verdict.DUPLICATE).source_key) == (
        "j", "k")


def test_an_unknown_outcome_whose_settle_lost_its_claim_is_stale_and_writes_no_letter():
    pipeline, message = died_after_sending_to_ann(can_look_up=False)
    settle = pipeline.ledger.settle
    pipeline.ledger.settle = lambda transitions: (settle([]), list(transitions))[1]  # every move rejected
    report = pipeline.deliver(message)
    assert [r.verdict for r in report.results] == [Verdict.UNKNOWN, Verdict.STALE]
    assert pipeline.queue.letters == []


def test_a_contact_released_unsent_is_sent_on_redelivery_even_when_the_provider_cannot_be_asked():
    # Given a provider that cannot be asked, and sends of 10 s in an invocation with 5 s left
    pipeline = Pipeline(can_look_up=False, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob@example.com"))
    pipeline.sends_take(10)
    message = pipeline.inbox.popleft()
    assert pipeline.deliver(message, seconds_left=5).tally == {Verdict.SENT: 1, Verdict.OUT_OF_TIME: 1}
    # When its message comes back: bob's claim was released as certainly not sent
    report = pipeline.deliver(message)
    # Then bob is sent, not declared UNKNOWN
    assert report.tally == {Verdict.ALREADY_DONE: 1, Verdict.SENT: 1}
    assert pipeline.delivered_per_address() == {"ann@example.com": 1, "bob@example.com": 1}


def test_a_contact_already_emailed_from_another_file_is_a_duplicate_without_detail(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    pipeline.drain()
    pipeline.upload("incoming/b.csv", rows("ANN@example.com"))
    report = pipeline.deliver(pipeline.inbox.popleft())
    assert list(map(what, report.results)) == [(1, "ann@example.com", 1, Verdict.DUPLICATE, "", None)]


def test_an_older_attempt_delivered_again_finds_the_later_one_and_says_what_it_holds(pipeline):
    # Given a blocked contact whose retry (attempt 2) was sent
    pipeline.upload("incoming/a.csv", rows("cy+blocked@example.com"))
    first = pipeline.inbox.popleft()
    pipeline.deliver(first)
    pipeline.collect_retries()
    pipeline.deliver(pipeline.inbox.popleft())
    # When the message of attempt 1 comes back
    report = pipeline.deliver(first)
    # Then it hands over to the later attempt, saying what it found
    assert list(map(what, report.results)) == [(1, "cy+blocked@example.com", 1, Verdict.ALREADY_DONE,
                                                 "found BLOCKED", None)]


def test_an_exhausted_contact_keeps_the_last_answer_and_its_message_id():
    pipeline = Pipeline(max_attempts=2, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})
    pipeline.upload("incoming/a.csv", rows("ann+blockedforever@example.com"))
    pipeline.drain()
    entry = pipeline.ledger.entry("ann+blockedforever@example.com")
    assert (entry.state, entry.attempt, entry.detail, entry.provider_message_id) == (
        State.EXHAUSTED, 2, "421 4.7.0 temporarily blocked, try again later",
        provider_id(pipeline, "ann+blockedforever@example.com", attempt=2))
    (letter,) = pipeline.queue.letters
    assert (letter.reason, letter.attempt, letter.provider_response) == (
        DeadLetterReason.BLOCKED_EXHAUSTED, 2, "421 4.7.0 temporarily blocked, try again later")


def test_a_send_less_than_a_second_before_its_slot_waits_for_it():
    _, _, slept, sent = send_with(pacer_start=100.5, now=100.0, deadline=None)
    assert slept == [0.5] and sent == ["a@example.com"]


def test_a_sender_that_wakes_too_late_for_its_slot_takes_the_next_one_instead_of_starting_late():
    # Given slots at 105 s and 106 s, and a thread that once wakes 0.3 s after it asked to (half a slot: 0.1 s)
    _outcome, _, slept, sent = send_with(pacer_start=105.0, now=100.0, deadline=None, later_slots=(106.0,),
                                        oversleep=0.3)
    # Then it does not send in the missed slot: it sleeps until the next, and sends once
    assert slept == [5.0, pytest.approx(0.7)] and sent == ["a@example.com"]


def test_a_sender_that_wakes_just_within_its_slot_sends_in_it():
    _, _, slept, sent = send_with(pacer_start=105.0, now=100.0, deadline=None, later_slots=(106.0,),
                                  oversleep=0.1)
    assert slept == [5.0] and sent == ["a@example.com"]


def test_a_sender_late_for_every_slot_until_the_deadline_does_not_start():
    outcome, _, _, sent = send_with(pacer_start=105.0, now=100.0, deadline=106.0, later_slots=(106.0,),
                                    oversleep=0.3)
    assert (str(outcome), sent) == ("no send slot before this invocation's deadline; not started", [])
