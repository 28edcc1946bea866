"""The DynamoDB ledger adapter: batched conditional claims and moves, counters earned exactly once."""

import boto3
import pytest

from common.adapters.dynamo_jobs import DynamoJobs
from common.adapters.dynamo_ledger import DynamoLedger
from common.domain.jobs import JobStatus, ParseTally, Upload
from common.domain.ledger import Claim, DuplicateMark, Move
from common.domain.vocabulary import JobCounter, State


@pytest.fixture
def ledger(aws) -> DynamoLedger:
    return DynamoLedger(aws.outputs["ContactsTableName"], aws.outputs["JobsTableName"], client=boto3.client("dynamodb"))


@pytest.fixture
def jobs(aws) -> DynamoJobs:
    return DynamoJobs(aws.outputs["JobsTableName"], client=boto3.client("dynamodb"))


def claim(n: int, token_prefix: str = "job#", carrier: str = "m1", attempt: int = 1) -> Claim:
    return Claim(email=f"c{n}@example.com", token=f"{token_prefix}{n}", attempt=attempt, carrier=carrier,
                 lease_until=100.0, job_id="job", row=n, name="N", source_key="incoming/a.csv")


def test_more_claims_than_one_transaction_holds_are_all_made_and_losers_reported(ledger):
    assert ledger.claim([claim(n) for n in range(0, 150, 2)]) == {}
    lost = ledger.claim([claim(n, token_prefix="other#") for n in range(150)])
    assert sorted(lost) == sorted(f"c{n}@example.com" for n in range(0, 150, 2))
    assert lost["c4@example.com"].token == "job#4"
    assert lost["c4@example.com"].state is State.CLAIMED


def test_moves_add_their_counters_once_and_a_move_without_its_claim_is_rejected(ledger, jobs):
    jobs.begin(Upload(bucket="b", key="k", etag="e"))
    claims = [claim(n) for n in range(120)]
    ledger.claim(claims)
    moves = [Move(c, State.SENT, JobCounter.SENT) for c in claims[:110]]
    moves += [Move(claim(n, carrier="someone-else"), State.SENT, JobCounter.SENT) for n in range(110, 115)]
    marks = [DuplicateMark(job_id="job", row=500, carrier="m1")] * 2
    rejected = ledger.settle(moves + marks)
    assert [m.claim.row for m in rejected] == list(range(110, 115))
    # the same moves again (a redelivery) no longer hold and add nothing
    assert len(ledger.settle(moves[:10])) == 10
    job_id = "job"
    dynamodb = boto3.client("dynamodb")
    shards = dynamodb.query(TableName=jobs._table, KeyConditionExpression="job_id = :j",
                            ExpressionAttributeValues={":j": {"S": job_id}})["Items"]
    total = {name: sum(int(s.get(name, {}).get("N", 0)) for s in shards) for name in ("sent", "duplicate")}
    assert total == {"sent": 110, "duplicate": 1}


def test_a_job_succeeds_exactly_when_every_row_is_settled(jobs, ledger):
    upload = Upload(bucket="b", key="incoming/a.csv", etag="e1")
    assert jobs.begin(upload) is not None
    assert jobs.get(upload.job_id).status is JobStatus.PARSING
    jobs.finish(upload.job_id, ParseTally(rows=3, invalid=1, enqueued=2))
    assert jobs.get(upload.job_id).status is JobStatus.SENDING
    claims = [Claim(email=f"x{n}@example.com", token=f"{upload.job_id}#{n}", attempt=1, carrier=f"m{n}",
                    lease_until=1.0, job_id=upload.job_id, row=n, name="N", source_key=upload.key)
              for n in (2, 3)]
    ledger.claim(claims)
    ledger.settle([Move(claims[0], State.SENT, JobCounter.SENT)])
    assert jobs.get(upload.job_id).status is JobStatus.SENDING
    ledger.settle([Move(claims[1], State.BOUNCED, JobCounter.BOUNCED)])
    job = jobs.get(upload.job_id)
    assert (job.status, job.sent, job.bounced, job.invalid) == (JobStatus.SUCCEEDED, 1, 1, 1)
    assert jobs.begin(upload) is None  # parsed already: the same object is not imported twice
