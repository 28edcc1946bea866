"""At most one welcome email per address: across rows, files, redeliveries, crashes and retries."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from common.domain.sending import RetryPolicy
from common.domain.vocabulary import DeadLetterReason, Verdict
from tests.fakes import TEST_PSEUDONYMS
from tests.unit.conftest import SimulatedCrash
from tests.unit.pipeline import LEASE_SECONDS, Pipeline


def rows(*emails: str) -> str:
    return "".join(f"Name {i}, {email}, 555-555-5555, 1 Main St, Austin, TX, 73301\n"
                   for i, email in enumerate(emails))


@pytest.fixture
def pipeline() -> Pipeline:
    # No random outcomes: tags decide, so each test says exactly what happens.
    return Pipeline(max_attempts=3, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})


def assert_accounted(pipeline: Pipeline) -> None:
    for job_id in pipeline.job_ids:
        job = pipeline.job(job_id)
        assert job.rows == job.invalid + job.duplicate + job.sent + job.bounced + job.exhausted + job.unknown, job
        assert job.status.value == "SUCCEEDED"


def test_a_contact_in_two_files_gets_one_email(pipeline):
    # Given two files that share a contact (in different case)
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob@example.com"))
    pipeline.upload("incoming/b.csv", rows("ANN@example.com", "cy@example.com"))
    # When everything is delivered
    pipeline.drain()
    # Then each address got exactly one email and the second file counts ann as a duplicate
    assert pipeline.delivered_per_address() == {"ann@example.com": 1, "bob@example.com": 1, "cy@example.com": 1}
    first, second = (pipeline.job(j) for j in pipeline.job_ids)
    assert (first.sent, first.duplicate) == (2, 0)
    assert (second.sent, second.duplicate) == (1, 1)
    assert_accounted(pipeline)


def test_one_address_twice_in_one_message_gets_one_email_and_the_second_row_counts_as_a_duplicate(pipeline):
    # Given a message carrying the same address on rows 1 and 2 (a file past the parser's in-file memory
    # of addresses can enqueue one address twice, in the same message)
    from common.domain.messages import ContactBatch, Delivery

    job_id = pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob@example.com"))
    (message,) = pipeline.inbox
    batch = ContactBatch.decode(message.body)
    message.body = ContactBatch(job_id=batch.job_id, source_key=batch.source_key, deliveries=(
        Delivery(email="ann@example.com", name="Ann", row=1), Delivery(email="ann@example.com", name="Ann", row=2),
    )).encode()
    # When it is delivered, and delivered again
    pipeline.drain(redeliver_each=True)
    # Then Ann got one email, row 2 is counted once as a duplicate, and the job settles
    assert pipeline.delivered_per_address() == {"ann@example.com": 1}
    job = pipeline.job(job_id)
    assert (job.sent, job.duplicate) == (1, 1)
    assert_accounted(pipeline)


def test_a_message_delivered_twice_sends_and_counts_once(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob@example.com"))
    pipeline.drain(redeliver_each=True)
    assert pipeline.attempts_per_address() == {"ann@example.com": 1, "bob@example.com": 1}
    assert pipeline.reports[-1].tally == {Verdict.ALREADY_DONE: 2}
    assert pipeline.job().sent == 2
    assert_accounted(pipeline)


def test_a_bounce_is_dead_lettered_and_never_retried(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann+bounce@example.com"))
    pipeline.drain()
    assert pipeline.attempts_per_address() == {"ann+bounce@example.com": 1}
    (letter,) = pipeline.queue.letters
    assert (letter.reason, letter.email, letter.source_key, letter.row) == (
        DeadLetterReason.BOUNCED, "ann+bounce@example.com", "incoming/a.csv", 1)
    assert "550" in letter.provider_response
    assert pipeline.job().bounced == 1
    assert_accounted(pipeline)


def test_a_bounced_address_is_suppressed_in_later_files(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann+bounce@example.com"))
    pipeline.drain()
    pipeline.upload("incoming/b.csv", rows("ann+bounce@example.com"))
    pipeline.drain()
    assert pipeline.attempts_per_address() == {"ann+bounce@example.com": 1}
    assert pipeline.job().duplicate == 1


def test_a_blocked_contact_is_retried_with_growing_delays_until_delivered(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann+blocked@example.com"))
    delays = []
    while pipeline.inbox or pipeline.queue.retries:
        delays += [r.delay_seconds for r in pipeline.queue.retries]
        pipeline.collect_retries()
        pipeline.deliver(pipeline.inbox.popleft())
    assert [e.outcome.value for e in pipeline.outbox.recorded] == ["blocked", "blocked", "delivered"]
    assert delays == [1, 1]  # full jitter at draw 0.5 of 1 s then 2 s
    job = pipeline.job()
    assert (job.sent, job.retried) == (1, 2)
    assert_accounted(pipeline)


def test_a_contact_blocked_past_the_cap_is_exhausted_and_dead_lettered(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann+blockedforever@example.com"))
    pipeline.drain()
    assert pipeline.attempts_per_address() == {"ann+blockedforever@example.com": 3}
    (letter,) = pipeline.queue.letters
    assert (letter.reason, letter.attempt) == (DeadLetterReason.BLOCKED_EXHAUSTED, 3)
    job = pipeline.job()
    assert (job.exhausted, job.retried) == (1, 2)
    assert_accounted(pipeline)


def test_a_crash_between_the_send_and_the_ledger_write_is_reconciled_not_resent(pipeline):
    # Given the function dies right after the provider accepted ann's email
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob@example.com"))
    pipeline.provider.crash_after_send.add("ann@example.com")
    message = pipeline.inbox.popleft()
    with pytest.raises(SimulatedCrash):
        pipeline.deliver(message)
    # When SQS delivers the message again before the claim's lease ran out
    early = pipeline.deliver(message)
    assert early.tally[Verdict.RETRY_LATER] >= 1
    # Then it asks to come back when ann's lease ends, not after a whole visibility timeout
    assert early.comes_back_in(pipeline.clock) == pytest.approx(LEASE_SECONDS)
    # and when it comes back then
    pipeline.clock += early.comes_back_in(pipeline.clock)
    report = pipeline.deliver(message)
    # Then the dead delivery's claims (ann's and bob's) are taken over, and the provider is asked, not called again
    assert report.taken_over == 2
    assert pipeline.attempts_per_address() == {"ann@example.com": 1, "bob@example.com": 1}
    assert not report.must_retry
    assert pipeline.job().sent == 2
    assert_accounted(pipeline)


def test_a_redelivery_that_loses_the_takeover_race_comes_back_and_sends_nothing(pipeline):
    # Given ann's sender died right after the provider took her email, and her lease ran out
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    pipeline.provider.crash_after_send.add("ann@example.com")
    message = pipeline.inbox.popleft()
    with pytest.raises(SimulatedCrash):
        pipeline.deliver(message)
    pipeline.clock += LEASE_SECONDS + 1
    # When two redeliveries race and the other one takes her claim over first
    ledger, claim = pipeline.ledger, pipeline.ledger.claim

    def the_other_delivery_takes_over_first(claims):
        if any(c.take_over_lease_before is not None for c in claims):
            ledger.claim = claim
            claim([replace(c, lease_until=pipeline.clock + LEASE_SECONDS, holder="the other") for c in claims])
        return claim(claims)

    ledger.claim = the_other_delivery_takes_over_first
    report = pipeline.deliver(message)
    # Then this one sends nothing and says the message must come back (acknowledging it would leave ann to a
    # winner that may die too), with nothing taken over by it
    assert report.tally == {Verdict.RETRY_LATER: 1} and report.must_retry
    assert report.taken_over == 0
    assert pipeline.attempts_per_address() == {"ann@example.com": 1}


@pytest.mark.parametrize("step", ["before_claim", "after_claim", "before_settle", "after_settle"])
def test_a_crash_at_any_step_of_the_send_path_still_sends_each_address_at_most_once(pipeline, step):
    # Given a batch with an ordinary, a bouncing and a blocked contact, and a delivery that dies at `step`
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bo+bounce@example.com", "cy+blocked@example.com"))
    pipeline.crash_once_at(step)
    # When SQS delivers the message again after the visibility timeout, until everything settles
    pipeline.drain()
    # Then no address got two emails, every row is accounted for, and the bounce is dead-lettered
    assert max(pipeline.delivered_per_address().values()) == 1
    assert pipeline.attempts_per_address()["bo+bounce@example.com"] == 1
    assert {letter.email for letter in pipeline.queue.letters} == {"bo+bounce@example.com"}
    job = pipeline.job()
    assert (job.sent, job.bounced) == (2, 1)
    assert_accounted(pipeline)


def test_an_unknown_outcome_is_never_resent_when_the_provider_cannot_be_asked():
    pipeline = Pipeline(can_look_up=False, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    pipeline.provider.crash_after_send.add("ann@example.com")
    pipeline.drain()
    assert pipeline.attempts_per_address() == {"ann@example.com": 1}
    (letter,) = pipeline.queue.letters
    assert letter.reason is DeadLetterReason.UNKNOWN_OUTCOME
    assert pipeline.job().unknown == 1
    assert_accounted(pipeline)


def test_a_throttled_send_is_retried_later_like_a_block_and_sent_once(pipeline):
    # Given a provider that refuses Ann's first send as throttled (it did not take the email)
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob@example.com"))
    pipeline.provider.transient_for.add("ann@example.com")
    # When the message is delivered
    report = pipeline.deliver(pipeline.inbox[0])
    # Then the message itself is done: Ann goes back to the queue with a delay, as attempt 2
    assert not report.must_retry and report.tally == {Verdict.SENT: 1, Verdict.RETRY_SCHEDULED: 1}
    (retry,) = pipeline.queue.retries
    assert [d.attempt for d in retry.batch.deliveries] == [2]
    # And once the retry is delivered, each is emailed once
    pipeline.drain()
    assert pipeline.delivered_per_address() == {"ann@example.com": 1, "bob@example.com": 1}
    assert pipeline.job().retried == 1
    assert_accounted(pipeline)


def test_a_lost_answer_is_looked_up_on_redelivery_not_resent(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    pipeline.provider.answer_lost_for.add("ann@example.com")
    pipeline.drain()
    assert pipeline.attempts_per_address() == {"ann@example.com": 1}
    assert pipeline.job().sent == 1
    assert_accounted(pipeline)


def test_a_lost_answer_becomes_unknown_when_the_provider_cannot_be_asked():
    pipeline = Pipeline(can_look_up=False, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob@example.com"))
    pipeline.provider.answer_lost_for.add("ann@example.com")
    pipeline.provider.transient_for.add("bob@example.com")  # refused: certainly not sent
    pipeline.drain()
    assert pipeline.attempts_per_address() == {"ann@example.com": 1, "bob@example.com": 1}
    job = pipeline.job()
    assert (job.unknown, job.sent) == (1, 1)
    assert_accounted(pipeline)


def test_a_lost_answer_from_a_provider_that_cannot_be_asked_is_unknown_at_once_and_never_resent():
    # Given SES-like provider (no look-up) whose answer to ann's send is lost after the request went out
    pipeline = Pipeline(can_look_up=False, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    pipeline.provider.answer_lost_for.add("ann@example.com")
    # When her message is delivered once
    report = pipeline.deliver(pipeline.inbox.popleft())
    # Then she is UNKNOWN in that same delivery: no redelivery, no delayed retry, one attempt, dead-lettered
    assert report.tally == {Verdict.UNKNOWN: 1} and not report.must_retry
    assert pipeline.attempts_per_address() == {"ann@example.com": 1}
    (letter,) = pipeline.queue.letters
    assert letter.reason is DeadLetterReason.UNKNOWN_OUTCOME and "never resent" in letter.provider_response
    assert not pipeline.queue.retries and pipeline.job().unknown == 1
    assert_accounted(pipeline)


def test_claims_and_settles_whose_answers_were_lost_are_repeated_and_still_send_once(pipeline):
    # Given a ledger whose every claim and settle is applied, then its answer lost and the request repeated
    # (botocore's retry: the same request, the same delivery)
    claim, settle = pipeline.ledger.claim, pipeline.ledger.settle

    def repeated_claim(claims):
        claim(claims)
        return claim(claims)

    def repeated_settle(transitions):
        settle(transitions)
        return settle(transitions)

    pipeline.ledger.claim, pipeline.ledger.settle = repeated_claim, repeated_settle
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob+bounce@example.com", "cy+blocked@example.com"))
    # When the file is sent
    pipeline.drain()
    # Then each repeat found its own write: every contact was sent (or bounced) once, nothing STALE, counted once
    assert pipeline.attempts_per_address() == {"ann@example.com": 1, "bob+bounce@example.com": 1,
                                               "cy+blocked@example.com": 3}
    assert not any(r.verdict is Verdict.STALE for report in pipeline.reports for r in report.results)
    job = pipeline.job()
    assert (job.sent, job.bounced, job.retried) == (2, 1, 2)
    assert_accounted(pipeline)


def test_two_copies_of_a_retry_message_send_once(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann+blocked@example.com"))
    pipeline.deliver(pipeline.inbox.popleft())
    (retry,) = pipeline.queue.retries
    pipeline.queue.retries.append(retry)  # the same retry enqueued twice (a redelivery re-sent it)
    pipeline.drain()
    assert [e.attempt for e in pipeline.outbox.recorded] == [1, 2, 3]
    assert_accounted(pipeline)


def test_a_crash_before_the_retry_is_enqueued_is_repaired_by_the_redelivery(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann+blocked@example.com"))
    message = pipeline.inbox.popleft()
    original = pipeline.queue.send_retries

    def crash(retries):
        pipeline.queue.send_retries = original
        raise SimulatedCrash("died before the retry reached SQS")

    pipeline.queue.send_retries = crash
    with pytest.raises(SimulatedCrash):
        pipeline.deliver(message)
    assert pipeline.deliver(message).tally == {Verdict.ALREADY_DONE: 1}
    pipeline.drain()
    assert [e.outcome.value for e in pipeline.outbox.recorded] == ["blocked", "blocked", "delivered"]
    assert pipeline.job().retried == 2
    assert_accounted(pipeline)


def test_the_same_file_parsed_twice_counts_and_sends_each_row_once(pipeline):
    # Given a parse that died before finishing, so its job is still PARSING
    text = rows("ann@example.com", "bob@example.com")
    job_id = pipeline.upload("incoming/a.csv", text, etag="e1")
    pipeline.jobs.interrupt(job_id)
    # When Lambda retries the S3 event and the file is parsed again, enqueuing every row again
    pipeline.upload("incoming/a.csv", text, etag="e1")
    pipeline.drain()
    # Then each row is sent and counted once
    assert pipeline.attempts_per_address() == {"ann@example.com": 1, "bob@example.com": 1}
    assert (pipeline.job(job_id).rows, pipeline.job(job_id).sent) == (2, 2)
    assert_accounted(pipeline)


def test_an_object_already_imported_is_not_parsed_again(pipeline):
    pipeline.upload("incoming/a.csv", rows("ann@example.com"), etag="e1")
    pipeline.upload("incoming/a.csv", rows("ann@example.com"), etag="e1")
    assert len(pipeline.inbox) == 1


def test_a_malformed_message_is_dead_lettered_with_its_body(pipeline):
    from tests.unit.pipeline import Message

    report = pipeline.deliver(Message("m-1", '{"not": "a batch"}'))
    assert report.results == []
    (letter,) = pipeline.queue.letters
    assert letter.reason is DeadLetterReason.MALFORMED_MESSAGE
    assert letter.message == '{"not": "a batch"}'
    # naming no contact, row or attempt (there is none), and saying why it could not be read
    assert (letter.email, letter.name, letter.job_id, letter.source_key, letter.row, letter.attempt) == (
        "", "", "", "", 0, 0)
    assert "unsupported message version" in letter.provider_response


def test_the_delay_before_each_retry_doubles_from_the_base_up_to_the_cap():
    # Full jitter draws in [0, ceiling]: at the top of the draw, the ceilings themselves
    policy = RetryPolicy(max_attempts=10, base_delay_seconds=30, max_delay_seconds=900)
    assert [policy.delay_before(attempt, draw=1.0) for attempt in range(2, 9)] == [30, 60, 120, 240, 480, 900, 900]
    assert policy.delay_before(3, draw=0.25) == 15 and policy.delay_before(2, draw=0.0) == 0


def test_a_message_with_no_time_left_claims_nothing_and_comes_back_at_once(pipeline):
    # Given a message delivered to an invocation already at its send deadline
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob@example.com"))
    message = pipeline.inbox.popleft()
    report = pipeline.deliver(message, seconds_left=0)
    # Then every contact is out of time, nothing was claimed or sent, and the message comes back at once
    assert [(r.email, r.row, r.attempt, r.verdict) for r in report.results] == [
        ("ann@example.com", 1, 1, Verdict.OUT_OF_TIME), ("bob@example.com", 2, 1, Verdict.OUT_OF_TIME)]
    assert {r.job_id for r in report.results} == {pipeline.job_ids[0]}
    assert {r.source_key for r in report.results} == {"incoming/a.csv"}
    assert report.must_retry and report.comes_back_in(pipeline.clock) == 0
    assert pipeline.outbox.recorded == [] and pipeline.ledger.entry_for_pseudonym(
        TEST_PSEUDONYMS.of("ann@example.com")) is None
    # and a later delivery with time sends both, once
    pipeline.deliver(message)
    assert pipeline.attempts_per_address() == {"ann@example.com": 1, "bob@example.com": 1}


def test_a_message_that_may_have_been_sent_waits_for_its_visibility_timeout_however_soon_the_rest_is_ready():
    from common.domain.sending import BatchReport, ContactResult

    # Given a report with one contact ready in 5 s and one whose answer was lost (it must be looked up)
    report = BatchReport(results=[
        ContactResult("j", "k", 1, "a@example.com", 1, Verdict.RETRY_LATER, ready_at=105.0),
        ContactResult("j", "k", 2, "b@example.com", 1, Verdict.RETRY_LATER, ready_at=None)])
    # Then SQS's visibility timeout decides, not the earliest contact
    assert report.must_retry and report.comes_back_in(100.0) is None
    assert BatchReport(results=report.results[:1]).comes_back_in(100.0) == 5.0


def test_a_stale_copy_of_a_retry_never_takes_over_the_claim_of_its_twin(pipeline):
    # Given two copies of the same retry, and the first copy's invocation dies right after sending
    pipeline.upload("incoming/a.csv", rows("ann+blocked@example.com"))
    pipeline.deliver(pipeline.inbox.popleft())
    pipeline.collect_retries()
    first = pipeline.inbox.popleft()
    from tests.unit.pipeline import Message
    twin = Message(pipeline.queue.next_message_id(), first.body)
    pipeline.provider.crash_after_send.add("ann+blocked@example.com")
    with pytest.raises(SimulatedCrash):
        pipeline.deliver(first)
    # When the twin arrives after the dead claim's lease ran out
    pipeline.clock += 180
    report = pipeline.deliver(twin)
    # Then the twin stands aside: only a redelivery of the claim's own message may resume it
    assert report.tally == {Verdict.STALE: 1}
    pipeline.inbox.append(first)
    pipeline.drain()
    assert [e.attempt for e in pipeline.outbox.recorded] == [1, 2, 3]
    assert_accounted(pipeline)


def test_sends_stop_before_the_invocation_times_out_and_the_rest_is_sent_on_redelivery(pipeline):
    # Given each send takes 10 s and the invocation has 25 s left
    pipeline.upload("incoming/a.csv", rows(*(f"c{n}@example.com" for n in range(5))))
    pipeline.sends_take(10)
    message = pipeline.inbox.popleft()
    # When the batch is delivered
    report = pipeline.deliver(message, seconds_left=25)
    # Then the sends that could not start in time are released, not left claimed, and the message comes back
    assert report.tally == {Verdict.SENT: 3, Verdict.OUT_OF_TIME: 2}
    assert report.must_retry and report.comes_back_in(pipeline.clock) == 0  # so it may come back at once
    pipeline.inbox.append(message)
    pipeline.drain()
    assert pipeline.attempts_per_address() == {f"c{n}@example.com": 1 for n in range(5)}
    assert_accounted(pipeline)



def test_the_blocked_contacts_of_a_message_are_retried_together_in_one_message(pipeline):
    pipeline.upload("incoming/a.csv", rows(*(f"c{n}+blocked@example.com" for n in range(30)), "ann@example.com"))
    pipeline.deliver(pipeline.inbox.popleft())
    (retry,) = pipeline.queue.retries
    assert [d.attempt for d in retry.batch.deliveries] == [2] * 30
    pipeline.drain()
    assert pipeline.delivered_per_address() == {**{f"c{n}+blocked@example.com": 1 for n in range(30)},
                                                "ann@example.com": 1}
    assert (pipeline.job().retried, pipeline.job().sent) == (60, 31)
    assert_accounted(pipeline)


def test_an_exhausted_contact_redriven_from_the_dlq_gets_exactly_one_more_attempt(pipeline):
    from common.domain.redrive import redrive_letter

    # Given a contact blocked on every attempt, now EXHAUSTED and dead-lettered
    pipeline.upload("incoming/a.csv", rows("ann+blockedforever@example.com"))
    pipeline.drain()
    (letter,) = pipeline.queue.letters
    # When its letter is redriven, twice (a retried CLI run)
    body = letter.body(TEST_PSEUDONYMS.of)
    assert "ann" not in body and json.loads(body)["contact"] == TEST_PSEUDONYMS.of("ann+blockedforever@example.com")
    first = redrive_letter(body, pipeline.ledger, pipeline.queue)
    second = redrive_letter(body, pipeline.ledger, pipeline.queue)
    pipeline.drain()
    # Then one more attempt was made, and the job is settled again with its counts moved, not doubled
    assert (first.redriven, second.redriven) == (True, False)
    assert [e.attempt for e in pipeline.outbox.recorded] == [1, 2, 3, 4]
    job = pipeline.job()
    assert (job.exhausted, job.retried) == (1, 3)
    assert_accounted(pipeline)


@pytest.mark.parametrize("reason", ["bounced", "unknown-outcome"])
def test_bounced_and_unknown_letters_are_never_redriven(pipeline, reason):

    from common.domain.redrive import redrive_letter

    body = json.dumps({"reason": reason, "contact": TEST_PSEUDONYMS.of("a@example.com"), "job_id": "j",
                       "source_key": "k", "row": 1, "attempt": 1})
    assert redrive_letter(body, pipeline.ledger, pipeline.queue).redriven is False
    assert pipeline.queue.retries == []


def each_send_its_own_wave(call, inputs):
    """Waves without threads: every send settles on its own, in order."""
    for index, item in enumerate(inputs):
        yield [(index, call(item))]


def test_a_blocked_contact_is_retried_without_waiting_for_the_rest_of_its_message(pipeline):
    # Given a message of a contact blocked at once and one sent after it, settled in waves
    pipeline.ports.send_in_waves = each_send_its_own_wave
    events = []
    send, send_retries = pipeline.provider.send, pipeline.queue.send_retries
    pipeline.provider.send = lambda request: (events.append(f"send {request.to}"), send(request))[1]
    pipeline.queue.send_retries = lambda retries: (events.append("retry queued"), send_retries(retries))[1]
    pipeline.upload("incoming/a.csv", rows("ann+blocked@example.com", "bob@example.com"))
    # When it is delivered
    pipeline.deliver(pipeline.inbox.popleft())
    # Then ann's retry was queued before bob's send started, and the two settled separately
    assert events == ["send ann+blocked@example.com", "retry queued", "send bob@example.com"]
    pipeline.drain()
    assert pipeline.delivered_per_address() == {"ann+blocked@example.com": 1, "bob@example.com": 1}
    assert_accounted(pipeline)


def test_a_crash_after_the_first_wave_settled_sends_the_rest_once_on_redelivery(pipeline):
    # Given a message of three contacts settled one wave per send, and a crash right after the first settle
    pipeline.ports.send_in_waves = each_send_its_own_wave
    pipeline.upload("incoming/a.csv", rows("ann@example.com", "bob@example.com", "cy@example.com"))
    pipeline.crash_once_at("after_settle")
    # When the message is delivered, dies, and is delivered again after the visibility timeout
    pipeline.drain()
    # Then everyone got exactly one email and every row is accounted for
    assert pipeline.attempts_per_address() == {"ann@example.com": 1, "bob@example.com": 1, "cy@example.com": 1}
    assert pipeline.job().sent == 3
    assert_accounted(pipeline)
