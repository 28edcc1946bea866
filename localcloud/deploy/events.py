"""Sample events for the deployed stack, in the shapes `sam local generate-event` makes.

Every name in them (bucket, queues, account, region, topic) comes from the stack, so
`sam local invoke -e events/s3_put.json` and `localcloud invoke -e ...` name resources that exist.
`localcloud events` (and `localcloud up`) write them to events/.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from common.domain.messages import ContactBatch, Delivery
from localcloud.deploy.stack import Deployment

SAMPLE_KEY = "incoming/sample contacts.csv"  # `localcloud upload "events/sample contacts.csv"` puts it here
EVENT_TIME = "2026-11-25T12:00:00.000Z"
MESSAGE_ID = "0100017c3c1e2c9f-5e0b1f2a-8f8e-4f3b-a6a1-6f0c7d8e9a0b-000000"


def s3_put(bucket: str, key: str, region: str, size: int = 446) -> dict[str, Any]:
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region, "eventTime": EVENT_TIME,
        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE123456789",
                             "x-amz-id-2": "EXAMPLE123/5678abcdefghijklambdaisawesome/mnopqrstuvwxyzABCDEFGH"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "CsvUploaded",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key), "size": size, "eTag": "0123456789abcdef0123456789abcdef",
                          "sequencer": "0A1B2C3D4E5F678901"}}}]}


def sqs(queue_arn: str, bodies: list[str]) -> dict[str, Any]:
    region = queue_arn.split(":")[3]
    return {"Records": [{
        "messageId": f"059f36b4-87a3-44ab-83d2-661975830a{0x7d + index:02x}",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795521600000",
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1795521600001"},
        "messageAttributes": {}, "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region}
        for index, body in enumerate(bodies)]}


def ses_notification(kind: str, sender: str, recipient: str, account: str, region: str,
                     configuration_set: str, message_id: str = MESSAGE_ID) -> dict[str, Any]:
    """An SES event as its configuration set publishes it (the SNS message body): a bounce or a complaint."""
    mail = {"timestamp": "2026-11-25T12:00:02.012Z", "source": sender,
            "sourceArn": f"arn:aws:ses:{region}:{account}:identity/{sender}", "sendingAccountId": account,
            "messageId": message_id, "destination": [recipient], "headersTruncated": False,
            "commonHeaders": {"from": [sender], "to": [recipient], "messageId": message_id, "subject": "Welcome!"},
            "tags": {"ses:configuration-set": [configuration_set], "ses:from-domain": [sender.split("@")[-1]]}}
    if kind == "Bounce":
        return {"eventType": "Bounce", "bounce": {
            "feedbackId": "0100017c3c1e2d1a-7e5c6a8d-3b1a-4b5e-9e6f-1a2b3c4d5e6f-000000",
            "bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": recipient, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            "timestamp": "2026-11-25T12:00:03.669Z", "remoteMtaIp": "127.0.2.0",
            "reportingMTA": "dsn; b224-13.smtp-out.amazonses.com"}, "mail": mail}
    return {"eventType": "Complaint", "complaint": {
        "feedbackId": "0100017c3c2a8b11-2f4d6e8a-1c3e-4a5b-8c7d-9e0f1a2b3c4d-000000", "complaintSubType": None,
        "complainedRecipients": [{"emailAddress": recipient}], "timestamp": "2026-11-25T12:05:00.000Z",
        "userAgent": "Mozilla/5.0 (compatible; Feedback Loop)", "complaintFeedbackType": "abuse",
        "arrivalDate": "2026-11-25T12:04:58.000Z"}, "mail": mail}


def stack_events(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """File name -> event, for the functions this stack has."""
    region, account = deployment.settings.region, deployment.account
    events: dict[str, dict[str, Any]] = {
        "s3_put.json": s3_put(deployment.output("UploadsBucketName"), SAMPLE_KEY, region)}
    send = deployment.functions.get("SendEmailFunction")
    if send and send.sqs_sources:
        batch = ContactBatch(job_id="events/sqs_contacts.json", source_key="incoming/from-an-event.csv", deliveries=(
            Delivery(email="ann.lee@example.com", name="Ann Lee", row=1),
            Delivery(email="bo.chen+bounce@example.com", name="Bo Chen", row=2)))
        events["sqs_contacts.json"] = sqs(send.sqs_sources[0].queue_arn, [batch.encode()])
    sender = deployment.parameters.get("SenderAddress", "welcome@example.com")
    configuration_set = deployment.outputs.get("SesConfigurationSetName", f"{deployment.settings.stack_name}-welcome")
    for kind in ("Bounce", "Complaint"):
        events[f"ses_{kind.lower()}.json"] = ses_notification(kind, sender, "ann.lee@example.com", account, region,
                                                              configuration_set)
    feedback = deployment.functions.get("SesEventsFunction")
    if feedback and feedback.sqs_sources:
        events["sqs_ses_bounce.json"] = sqs(feedback.sqs_sources[0].queue_arn, [json.dumps(events["ses_bounce.json"])])
    return events


def write_events(deployment: Deployment, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, event in stack_events(deployment).items():
        path = directory / name
        path.write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
