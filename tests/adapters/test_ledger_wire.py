"""The ledger and jobs adapters through the real botocore client, against the emulator with its answers lost after
it acted: botocore repeats the request, and nothing may be lost, doubled or taken for someone else's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from common.adapters.aws import client_config
from common.adapters.dynamo_jobs import DynamoJobs
from common.adapters.dynamo_ledger import DynamoLedger
from common.domain.jobs import Checkpoint, ParseTally, Upload
from common.domain.ledger import Claim, Move
from common.domain.vocabulary import JobCounter, State
from localcloud.config import LOCAL_CREDENTIALS, CloudSettings
from localcloud.deploy import Deployment, deploy
from localcloud.emulator.process import Emulator, free_port, injected_faults, set_faults, start_emulator
from tests.conftest import E2E_ENDPOINT

pytestmark = pytest.mark.skipif(bool(E2E_ENDPOINT), reason="sets the embedded emulator's faults")

TRANSACTION_LOST = "dynamodb.TransactWriteItems=lost-answer:1:times=1,from=anyone"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[Emulator, Deployment]]:
    workdir: Path = tmp_path_factory.mktemp("wire")
    emulator = start_emulator(f"http://127.0.0.1:{free_port()}", workdir / "emulator.log", detached=False)
    try:
        yield emulator, deploy(CloudSettings.load(endpoint=emulator.endpoint))
    finally:
        emulator.stop()


@pytest.fixture
def dynamodb(stack) -> Iterator:
    emulator, _ = stack
    yield boto3.client("dynamodb", endpoint_url=emulator.endpoint, region_name="us-east-1",
                       config=client_config("dynamodb"), **LOCAL_CREDENTIALS)
    set_faults(emulator.endpoint, "")


def without_client_request_token(client) -> None:
    """As an endpoint that ignores the token would behave, or a repeat after DynamoDB's 10-minute window (removed
    after botocore's own handler, which fills in a random token for a request that has none)."""
    def strip(params, model, **_) -> None:
        if model.name == "TransactWriteItems":
            params.pop("ClientRequestToken", None)

    # The least specific event, last: botocore calls the handlers of more specific names first.
    client.meta.events.register_last("before-parameter-build", strip)


def stores(stack, client) -> tuple[DynamoLedger, DynamoJobs, str]:
    _, deployment = stack
    upload = Upload(bucket="b", key=f"incoming/{uuid.uuid4().hex}.csv", etag="e1")
    jobs = DynamoJobs(deployment.outputs["JobsTableName"], client=client)
    jobs.begin(upload)
    return (DynamoLedger(deployment.outputs["ContactsTableName"], deployment.outputs["JobsTableName"], client=client,
                         sleep=lambda s: None), jobs, upload.job_id)


def claims(job_id: str, holder: str, count: int = 3) -> list[Claim]:
    return [Claim(email=f"c{n}-{holder}@example.com", token=f"{job_id}#{n}", attempt=1, carrier="m1",
                  lease_until=100.0, job_id=job_id, row=n, name="N", source_key="k", holder=holder)
            for n in range(count)]


@pytest.mark.parametrize("token", ["with its token", "without a token"])
def test_a_claim_and_a_settle_whose_answers_were_lost_are_made_once_and_are_ours(stack, dynamodb, token):
    emulator, _ = stack
    if token == "without a token":
        without_client_request_token(dynamodb)
    ledger, jobs, job_id = stores(stack, dynamodb)
    mine = claims(job_id, holder=token.replace(" ", "-"))
    # Given the emulator loses its answer to the next transaction, after committing it
    before = injected_faults(emulator.endpoint)["dynamodb_token_replays"]
    set_faults(emulator.endpoint, TRANSACTION_LOST)
    # When the claims are made (botocore repeats the request)
    lost = ledger.claim(mine)
    # Then every claim is ours: none reported lost to "someone", each item written once, by us
    assert lost == {}
    assert all(ledger.entry(c.email).holder == c.holder for c in mine)
    report = injected_faults(emulator.endpoint)
    assert report["counts"] == {"dynamodb.TransactWriteItems lost-answer": 1}
    # And the repeat was answered from its token, or, without one, recognised by the item it found
    assert report["dynamodb_token_replays"] == before + (token == "with its token")
    # When their settle's answer is lost too
    set_faults(emulator.endpoint, TRANSACTION_LOST)
    rejected = ledger.settle([Move(c, State.SENT, JobCounter.SENT, provider_message_id=f"p{c.row}") for c in mine])
    # Then no move is called stale, and each is counted once
    assert rejected == []
    assert jobs.get(job_id).sent == len(mine)
    assert injected_faults(emulator.endpoint)["counts"] == {"dynamodb.TransactWriteItems lost-answer": 1}


