"""The two handlers, fed the same events `sam local invoke -e` and `localcloud invoke -e` use."""

from __future__ import annotations

import importlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from common.adapters.dynamo_ledger import DynamoLedger
from common.adapters.sqs import ContactsQueue
from common.config import ConfigError, SendSettings
from common.domain.messages import ContactBatch, Delivery
from common.domain.pseudonyms import Pseudonyms
from localcloud.deploy.events import stack_events
from tests.unit.conftest import FaultyProvider, MemoryOutbox

EVENTS = Path(__file__).resolve().parents[2] / "events"


@dataclass
class LambdaContext:
    function_name: str = "test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def load_handler(aws, monkeypatch, logical_id: str, module: str):
    """Import the handler as Lambda would: with its environment from the template, fresh module state."""
    for name, value in aws.functions[logical_id].environment.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop(module, None)
    return importlib.import_module(module)


def event(aws, name: str) -> dict:
    """The sample event `localcloud events` writes for this stack (what `sam local invoke -e` is given)."""
    return stack_events(aws)[name]


def test_parse_csv_streams_the_uploaded_file_into_contact_batches(aws, monkeypatch):
    # Given the sample file uploaded under the key the S3 event names (URL-encoded there)
    bucket = aws.outputs["UploadsBucketName"]
    boto3.client("s3").put_object(Bucket=bucket, Key="incoming/sample contacts.csv",
                                  Body=(EVENTS / "sample contacts.csv").read_bytes())
    app = load_handler(aws, monkeypatch, "ParseCsvFunction", "parse_csv.app")
    # When the S3 event is handled
    response = app.lambda_handler(event(aws, "s3_put.json"), LambdaContext())
    # Then every row is judged and the valid, distinct contacts are enqueued together
    (job,) = response["jobs"]
    assert (job["rows"], job["invalid"], job["duplicate"], job["enqueued"]) == (6, 1, 1, 4)
    messages = boto3.client("sqs").receive_message(QueueUrl=aws.outputs["ContactsQueueUrl"],
                                                   MaxNumberOfMessages=10)["Messages"]
    (batch,) = [ContactBatch.decode(m["Body"]) for m in messages]
    assert [d.email for d in batch.deliveries] == ["david.smith@example.com", "sarah.smith@example.com",
                                                    "bounce+bounce@example.com", "blocked+blocked@example.com"]
    assert batch.source_key == "incoming/sample contacts.csv"
    # And the invalid row is in the rejects file, with its row number and reason, and the file is archived
    s3 = boto3.client("s3")
    rejects = s3.get_object(Bucket=bucket, Key="rejects/sample contacts.csv")["Body"].read().decode()
    assert rejects.splitlines()[1].startswith("5,invalid email")
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]} == {
        "processed/sample contacts.csv", "rejects/sample contacts.csv"}
    # And the same event again changes nothing
    again = app.lambda_handler(event(aws, "s3_put.json"), LambdaContext())
    assert "no longer exists" in again["jobs"][0]["skipped"]  # it was archived to processed/
    depth = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.outputs["ContactsQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert sum(int(n) for n in depth.values()) == 1  # still only the first import's batch


def test_send_email_sends_records_and_dead_letters_per_contact(aws, monkeypatch, capsys):
    app = load_handler(aws, monkeypatch, "SendEmailFunction", "send_email.app")
    monkeypatch.setattr(app.ports.provider, "_sleep", lambda seconds: None)
    response = app.lambda_handler(event(aws, "sqs_contacts.json"), LambdaContext())
    assert response == {"batchItemFailures": []}
    # And its log lines name each contact by the HMAC under the stack's generated key, never by address
    key = boto3.client("secretsmanager").get_secret_value(
        SecretId=aws.outputs["PseudonymKeySecretArn"])["SecretString"].encode()
    logged = capsys.readouterr().out
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    contacts = {line["contact"] for line in lines if line.get("message", "").startswith("contact ")}
    assert Pseudonyms(key).of("ann.lee@example.com") in contacts and len(key) == 64
    assert "ann.lee@example.com" not in logged
    ledger = boto3.client("dynamodb").get_item(TableName=aws.outputs["ContactsTableName"],
                                               Key={"email": {"S": "ann.lee@example.com"}})["Item"]
    assert ledger["state"]["S"] == "SENT"
    (letter,) = boto3.client("sqs").receive_message(QueueUrl=aws.outputs["DeadLetterQueueUrl"])["Messages"]
    # and its dead letter names the bounced contact by pseudonym, which leads back to its ledger item
    bounced = json.loads(letter["Body"])
    assert bounced["reason"] == "bounced" and "@" not in letter["Body"] and "name" not in bounced
    found = DynamoLedger(aws.outputs["ContactsTableName"], aws.outputs["JobsTableName"]).entry_for_pseudonym(
        bounced["contact"])
    assert found is not None and found.state.value == "BOUNCED" and bounced["row"] == found.row


def test_send_email_reports_only_the_record_that_must_come_back(aws, monkeypatch):
    app = load_handler(aws, monkeypatch, "SendEmailFunction", "send_email.app")
    provider = FaultyProvider(MemoryOutbox(), bounce_rate=0.0, block_rate=0.0)
    provider.answer_lost_for.add("ann.lee@example.com")  # maybe sent: the message must come back to ask
    monkeypatch.setattr(app.ports, "provider", provider)
    second = dict(event(aws, "sqs_contacts.json")["Records"][0], messageId="second-message")
    second["body"] = ContactBatch("job-2", "incoming/b.csv", ContactBatch.decode(second["body"]).deliveries[1:]
                                  ).encode()
    records = [event(aws, "sqs_contacts.json")["Records"][0], second]
    response = app.lambda_handler({"Records": records}, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "059f36b4-87a3-44ab-83d2-661975830a7d"}]}


