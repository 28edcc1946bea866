"""Answers lost after the service acted, on every operation the functions call, with each email provider.

The emulator commits each request, then drops the connection without answering, for one request in twenty of
every DynamoDB and SES operation the functions make, and more often for the rarer S3, SQS and Secrets Manager
calls, so that each is hit in every run (localcloud/emulator/faults.py).
botocore repeats what it may repeat; the SES client never repeats a send. Then, from what the provider
accepted, the ledger and the jobs: nobody is emailed twice, nobody is lost, every job adds up, and a contact
is UNKNOWN only where SES's own answer to its send was lost (SES cannot be asked afterwards).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from common.domain.contacts import Contact, read_contacts
from common.domain.vocabulary import State
from localcloud.cloud import LocalCloud
from localcloud.config import CloudSettings
from localcloud.emulator.process import injected_faults, set_faults
from localcloud.samples import write_sample
from tests.e2e.conftest import FAST, start_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.embedded_cloud("the emulator's faults, on an emulator of its own")]
RATES = {"dynamodb": 0.05, "sesv2": 0.05, "sqs": 0.1, "s3": 0.3, "secretsmanager": 0.3}
SERVICES = set(RATES)
LOST_ANSWERS = ",".join(f"{service}.*=lost-answer:{rate}" for service, rate in RATES.items()) + ",seed=11"
FINAL = {State.SENT, State.BOUNCED, State.EXHAUSTED, State.UNKNOWN}


# As SES is deployed: at the account's send rate (here a generous one), which also keeps one emulator process
# on two cores from answering so late that the SES client gives up on answers nobody meant to lose.
SES_PACE = {"MaxSendRate": "150", "SendsInFlight": "16"}


@pytest.fixture(params=["simulated", "ses"])
def lossy_cloud(request, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("EMAIL_PROVIDER", request.param)
    emulator = start_emulator(tmp_path)
    overrides = {**FAST, **(SES_PACE if request.param == "ses" else {})}
    cloud = LocalCloud(CloudSettings.load(endpoint=emulator.endpoint, overrides=overrides)).start()
    set_faults(emulator.endpoint, LOST_ANSWERS)
    yield cloud
    cloud.close()
    emulator.stop()


def files(tmp_path: Path) -> list[Path]:
    """2,500 rows in two files sharing 300 people, some rows invalid."""
    return [write_sample(tmp_path / "a.csv", 1500, start=0, invalid_every=97),
            write_sample(tmp_path / "b.csv", 1000, start=1200)]


def ledger(cloud: LocalCloud) -> dict[str, State]:
    pages = cloud.client("dynamodb").get_paginator("scan").paginate(
        TableName=cloud.deployed.output("ContactsTableName"), ConsistentRead=True)
    return {item["email"]["S"]: State(item["state"]["S"]) for page in pages for item in page["Items"]}


@pytest.mark.timeout(900)
def test_answers_lost_after_the_service_acted_send_nobody_twice_and_lose_nobody(lossy_cloud, tmp_path):
    cloud = lossy_cloud
    paths = files(tmp_path)
    # When 2,500 rows are imported and sent while answers are lost after the service acted
    jobs = cloud.wait(cloud.upload(paths), timeout=600)
    report = injected_faults(cloud.settings.endpoint)
    set_faults(cloud.settings.endpoint, "")  # the checks below read in peace
    lost = Counter(fault["target"] for fault in report["injected"])
    valid = {v.email for path in paths for v in read_contacts(path.read_text().splitlines()) if isinstance(v, Contact)}
    states = ledger(cloud)
    accepted = Counter(entry.to for entry in cloud.outbox() if entry.outcome.value == "delivered")
    unknown = sorted(email for email, state in states.items() if state is State.UNKNOWN)
    print(f"\n{cloud.email_provider}: {sum(j.rows for j in jobs)} rows, {len(valid)} addresses; answers lost: "
          f"{sum(lost.values())} {dict(sorted(lost.items()))}; repeats answered from a DynamoDB token: "
          f"{report['dynamodb_token_replays']}; most emails to one address: {max(accepted.values())}; "
          f"UNKNOWN: {len(unknown)} {unknown}")
    # Then answers really were lost on every service the functions use, and DynamoDB's repeats were idempotent
    called = SERVICES if cloud.email_provider == "ses" else SERVICES - {"sesv2"}
    assert {target.split(".")[0] for target in lost} == called
    assert report["dynamodb_token_replays"] > 0
    # And nobody got two emails, nobody was lost, and every job SUCCEEDED, adding up
    assert max(accepted.values()) == 1
    assert {email for email in valid if states.get(email) not in FINAL} == set()
    for job in jobs:
        assert job.status.value == "SUCCEEDED"
        assert job.rows == job.invalid + job.duplicate + job.sent + job.bounced + job.exhausted + job.unknown
    if cloud.email_provider == "simulated":
        # The simulated provider can be asked about any send whose answer went missing: nothing is UNKNOWN
        assert unknown == []
        return
    # With SES: every address was accepted once, and UNKNOWN exactly where SES's answer to the send was lost
    assert set(accepted) == valid
    lost_sends = {json.loads(fault["answer"])["MessageId"] for fault in report["injected"]
                  if fault["target"] == "sesv2.SendEmail"}
    assert lost_sends
    expected = sorted(entry.to for entry in cloud.outbox() if entry.provider_message_id in lost_sends)
    surprises = [(email, cloud.contact(email).detail) for email in sorted(set(unknown) - set(expected))[:5]]
    assert unknown == expected, f"{surprises}; answers the emulator itself was slow with: {report['slow']}"
