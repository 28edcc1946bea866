"""EmailProvider=ses on the emulator: the emails go through moto's SES, and a hard bounce SES reports
afterwards (an SES-shaped event on the configuration set's SNS topic) reaches the ledger through the
ses_events function."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud
from localcloud.config import CloudSettings
from localcloud.deploy.events import stack_events
from localcloud.samples import write_sample
from tests.e2e.conftest import FAST, start_emulator
from tests.e2e.roles import calls_outside_roles

pytestmark = [pytest.mark.e2e,
              pytest.mark.embedded_cloud("reads what the emulator's SES accepted (SES has no API to list it)")]
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def ses_cloud(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("EMAIL_PROVIDER", "ses")
    emulator = start_emulator(tmp_path)
    cloud = LocalCloud(CloudSettings.load(endpoint=emulator.endpoint, overrides={**FAST, "MaxSendRate": "50"})).start()
    yield cloud
    cloud.close()
    emulator.stop()


def twice_emailed(cloud, accepted) -> str:
    """For a failure message: each address SES took more than one email for, with its ledger item and its
    send_email log lines (by pseudonym), so that a second email can be traced to the path that sent it."""
    counts = Counter(m.to for m in accepted)
    report = []
    for address in [a for a, n in counts.items() if n > 1]:
        lines = [e["message"] for e in cloud.log_events("SendEmailFunction", contains=cloud.pseudonym(address))]
        report.append(f"{address}: {counts[address]} emails; ledger {cloud.contact(address)}; logs {lines}")
    return "\n".join(report) or "no address was emailed twice"


def test_a_file_is_emailed_through_ses_and_a_later_hard_bounce_moves_its_contact(ses_cloud, tmp_path):
    cloud = ses_cloud
    # Given a file of 150 contacts, sent through SES at no more than 50 emails a second
    [job] = cloud.wait(cloud.upload([write_sample(tmp_path / "ses.csv", 150)]), timeout=120)
    # (the sample repeats some people: those rows are duplicates; SES bounces nobody synchronously here)
    assert (job.status.value, job.rows, job.bounced) == ("SUCCEEDED", 150, 0)
    assert job.sent == job.rows - job.invalid - job.duplicate
    accepted = cloud.outbox()
    assert len(accepted) == len({m.to for m in accepted}) == job.sent, twice_emailed(cloud, accepted)
    assert all(m.subject == "Welcome!" and "Welcome!" in m.body for m in accepted)
    # When SES later reports a hard bounce for one of those emails
    bounced = accepted[7]
    event = stack_events(cloud.deployment)["ses_bounce.json"]
    event["mail"]["messageId"] = bounced.provider_message_id
    event["bounce"]["bouncedRecipients"][0]["emailAddress"] = bounced.to
    cloud.client("sns").publish(TopicArn=cloud.deployment.output("SesEventsTopicArn"), Message=json.dumps(event))
    # Then the ses_events function moves it: the job counts it bounced, and it is in the DLQ as bounced
    deadline = time.monotonic() + 60
    while cloud.jobs_store.get(job.job_id).bounced == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    after = cloud.jobs_store.get(job.job_id)
    assert (after.status.value, after.sent, after.bounced) == ("SUCCEEDED", job.sent - 1, 1)
    letters = cloud.dead_letters("DeadLetterQueueUrl")
    assert [(letter["reason"], letter["email"]) for letter in letters] == [("bounced", bounced.to)]
    # and every request the three functions made is an action their roles grant (SES's SendEmail among them)
    assert calls_outside_roles(cloud) == []
    assert cloud.runtime.pools["SendEmailFunction"].aws_requests["sesv2.SendEmail"]
