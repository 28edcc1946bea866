"""`sam local invoke` for real: each function in a Docker container of the locally built Lambda base image
(`make lambda-image`), against an embedded local cloud, with the stack's events and environment. The containers
use the host's network (localcloud/image/host_network.py): the functions reach the local cloud on 127.0.0.1.

`make test-sam-local` starts Docker and builds the image first; elsewhere these tests are skipped where Docker or
the image is missing, with the reason."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.domain.contacts import normalise_email
from common.domain.vocabulary import State
from localcloud.cloud import LocalCloud
from localcloud.config import CloudSettings, local_environment, project_root
from localcloud.deploy.events import s3_put, ses_notification, sqs
from localcloud.image.host_network import HostNetworkDocker
from localcloud.samples import write_sample
from tests.e2e.conftest import start_emulator

ARCHITECTURE = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
IMAGE = f"public.ecr.aws/lambda/python:3.13-{ARCHITECTURE}"
SAM = str(Path(sys.executable).with_name("sam"))
PYTHON313 = Path(sys.executable).resolve().parent  # sam build wants python3.13 on PATH


def why_not_runnable() -> str:
    if shutil.which("docker") is None:
        return "no docker client (make test-sam-local installs Docker)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "Docker does not answer (make test-sam-local starts it)"
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        return f"no local image {IMAGE} (make lambda-image builds it)"
    return ""


_reason = why_not_runnable()
if _reason and os.environ.get("WELCOME_SAM_LOCAL") == "required":
    raise RuntimeError(f"make test-sam-local cannot run: {_reason}")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(_reason), reason=_reason)]


@dataclass
class SamLocal:
    cloud: LocalCloud
    template: Path
    env_vars: Path
    parameters: str
    environment: dict[str, str]
    workdir: Path

    def invoke(self, function: str, event: dict) -> dict:
        """`sam local invoke FUNCTION -e EVENT` as a person types it; the function's answer."""
        event_path = self.workdir / f"{function}-event.json"
        event_path.write_text(json.dumps(event))
        run = subprocess.run(
            [SAM, "local", "invoke", function, "-t", str(self.template), "-e", str(event_path),
             "--env-vars", str(self.env_vars), "--docker-network", "host", "--skip-pull-image",
             "--parameter-overrides", self.parameters],
            capture_output=True, text=True, env=self.environment, timeout=300, cwd=self.workdir)
        assert run.returncode == 0, run.stderr[-3000:]
        answer = run.stdout.strip().splitlines()[-1]
        return json.loads(answer)


@pytest.fixture(scope="module")
def sam_local(tmp_path_factory) -> Iterator[SamLocal]:
    # Given an embedded local cloud with the stack deployed (SES as the provider, so that all three functions
    # exist), a Docker endpoint with host networking, and the functions built by sam build
    workdir = tmp_path_factory.mktemp("sam-local")
    os.environ["LOCALCLOUD_STATE_DIR"] = str(workdir / "state")
    emulator = start_emulator(workdir)
    endpoint = emulator.endpoint
    stack = {"EmailProvider": "ses", "Architecture": ARCHITECTURE}
    cloud = LocalCloud(CloudSettings.load(endpoint=endpoint, overrides=stack)).start(with_runtime=False)
    docker = HostNetworkDocker(workdir / "docker.sock")
    parameters = " ".join(f"{k}={v}" for k, v in {**stack, "FunctionEndpointUrl": endpoint}.items())
    environment = {**os.environ, **local_environment(endpoint, cloud.settings.region),
                   "DOCKER_HOST": docker.docker_host, "SAM_CLI_TELEMETRY": "0",
                   "PATH": f"{PYTHON313}:{os.environ.get('PATH', '')}"}
    build = subprocess.run([SAM, "build", "--template-file", str(project_root() / "template.yaml"),
                            "--build-dir", str(workdir / "build"), "--parameter-overrides", parameters],
                           capture_output=True, text=True, env=environment, timeout=600, cwd=workdir)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    env_vars = workdir / "env.json"
    env_vars.write_text(subprocess.run(
        [sys.executable, "-m", "localcloud", "--endpoint", endpoint, "env-vars", "--function-endpoint", endpoint],
        capture_output=True, text=True, env=environment, check=True).stdout)
    yield SamLocal(cloud=cloud, template=workdir / "build" / "template.yaml", env_vars=env_vars,
                   parameters=parameters, environment=environment, workdir=workdir)
    docker.close()
    emulator.stop()


