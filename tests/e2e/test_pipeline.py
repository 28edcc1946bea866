"""The whole pipeline on the embedded local cloud: S3 -> parse_csv -> SQS -> send_email -> provider."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud, Uploaded
from localcloud.deploy.events import stack_events
from localcloud.samples import write_sample

pytestmark = pytest.mark.e2e
EVENTS = Path(__file__).resolve().parents[2] / "events"


def outbox_for(cloud: LocalCloud, job_ids: set[str]) -> list:
    return [e for e in cloud.outbox() if e.idempotency_key.rsplit("#", 2)[0] in job_ids]


def test_two_files_sharing_contacts_send_at_most_one_email_per_address(cloud, tmp_path):
    # Given two files in the seed's format that share 60 contacts, with bad rows and tagged addresses
    first = write_sample(tmp_path / "first.csv", 260, start=10_000, invalid_every=37)
    second = write_sample(tmp_path / "second.csv", 120, start=10_100)
    # When both are uploaded and the pipeline settles
    uploaded = cloud.upload([first, second])
    jobs = cloud.wait(uploaded, timeout=180)
    # Then every row is in exactly one counter
    for job in jobs:
        assert job.status.value == "SUCCEEDED", job
        assert job.rows == job.invalid + job.duplicate + job.sent + job.bounced + job.exhausted + job.unknown
    # (whichever file is claimed first, the other one counts the shared contacts as duplicates)
    assert sum(j.invalid for j in jobs) > 0 and sum(j.duplicate for j in jobs) >= 60
    # And the provider accepted at most one email per address, as many as the jobs counted sent
    attempts = outbox_for(cloud, {u.job_id for u in uploaded})
    delivered = Counter(e.to for e in attempts if e.outcome.value == "delivered")
    assert max(delivered.values()) == 1
    assert len(delivered) == sum(j.sent for j in jobs)
    # And every bounce and exhausted contact is in the DLQ with its reason
    letters = [d for d in cloud.dead_letters() if d.get("job_id") in {u.job_id for u in uploaded}]
    reasons = Counter(d["reason"] for d in letters)
    assert reasons["bounced"] == sum(j.bounced for j in jobs)
    assert reasons["blocked-exhausted"] == sum(j.exhausted for j in jobs) > 0
    # And no address appears in clear in any log line of either function
    emails = {line.split(",")[1].strip().lower() for path in (first, second)
              for line in path.read_text().splitlines() if "@" in line}
    if cloud.runtime is not None:  # the local runtime ships its log lines in batches; another endpoint writes its own
        cloud.runtime.logs.flush()
    lines = [e["message"] for f in ("ParseCsvFunction", "SendEmailFunction") for e in cloud.log_events(f)]
    assert len(lines) > 100
    assert not [line for line in lines if any(email in line for email in emails)]
    # And each file with bad rows has a rejects file with one line per bad row, and was moved to processed/
    s3 = cloud.client("s3")
    for job in jobs:
        if job.invalid:
            rejects = s3.get_object(Bucket=cloud.bucket, Key=job.rejects_key)["Body"].read().decode().splitlines()
            assert len(rejects) == 1 + job.invalid
        s3.head_object(Bucket=cloud.bucket, Key=job.key.replace("incoming/", "processed/"))


def test_the_same_file_uploaded_twice_is_one_job(cloud, tmp_path):
    path = write_sample(tmp_path / "twice.csv", 30, start=70_000)
    first = cloud.wait(cloud.upload([path]), timeout=60)
    again = cloud.wait(cloud.upload([path]), timeout=60)
    assert [j.job_id for j in again] == [j.job_id for j in first]
    assert [j for j in cloud.jobs() if j.key == "incoming/twice.csv"] == again
    assert (again[0].rows, again[0].sent + again[0].bounced + again[0].exhausted + again[0].duplicate) == (30, 30)


def test_a_plain_s3_put_triggers_the_pipeline_and_the_logs_are_lambda_like_json(cloud, tmp_path):
    # Given a file dropped into incoming/ with a plain PutObject (what `aws s3 cp` does)
    key = "incoming/dropped by hand.csv"
    body = "Ann Lee, ann.lee.dropped@example.com, 555-555-5555, 1 Main St, Austin, TX, 73301\n"
    etag = cloud.client("s3").put_object(Bucket=cloud.bucket, Key=key, Body=body.encode())["ETag"].strip('"')
    job_id = f"{cloud.bucket}/{key}@{etag}"
    # When it settles
    (job,) = cloud.wait([Uploaded(key=key, job_id=job_id)], timeout=60)
    assert (job.rows, job.sent) == (1, 1)
    # Then the send function's log group has START/END/REPORT lines and JSON lines without the address
    lines = [e["message"] for e in cloud.log_events("SendEmailFunction")]
    assert any(line.startswith("START RequestId:") for line in lines)
    assert any(line.startswith("REPORT RequestId:") and "Max Memory Used" in line for line in lines)
    records = [json.loads(line) for line in lines if line.startswith("{")]
    mine = [r for r in records if r.get("job_id") == job_id]
    assert mine and mine[0]["outcome"] == "sent" and mine[0]["service"] == "send_email"
    assert not [line for line in lines if "ann.lee.dropped@example.com" in line]


def test_every_object_put_in_incoming_gets_a_job_and_none_outside_it(cloud):
    # Given objects as `aws s3 cp` puts them: outside incoming/, and inside with endings in any case
    s3 = cloud.client("s3")
    before = {job.key for job in cloud.jobs()}
    s3.put_object(Bucket=cloud.bucket, Key="elsewhere/contacts.csv", Body=b"A, outside@example.com\n")
    uploaded = [cloud.put_upload(f"incoming/{name}", body) for name, body in (
        ("Export.Csv", b"Ann Ext, ann.ext@example.com\n"), ("excel.txt", b"Name\tEmail\nTab Bo\ttab.bo@example.com\n"),
        ("contacts.xlsx", b"PK\x03\x04 a spreadsheet"))]
    # Then each in incoming/ is a job: the readable ones sent, the spreadsheet FAILED saying why; nothing outside
    jobs = {job.key: job for job in cloud.wait(uploaded, timeout=60)}
    for key in ("incoming/Export.Csv", "incoming/excel.txt"):
        assert (jobs[key].status.value, jobs[key].rows, jobs[key].enqueued) == ("SUCCEEDED", 1, 1)
    failed = jobs["incoming/contacts.xlsx"]
    assert failed.status.value == "FAILED" and failed.failure_reason.startswith("'xlsx' files are not read")
    assert {job.key for job in cloud.jobs()} - before == set(jobs)


@pytest.mark.embedded_cloud("invokes through the local runtime, with nothing else handling the upload")
def test_invoke_runs_a_function_once_with_an_event_file(cloud):
    # The Docker-free twin of `sam local invoke ParseCsvFunction -e events/s3_put.json`
    cloud.client("s3").put_object(Bucket=cloud.bucket, Key="incoming/sample contacts.csv",
                                  Body=(EVENTS / "sample contacts.csv").read_bytes())
    event = stack_events(cloud.deployment)["s3_put.json"]
    invocation = cloud.invoke("ParseCsvFunction", event)
    assert invocation.ok, invocation.error
    (job,) = invocation.response["jobs"]
    assert (job["rows"], job["invalid"], job["duplicate"], job["enqueued"]) == (6, 1, 1, 4)
    invocation = cloud.invoke("SendEmailFunction", stack_events(cloud.deployment)["sqs_contacts.json"])
    assert invocation.ok and invocation.response == {"batchItemFailures": []}
    assert "START RequestId" not in invocation.log and '"service":"send_email"' in invocation.log


@pytest.mark.embedded_cloud("hands the event to the emulator's own asynchronous invocation queue")
def test_a_parse_that_keeps_failing_lands_in_the_on_failure_queue(cloud):
    # Given an S3 notification the function cannot handle (its bucket does not exist)
    spec = cloud.deployment.function("ParseCsvFunction")
    event = stack_events(cloud.deployment)["s3_put.json"]
    event["Records"][0]["s3"]["bucket"]["name"] = "no-such-bucket-anywhere"
    sqs = cloud.client("sqs")  # as the emulator hands S3 events to the function (its async invocation queue)
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=spec.async_queue)["QueueUrl"], MessageBody=json.dumps(event))
    # When Lambda's asynchronous retries are used up
    deadline = time.monotonic() + 60
    while not (failures := cloud.dead_letters("ParseFailuresQueueUrl")) and time.monotonic() < deadline:
        time.sleep(0.5)
    # Then a failure record with the event and the error is on the function's on-failure destination
    (failure,) = failures
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 1 + spec.async_retries
    assert failure["requestPayload"]["Records"][0]["s3"]["bucket"]["name"] == "no-such-bucket-anywhere"
    assert failure["responsePayload"]["errorType"] == "NoSuchBucket"


def test_an_event_whose_object_is_already_gone_imports_nothing_and_fails_nothing(cloud):
    # Given an event for an object that was archived or deleted before the function ran
    event = stack_events(cloud.deployment)["s3_put.json"]
    event["Records"][0]["s3"]["object"]["key"] = "incoming/vanished.csv"
    invocation = cloud.invoke("ParseCsvFunction", event)
    # Then the invocation succeeds, says why it skipped, and leaves no job behind
    assert invocation.ok, invocation.error
    assert "no longer exists" in invocation.response["jobs"][0]["skipped"]
    assert not [j for j in cloud.jobs() if j.key == "incoming/vanished.csv"]


def test_a_batch_the_redrive_policy_moved_is_shown_with_a_reason(cloud):
    from common.domain.messages import ContactBatch, Delivery

    body = ContactBatch("job", "incoming/x.csv", (Delivery("a@example.com", "A", 1),)).encode()
    cloud.client("sqs").send_message(QueueUrl=cloud.deployment.output("DeadLetterQueueUrl"), MessageBody=body)
    letters = [d for d in cloud.dead_letters() if d.get("reason") == "max-receives-exceeded"]
    assert letters and letters[-1]["source_key"] == "incoming/x.csv" and letters[-1]["contacts"] == 1


def test_copies_of_one_dead_letter_are_shown_once(cloud):
    # Given a letter written twice (a redelivery writes its follow-up again; so does a send that botocore repeated
    # after its answer was lost)
    from common.domain.messages import DeadLetter
    from common.domain.vocabulary import DeadLetterReason

    letter = DeadLetter(reason=DeadLetterReason.UNKNOWN_OUTCOME, email="copy@example.com", name="C", job_id="copies",
                        source_key="incoming/c.csv", row=3, attempt=1, provider_response="SES answer lost")
    for _ in range(2):
        cloud.client("sqs").send_message(QueueUrl=cloud.deployment.output("DeadLetterQueueUrl"),
                                         MessageBody=letter.body(cloud.pseudonym))
    # Then `localcloud dlq` shows it once
    assert len([d for d in cloud.dead_letters() if d.get("job_id") == "copies"]) == 1


def test_dlq_redrive_gives_exhausted_contacts_one_more_attempt(cloud, tmp_path):
    # Given a file whose one contact is blocked forever, so it ends EXHAUSTED in the DLQ
    path = tmp_path / "forever.csv"
    path.write_text("Fay Doe, fay.doe+blockedforever@example.com\n")
    uploaded = cloud.upload([path])
    (job,) = cloud.wait(uploaded, timeout=60)
    assert job.exhausted == 1
    # When the blocked-exhausted letters are redriven
    outcomes = cloud.redrive("blocked-exhausted")
    # Then the contact gets one more attempt, is exhausted again, and the job counts it once
    assert sum(n for why, n in outcomes.items() if why.endswith("enqueued")) >= 1
    (job,) = cloud.wait(uploaded, timeout=60)
    attempts = [e.attempt for e in cloud.outbox() if e.to == "fay.doe+blockedforever@example.com"]
    assert sorted(attempts) == [1, 2, 3, 4]
    assert (job.exhausted, job.rows) == (1, 1)
    letters = [d for d in cloud.dead_letters() if d.get("email") == "fay.doe+blockedforever@example.com"]
    assert [d["attempt"] for d in letters] == [4]


def test_an_exhausted_contact_s_dead_letter_names_it_by_pseudonym_and_its_redrive_sends_once_more(cloud, tmp_path):
    # Given a contact blocked on every attempt, dead-lettered as blocked-exhausted
    path = tmp_path / "exhausted.csv"
    path.write_text("Zed Quinn, zed.quinn+blockedforever@example.com\n")
    (job,) = cloud.wait(cloud.upload([path]), timeout=120)
    assert (job.status.value, job.exhausted) == ("SUCCEEDED", 1)
    raw = cloud.client("sqs").receive_message(QueueUrl=cloud.deployed.output("DeadLetterQueueUrl"),
                                              MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert raw and not any("zed.quinn" in m["Body"] for m in raw)  # the queue holds no address, no name
    (letter,) = [x for x in cloud.dead_letters() if x.get("job_id") == job.job_id]
    # When `localcloud dlq` shows it and an operator redrives blocked-exhausted letters
    assert (letter["reason"], letter["email"], letter["name"]) == ("blocked-exhausted",
                                                                    "zed.quinn+blockedforever@example.com", "Zed Quinn")
    attempts = int(letter["attempt"])
    assert cloud.redrive("blocked-exhausted")[f"attempt {attempts + 1} enqueued"] >= 1
    # Then the ledger (found through the pseudonym) gives the contact exactly one more attempt
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and ((entry := cloud.contact("zed.quinn+blockedforever@example.com")).attempt
                                           == attempts or entry.state.value == "CLAIMED"):
        time.sleep(0.5)  # until the new attempt is sent and settled (its send is on record by then)
    cloud.wait(cloud.upload([]), timeout=60)
    tried = [e.attempt for e in outbox_for(cloud, {job.job_id})]
    assert tried == list(range(1, attempts + 2))