def test_a_redrive_whose_answer_was_lost_reopens_the_contact_once(stack, dynamodb):
    # (Without its token, the repeat finds the contact already reopened and the redrive would report it
    # "already redriven", enqueueing no retry: the contact would wait in BLOCKED forever.)
    emulator, _ = stack
    ledger, jobs, job_id = stores(stack, dynamodb)
    (done,) = claims(job_id, holder="redrive", count=1)
    ledger.claim([done])
    ledger.settle([Move(done, State.EXHAUSTED, JobCounter.EXHAUSTED)])
    set_faults(emulator.endpoint, TRANSACTION_LOST)
    assert ledger.reopen_exhausted(done.email, done.token, 1, job_id) is True
    job = jobs.get(job_id)
    assert (job.exhausted, job.retried, ledger.entry(done.email).state) == (0, 1, State.BLOCKED)


def test_a_checkpoint_whose_answer_was_lost_is_ours_and_another_writer_s_is_not(stack, dynamodb):
    emulator, _ = stack
    _, jobs, job_id = stores(stack, dynamodb)
    second = Checkpoint(segment=1, offset=100, line=5, tally=ParseTally(rows=5, enqueued=5))
    set_faults(emulator.endpoint, "dynamodb.UpdateItem=lost-answer:1:times=1,from=anyone")
    assert jobs.save_checkpoint(job_id, second) is True
    assert injected_faults(emulator.endpoint)["counts"] == {"dynamodb.UpdateItem lost-answer": 1}
    # A second parse of the same segment writing the same checkpoint still loses
    assert jobs.save_checkpoint(job_id, replace(second)) is False


class RecordingClient:
    """A DynamoDB client that keeps every TransactWriteItems request it sends."""

    def __init__(self, client):
        self._client, self.transactions = client, []

    def transact_write_items(self, **request):
        self.transactions.append(request)
        return self._client.transact_write_items(**request)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_every_ledger_transaction_names_itself_with_a_token_derived_from_the_request(aws):
    # Given the ledger on a client that records what it sends
    from common.adapters.dynamo_ledger import request_token

    client = RecordingClient(boto3.client("dynamodb"))
    ledger = DynamoLedger(aws.outputs["ContactsTableName"], aws.outputs["JobsTableName"], client=client)
    mine = claims("b/incoming/a.csv@e1", holder="h")
    # When it claims, settles, is refused a claim and reopens a contact
    ledger.claim(mine)
    ledger.settle([Move(mine[0], State.EXHAUSTED, JobCounter.EXHAUSTED), Move(mine[1], State.SENT, JobCounter.SENT)])
    ledger.claim([replace(mine[0], token="another file's row", holder="h2")])
    ledger.reopen_exhausted(mine[0].email, mine[0].token, 1, "b/incoming/a.csv@e1")
    # Then every transaction carried its own token: the digest of exactly that request (so botocore's repeat
    # of it carries the same one), never two requests with one token
    tokens = [request["ClientRequestToken"] for request in client.transactions]
    assert len(client.transactions) == 4
    assert tokens == [request_token(request["TransactItems"], 0) for request in client.transactions]
    assert len(set(tokens)) == len(tokens)