@pytest.fixture(scope="module")
def imported(sam_local) -> dict:
    """ParseCsvFunction invoked by sam local with the S3 event of a file really uploaded."""
    cloud = sam_local.cloud
    (uploaded,) = cloud.upload([write_sample(sam_local.workdir / "sam-local.csv", 30, start=70_000, invalid_every=10)])
    head = cloud.client("s3").head_object(Bucket=cloud.bucket, Key=uploaded.key)
    event = s3_put(cloud.bucket, uploaded.key, cloud.settings.region, size=head["ContentLength"])
    event["Records"][0]["s3"]["object"]["eTag"] = head["ETag"].strip('"')
    return {"answer": sam_local.invoke("ParseCsvFunction", event), "uploaded": uploaded}


def test_parse_csv_in_a_container_imports_the_uploaded_file(sam_local, imported):
    # Then the job exists with every row judged, and its contacts wait in the contacts queue
    (job,) = sam_local.cloud.jobs([imported["uploaded"]])
    assert imported["answer"]["jobs"][0]["rows"] == 30 == job.rows
    assert job.invalid == 3 and job.status.value == "SENDING"
    queue = sam_local.cloud.deployed.output("ContactsQueueUrl")
    waiting = sam_local.cloud.client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert int(waiting["ApproximateNumberOfMessages"]) >= 1


@pytest.fixture(scope="module")
def sent(sam_local, imported) -> list[str]:
    """SendEmailFunction invoked by sam local with an SQS event of a real contacts message."""
    cloud = sam_local.cloud
    queue = cloud.deployed.output("ContactsQueueUrl")
    sqs_client = cloud.client("sqs")
    (message,) = sqs_client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=300,
                                           MessageSystemAttributeNames=["All"])["Messages"]
    event = sqs(cloud.deployed.function("SendEmailFunction").sqs_sources[0].queue_arn, [message["Body"]])
    event["Records"][0].update(messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"])
    answer = sam_local.invoke("SendEmailFunction", event)
    assert answer == {"batchItemFailures": []}
    sqs_client.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])  # as the event source would
    return [delivery["email"] for delivery in json.loads(message["Body"])["contacts"]]


def test_send_email_in_a_container_sends_and_settles_a_real_contacts_message(sam_local, sent):
    # Then every contact of the message is settled in the ledger, and SES accepted the sent ones
    cloud = sam_local.cloud
    entries = {email: cloud.contact(email) for email in sent}
    assert entries and all(e is not None and e.state in (State.SENT, State.BOUNCED) for e in entries.values())
    accepted = {o.to for o in cloud.outbox()}
    assert {email for email, e in entries.items() if e.state is State.SENT} <= accepted


def test_ses_events_in_a_container_moves_a_bounced_contact(sam_local, sent):
    # Given a contact SES accepted, When SES reports a hard bounce for that message
    cloud = sam_local.cloud
    email = next(e for e in sent if cloud.contact(e).state is State.SENT)
    entry = cloud.contact(email)
    bounce = ses_notification("Bounce", "welcome@example.com", email, cloud.deployed.account, cloud.settings.region,
                              cloud.deployed.output("SesConfigurationSetName"),
                              message_id=entry.provider_message_id)
    queue_arn = cloud.deployed.function("SesEventsFunction").sqs_sources[0].queue_arn
    answer = sam_local.invoke("SesEventsFunction", sqs(queue_arn, [json.dumps(bounce)]))
    # Then the ledger says BOUNCED, and the bounce is dead-lettered for inspection
    assert answer == {"batchItemFailures": []}
    assert cloud.contact(normalise_email(email)).state is State.BOUNCED
    assert any(letter.get("reason") == "bounced" for letter in cloud.dead_letters())
