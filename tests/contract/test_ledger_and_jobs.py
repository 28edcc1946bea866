"""The same cases on the in-memory fakes (tests/fakes.py) and on the DynamoDB adapters (moto's mock, patched as
the emulator is): what the domain tests rely on of the fakes is what the adapters do."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import boto3
import pytest
from moto import mock_aws

from common.adapters.dynamo_jobs import DynamoJobs
from common.adapters.dynamo_ledger import DynamoLedger
from common.domain.jobs import Checkpoint, JobStatus, ParseTally, Upload
from common.domain.ledger import Claim, DuplicateMark, Move
from common.domain.vocabulary import FeedbackMove, JobCounter, State
from localcloud.config import CloudSettings
from localcloud.deploy import deploy
from tests.fakes import TEST_PSEUDONYMS, MemoryJobs, MemoryLedger, MemoryTables


@dataclass
class Stores:
    ledger: MemoryLedger | DynamoLedger
    jobs: MemoryJobs | DynamoJobs


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request) -> Iterator[Stores]:
    if request.param == "memory":
        tables = MemoryTables()
        yield Stores(MemoryLedger(tables), MemoryJobs(tables))
        return
    with mock_aws():
        outputs = deploy(CloudSettings.load(), client_factory=lambda service: boto3.client(service)).outputs
        client = boto3.client("dynamodb")
        yield Stores(DynamoLedger(outputs["ContactsTableName"], outputs["JobsTableName"], client=client,
                                  sleep=lambda s: None, pseudonym=TEST_PSEUDONYMS.of),
                     DynamoJobs(outputs["JobsTableName"], client=client))


UPLOAD = Upload(bucket="b", key="incoming/a.csv", etag="e1")
JOB = UPLOAD.job_id


def claim(n: int, token_prefix: str = f"{JOB}#", carrier: str = "m1", attempt: int = 1,
          lease_until: float = 100.0) -> Claim:
    return Claim(email=f"c{n}@example.com", token=f"{token_prefix}{n}", attempt=attempt, carrier=carrier,
                 lease_until=lease_until, job_id=JOB, row=n, name="N", source_key=UPLOAD.key)


def test_more_claims_than_one_transaction_holds_are_all_made_and_losers_reported(stores):
    ledger = stores.ledger
    assert ledger.claim([claim(n) for n in range(0, 150, 2)]) == {}
    lost = ledger.claim([claim(n, token_prefix="other#") for n in range(150)])
    assert sorted(lost) == sorted(f"c{n}@example.com" for n in range(0, 150, 2))
    assert lost["c4@example.com"].token == f"{JOB}#4"
    assert lost["c4@example.com"].state is State.CLAIMED


def test_moves_add_their_counters_once_and_a_move_without_its_claim_is_rejected(stores):
    ledger, jobs = stores.ledger, stores.jobs
    jobs.begin(UPLOAD)
    claims = [claim(n) for n in range(120)]
    ledger.claim(claims)
    moves = [Move(c, State.SENT, JobCounter.SENT) for c in claims[:110]]
    moves += [Move(claim(n, carrier="someone-else"), State.SENT, JobCounter.SENT) for n in range(110, 115)]
    marks = [DuplicateMark(job_id=JOB, row=500, carrier="m1")] * 2
    rejected = ledger.settle(moves + marks)
    assert [m.claim.row for m in rejected] == list(range(110, 115))
    # the same moves again (a redelivery) no longer hold and add nothing; the duplicate is counted once
    assert len(ledger.settle(moves[:10] + marks)) == 10
    job = jobs.get(JOB)
    assert (job.sent, job.duplicate) == (110, 1)


def test_a_claim_or_move_repeated_by_its_own_delivery_is_a_success_once_and_by_another_a_loss(stores):
    # A repeated request (botocore's retry after a lost answer) finds its own committed write: it must
    # neither lose its claim nor call its move stale, and must count nothing twice.
    ledger, jobs = stores.ledger, stores.jobs
    jobs.begin(UPLOAD)
    mine = [replace(claim(n), holder="delivery-1") for n in range(3)]
    assert ledger.claim(mine) == {}
    assert ledger.claim(mine) == {}  # the same delivery's claim again: still won
    twin = [replace(c, holder="delivery-2") for c in mine]  # the same message delivered twice at once
    assert sorted(ledger.claim(twin)) == [c.email for c in twin]
    moves = [Move(mine[0], State.SENT, JobCounter.SENT, provider_message_id="p0"),
             Move(mine[1], State.BLOCKED, JobCounter.RETRIED, next_attempt_at=50.0),
             Move(mine[2], State.UNKNOWN, JobCounter.UNKNOWN)]
    assert ledger.settle(moves) == []
    assert ledger.settle(moves) == []  # the same delivery's moves again: applied, counted by the first
    assert ledger.settle([replace(m, claim=t) for m, t in zip(moves, twin, strict=True)]) == [
        replace(m, claim=t) for m, t in zip(moves, twin, strict=True)]
    assert ledger.settle([replace(moves[0], provider_message_id="another send")]) == [
        replace(moves[0], provider_message_id="another send")]
    job = jobs.get(JOB)
    assert (job.sent, job.retried, job.unknown) == (1, 1, 1)


def test_a_job_succeeds_exactly_when_every_row_is_settled(stores):
    ledger, jobs = stores.ledger, stores.jobs
    assert jobs.begin(UPLOAD) is not None
    assert jobs.get(JOB).status is JobStatus.PARSING
    jobs.finish(JOB, ParseTally(rows=3, invalid=1, enqueued=2))
    assert jobs.get(JOB).status is JobStatus.SENDING
    claims = [claim(n, carrier=f"m{n}", lease_until=1.0) for n in (2, 3)]
    ledger.claim(claims)
    ledger.settle([Move(claims[0], State.SENT, JobCounter.SENT)])
    assert jobs.get(JOB).status is JobStatus.SENDING
    ledger.settle([Move(claims[1], State.BOUNCED, JobCounter.BOUNCED)])
    job = jobs.get(JOB)
    assert (job.status, job.sent, job.bounced, job.invalid) == (JobStatus.SUCCEEDED, 1, 1, 1)
    assert jobs.begin(UPLOAD) is None  # parsed already: the same object is not imported twice
    assert [j.job_id for j in jobs.all()] == [JOB]


def test_a_blocked_contact_is_claimed_again_only_by_its_token_for_the_next_attempt(stores):
    ledger = stores.ledger
    first = claim(1)
    ledger.claim([first])
    ledger.settle([Move(first, State.BLOCKED, JobCounter.RETRIED, provider_message_id="p1", next_attempt_at=50.0)])
    # Another file's row, or a skipped attempt number, does not get it
    assert set(ledger.claim([claim(1, token_prefix="other#", attempt=2)])) == {"c1@example.com"}
    assert set(ledger.claim([replace(first, attempt=3, carrier="m2")])) == {"c1@example.com"}
    # Its own retry does, keeping what the blocked attempt recorded
    assert ledger.claim([replace(first, attempt=2, carrier="m2")]) == {}
    entry = ledger.entry("c1@example.com")
    assert (entry.state, entry.attempt, entry.carrier, entry.provider_message_id) == (State.CLAIMED, 2, "m2", "p1")


def test_a_claim_is_taken_over_only_after_its_lease_ran_out_and_a_release_is_resumable_at_once(stores):
    ledger = stores.ledger
    held = claim(1, lease_until=100.0)
    ledger.claim([held])
    # Before the lease ran out, or by another carrier: no
    assert set(ledger.claim([replace(held, lease_until=300.0, take_over_lease_before=99.0)])) == {"c1@example.com"}
    assert set(ledger.claim([replace(held, carrier="m9", take_over_lease_before=200.0)])) == {"c1@example.com"}
    # After it: yes, once
    taken = replace(held, lease_until=300.0, take_over_lease_before=200.0)
    assert ledger.claim([taken]) == {}
    assert ledger.entry("c1@example.com").lease_until == 300.0
    # A release (the provider certainly did not take it) ends the lease and says so
    assert ledger.settle([Move(taken, State.CLAIMED, None, unsent=True)]) == []
    entry = ledger.entry("c1@example.com")
    assert (entry.state, entry.lease_until, entry.unsent) == (State.CLAIMED, 0.0, True)
    assert ledger.claim([replace(held, lease_until=400.0, take_over_lease_before=1.0)]) == {}
    assert ledger.entry("c1@example.com").unsent is False


def test_feedback_moves_a_sent_contact_once_and_only_for_the_message_it_was_sent_as(stores):
    ledger, jobs = stores.ledger, stores.jobs
    jobs.begin(UPLOAD)
    jobs.finish(JOB, ParseTally(rows=2, enqueued=2))
    ann, bob = claim(1), claim(2)
    ledger.claim([ann, bob])
    ledger.settle([Move(ann, State.SENT, JobCounter.SENT, provider_message_id="pa"),
                   Move(bob, State.SENT, JobCounter.SENT, provider_message_id="pb")])
    assert ledger.record_feedback("c1@example.com", "other", State.BOUNCED, "x")[0] is FeedbackMove.NOT_OURS
    assert ledger.record_feedback("nobody@example.com", "pa", State.BOUNCED, "x") == (FeedbackMove.NOT_OURS, None)
    move, entry = ledger.record_feedback("c1@example.com", "pa", State.BOUNCED, "550 user unknown")
    assert (move, entry.state) == (FeedbackMove.MOVED, State.SENT)  # the entry as it was
    assert ledger.record_feedback("c1@example.com", "pa", State.BOUNCED, "again")[0] is FeedbackMove.ALREADY_RECORDED
    assert ledger.record_feedback("c1@example.com", "pa", State.COMPLAINED, "spam")[0] is FeedbackMove.NOT_SENT
    assert ledger.record_feedback("c2@example.com", "pb", State.COMPLAINED, "spam")[0] is FeedbackMove.MOVED
    job = jobs.get(JOB)
    assert (job.sent, job.bounced, job.complained) == (1, 1, 1)
    assert ledger.entry("c1@example.com").state is State.BOUNCED


def test_an_exhausted_contact_is_reopened_once_moving_its_count(stores):
    ledger, jobs = stores.ledger, stores.jobs
    jobs.begin(UPLOAD)
    done = claim(1, attempt=1)
    ledger.claim([done])
    ledger.settle([Move(done, State.EXHAUSTED, JobCounter.EXHAUSTED)])
    assert ledger.reopen_exhausted("c1@example.com", done.token, 2, JOB) is False  # not at that attempt
    assert ledger.reopen_exhausted("c1@example.com", done.token, 1, JOB) is True
    assert ledger.reopen_exhausted("c1@example.com", done.token, 1, JOB) is False  # already reopened
    job = jobs.get(JOB)
    assert (job.exhausted, job.retried, ledger.entry("c1@example.com").state) == (0, 1, State.BLOCKED)


def test_a_job_s_segments_checkpoint_in_order_and_finish_once(stores):
    jobs = stores.jobs
    state = jobs.begin(UPLOAD)
    assert state is not None and state.checkpoint == Checkpoint() and state.parsing
    second = Checkpoint(segment=1, offset=100, line=5, tally=ParseTally(rows=5, enqueued=5))
    assert jobs.save_checkpoint(JOB, second) is True
    assert jobs.save_checkpoint(JOB, second) is False  # the same segment twice: the second loses
    assert jobs.save_checkpoint(JOB, Checkpoint(segment=3)) is False  # out of order
    jobs.mark_continued(JOB, 1)
    resumed = jobs.resume(JOB)
    assert (resumed.checkpoint, resumed.continued) == (second, 1)
    assert jobs.begin(UPLOAD).checkpoint == second  # a retried event while parsing resumes it
    jobs.finish(JOB, ParseTally(rows=9, invalid=2, enqueued=7), segment=0)  # a stale segment: ignored
    assert jobs.get(JOB).status is JobStatus.PARSING
    jobs.finish(JOB, ParseTally(rows=9, invalid=2, enqueued=7), failure_reason="not text", segment=1,
                read_as="email from 'Email'")
    job = jobs.get(JOB)
    assert (job.status, job.rows, job.invalid, job.failure_reason) == (JobStatus.FAILED, 9, 2, "not text")
    assert job.read_as == "email from 'Email'"
    assert jobs.resume(JOB).checkpoint == Checkpoint()
    assert jobs.get("no/such@job") is None and jobs.resume("no/such@job") is None


def test_a_job_held_for_its_mapping_starts_over_when_its_file_comes_again(stores):
    from common.domain.columns import Unsure

    jobs = stores.jobs
    jobs.begin(UPLOAD)
    unsure = Unsure("no column holds email addresses", ("column 1", "column 2"), (("Ann", "555"),))
    jobs.finish(JOB, ParseTally(), segment=0, read_as="UTF-8", unsure=unsure)
    held = jobs.get(JOB)
    assert (held.status, held.needs_mapping, held.rows) == (JobStatus.NEEDS_MAPPING, unsure, 0) and held.done
    # The same object again (uploaded with its columns said): parsed from the start, the hold forgotten
    state = jobs.begin(UPLOAD)
    assert state is not None and state.parsing and state.checkpoint == Checkpoint()
    assert (jobs.get(JOB).status, jobs.get(JOB).needs_mapping) == (JobStatus.PARSING, None)
    jobs.finish(JOB, ParseTally(rows=1, enqueued=1), segment=0)
    assert jobs.begin(UPLOAD) is None  # parsed: not again


def test_a_dead_letter_s_pseudonym_leads_back_to_its_contact(stores):
    ledger = stores.ledger
    ledger.claim([claim(1, attempt=1)])
    found = ledger.entry_for_pseudonym(TEST_PSEUDONYMS.of("c1@example.com"))
    assert found is not None and (found.email, found.row) == ("c1@example.com", 1)
    assert ledger.entry_for_pseudonym(TEST_PSEUDONYMS.of("nobody@example.com")) is None


@pytest.fixture(params=["memory", "dynamodb"])
def pipeline(request) -> Iterator:
    """The send path (tests/unit/pipeline.py) on the fakes, and on the DynamoDB adapters."""
    from tests.unit.pipeline import Pipeline

    quiet = {"bounce_rate": 0.0, "block_rate": 0.0}
    if request.param == "memory":
        yield Pipeline(provider_settings=quiet)
        return
    with mock_aws():
        deployment = deploy(CloudSettings.load(), client_factory=lambda service: boto3.client(service))
        yield Pipeline(deployment=deployment, provider_settings=quiet)


def batch_with_duplicates(pipeline, first: str, *emails: str) -> str:
    """A message of `first` then `emails` (repeats allowed: a file past the reader's memory of addresses)."""
    from common.domain.messages import ContactBatch, Delivery

    # The file itself has distinct addresses (the parser counts its own in-file duplicates); its message is
    # then rewritten with the repeats.
    job_id = pipeline.upload(first, "".join(f"N{i}, placeholder{i}@example.com\n" for i in range(len(emails))))
    message = pipeline.inbox[-1]
    batch = ContactBatch.decode(message.body)
    message.body = ContactBatch(job_id=batch.job_id, source_key=batch.source_key, deliveries=tuple(
        Delivery(email=e, name=f"N{i}", row=i + 1) for i, e in enumerate(emails))).encode()
    return job_id


def test_duplicates_inside_a_message_and_across_files_are_counted_once_each(pipeline):
    # Given a message whose second row repeats its first (its first ledger write is then a duplicate mark),
    # and a second file that repeats an address the first one sent to
    first = batch_with_duplicates(pipeline, "incoming/a.csv", "ann@example.com", "ann@example.com", "bob@example.com")
    pipeline.drain(redeliver_each=True)
    second = batch_with_duplicates(pipeline, "incoming/b.csv", "bob@example.com", "cy@example.com")
    pipeline.drain(redeliver_each=True)
    # Then each address got one email and each repeat is one duplicate, however often its message came
    assert pipeline.delivered_per_address() == {"ann@example.com": 1, "bob@example.com": 1, "cy@example.com": 1}
    assert (pipeline.job(first).sent, pipeline.job(first).duplicate) == (2, 1)
    assert (pipeline.job(second).sent, pipeline.job(second).duplicate) == (1, 1)