def test_a_record_that_only_ran_out_of_time_is_made_visible_again_at_once(aws, monkeypatch):
    # Given an invocation with 5 s left: less than the 10 s in which no send starts
    app = load_handler(aws, monkeypatch, "SendEmailFunction", "send_email.app")
    returned: list[tuple[str, str, float]] = []
    monkeypatch.setattr(app, "return_after", lambda *args: returned.append(args))

    class AlmostOver(LambdaContext):
        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 5_000

    # When the batch arrives
    record = event(aws, "sqs_contacts.json")["Records"][0]
    response = app.lambda_handler({"Records": [record]}, AlmostOver())
    # Then nothing is claimed or sent, the record is reported, and asked back in seconds, not minutes
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert returned == [(record["eventSourceARN"], record["receiptHandle"], 0.0)]
    contacts = boto3.client("dynamodb").scan(TableName=aws.outputs["ContactsTableName"])["Items"]
    assert contacts == []


def test_missing_settings_fail_fast_naming_every_one():
    with pytest.raises(ConfigError) as error:
        SendSettings.from_env({"EMAIL_PROVIDER": "carrier-pigeon", "MAX_SEND_ATTEMPTS": "zero"})
    message = str(error.value)
    for expected in ("CONTACTS_TABLE is not set", "EMAIL_PROVIDER='carrier-pigeon'", "MAX_SEND_ATTEMPTS='zero'",
                     "SENDER_ADDRESS is not set"):
        assert expected in message


def test_the_ses_events_handler_takes_the_sqs_event_sam_local_invoke_uses(monkeypatch):
    from moto import mock_aws

    from localcloud.config import CloudSettings
    from localcloud.deploy import deploy

    with mock_aws():
        cloud = deploy(CloudSettings.load(overrides={"EmailProvider": "ses"}),
                       client_factory=lambda service: boto3.client(service))
        app = load_handler(cloud, monkeypatch, "SesEventsFunction", "ses_events.app")
        event = stack_events(cloud)["sqs_ses_bounce.json"]
        unreadable = dict(event["Records"][0], messageId="unreadable", body="{}")
        response = app.lambda_handler({"Records": [event["Records"][0], unreadable]}, LambdaContext())
        # Nothing to retry: the bounce is about an address this ledger never emailed, the other is unreadable
        assert response == {"batchItemFailures": []}


def test_a_blocked_contact_is_retried_through_the_retry_queue_with_its_delay(aws, monkeypatch):
    # Given a contact batch whose one contact the simulated provider blocks
    app = load_handler(aws, monkeypatch, "SendEmailFunction", "send_email.app")
    record = dict(event(aws, "sqs_contacts.json")["Records"][0])
    record["body"] = ContactBatch("job-1", "incoming/a.csv", (Delivery("blocked+blocked@example.com", "Bo", 4),)
                                  ).encode()
    # When it is handled
    response = app.lambda_handler({"Records": [record]}, LambdaContext())
    # Then the record is done, and the retry waits in the retry queue, not behind the first attempts
    assert response == {"batchItemFailures": []}
    def delayed(queue: str) -> int:
        return int(boto3.client("sqs").get_queue_attributes(QueueUrl=aws.outputs[queue], AttributeNames=[
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]["ApproximateNumberOfMessagesDelayed"])

    assert (delayed("RetryQueueUrl"), delayed("ContactsQueueUrl")) == (1, 0)


def test_a_record_is_made_visible_again_on_the_queue_it_came_from(aws, monkeypatch):
    # Given a message received from the retry queue (hidden for its 360 s visibility timeout)
    app = load_handler(aws, monkeypatch, "SendEmailFunction", "send_email.app")
    sqs = boto3.client("sqs")
    url = aws.outputs["RetryQueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    # When send_email asks for it back at once
    app.return_after(arn, message["ReceiptHandle"], 0.0)
    # Then it is handed out again after seconds, from that same queue
    time.sleep(ContactsQueue.RETURN_SOON_SECONDS + 0.2)
    assert [m["MessageId"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == [message["MessageId"]]
    # And a record from a queue send_email does not read is an error that names it
    with pytest.raises(ValueError, match="'other-queue', which is neither"):
        app.return_after("arn:aws:sqs:us-east-1:123456789012:other-queue", message["ReceiptHandle"], 0.0)
