"""The local cloud as one object: endpoint + deployment + runtime, and what users ask of them."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.jobs import DynamoJobs, Job, Upload
from common.ledger import DynamoLedger
from common.provider import DynamoOutbox, OutboxEntry, Outcome
from common.queue import ContactsQueue
from common.redrive import redrive_letter
from localcloud.deploy import Deployment, deploy
from localcloud.emulator import Emulator, aws_client, ensure_emulator
from localcloud.runtime import Invocation, LambdaRuntime
from localcloud.settings import CloudSettings

UPLOAD_PREFIX = "incoming/"


class RunTimeout(RuntimeError):
    pass


@dataclass(frozen=True)
class Uploaded:
    key: str
    job_id: str


class LocalCloud:
    def __init__(self, settings: CloudSettings):
        self.settings = settings
        self.emulator: Emulator | None = None
        self.deployment: Deployment | None = None
        self.runtime: LambdaRuntime | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, with_runtime: bool = True,
              on_invocation: Callable[[Invocation], None] | None = None) -> LocalCloud:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.emulator = ensure_emulator(self.settings.endpoint, self.settings.state_dir)
        self.deployment = deploy(self.settings)
        if with_runtime and not self.runtime_running_elsewhere():
            self.runtime = LambdaRuntime(self.deployment, on_invocation).start()
            self._runtime_lock.write_text(json.dumps({"pid": os.getpid(), "endpoint": self.settings.endpoint}))
        return self

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()
            self._runtime_lock.unlink(missing_ok=True)
            self.runtime = None

    def __enter__(self) -> LocalCloud:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def _runtime_lock(self) -> Path:
        return self.settings.state_dir / "runtime.json"

    def runtime_running_elsewhere(self) -> bool:
        """`localcloud up` in another terminal already runs the functions for this endpoint."""
        try:
            lock = json.loads(self._runtime_lock.read_text())
            if lock["endpoint"] != self.settings.endpoint or lock["pid"] == os.getpid():
                return False
            os.kill(int(lock["pid"]), 0)
            return True
        except (OSError, ValueError, KeyError):
            return False

    # -- clients -----------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        return aws_client(service, self.settings.endpoint, self.settings.region)

    @property
    def _deployed(self) -> Deployment:
        if self.deployment is None:
            raise RuntimeError("the local cloud is not started")
        return self.deployment

    @property
    def bucket(self) -> str:
        return self._deployed.output("UploadsBucketName")

    @property
    def jobs_store(self) -> DynamoJobs:
        return DynamoJobs(self._deployed.output("JobsTableName"), self.client("dynamodb"))

    # -- what users do -----------------------------------------------------------------------
    def upload(self, paths: Iterable[Path], prefix: str = UPLOAD_PREFIX) -> list[Uploaded]:
        uploaded = []
        s3 = self.client("s3")
        for path in paths:
            key = prefix + path.name
            etag = s3.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())["ETag"].strip('"')
            uploaded.append(Uploaded(key=key, job_id=Upload(bucket=self.bucket, key=key, etag=etag).job_id))
        return uploaded

    def invoke(self, function: str, event: Any) -> Invocation:
        runtime = self.runtime or LambdaRuntime(self._deployed)
        try:
            return runtime.invoke(function, event)
        finally:
            if runtime is not self.runtime:
                runtime.stop()

    def jobs(self, uploaded: Iterable[Uploaded] | None = None) -> list[Job]:
        """Job records; an object in incoming/ that no parse has picked up yet shows as PENDING."""
        store = self.jobs_store
        if uploaded is not None:
            return [store.get(u.job_id) or Job.pending(u.job_id, self.bucket, u.key) for u in uploaded]
        jobs = store.all()
        known = {job.job_id for job in jobs}
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                             Prefix=UPLOAD_PREFIX)
        for page in pages:
            for item in page.get("Contents", []):
                upload = Upload(bucket=self.bucket, key=item["Key"], etag=item["ETag"].strip('"'))
                if item["Key"].endswith(".csv") and upload.job_id not in known:
                    jobs.append(Job.pending(upload.job_id, self.bucket, upload.key))
        return jobs

    def wait(self, uploaded: list[Uploaded], timeout: float = 600,
             on_progress: Callable[[list[Job]], None] | None = None) -> list[Job]:
        """Until every uploaded file's job has settled and the runtime has nothing left to do."""
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.jobs(uploaded)
            if on_progress:
                on_progress(jobs)
            settled = all(job.done for job in jobs)
            if settled and (self.runtime is None or self.runtime.idle()):
                if self.runtime is not None:
                    self.runtime.logs.flush()
                return jobs
            if time.monotonic() > deadline:
                raise RunTimeout(f"not settled after {timeout:.0f} s: "
                                 + ", ".join(f"{j.key} {j.status} {j.settled}/{j.rows}" for j in jobs))
            time.sleep(0.2)

    @property
    def email_provider(self) -> str:
        return str(self._deployed.context.parameters.get("EmailProvider", "simulated"))

    def outbox(self) -> list[OutboxEntry]:
        """What the provider received: the simulated provider's outbox table, or, with EmailProvider=ses,
        the messages the emulator's SES accepted (read from moto's state; SES keeps no attempt numbers)."""
        if self.email_provider == "ses":
            return self._ses_sent_messages()
        return sorted(DynamoOutbox(self._deployed.output("OutboxTableName"), self.client("dynamodb")).entries(),
                      key=lambda e: e.received_at)

    def _ses_sent_messages(self) -> list[OutboxEntry]:
        with urllib.request.urlopen(f"{self.settings.endpoint}/moto-api/data.json", timeout=30) as response:  # noqa: S310 - our emulator  # nosec B310
            state = json.load(response)
        return [OutboxEntry(to=", ".join(m["destinations"].get("ToAddresses", [])), attempt=0,
                            outcome=Outcome.DELIVERED, provider_message_id=m["id"], idempotency_key="",
                            subject=m["subject"], body=m["body"], received_at="")
                for m in state.get("ses", {}).get("Message", [])]

    def _hidden_messages(self, url: str) -> list[dict[str, Any]]:
        """Every message of the queue, hidden from others while the caller looks at them."""
        sqs = self.client("sqs")
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                        MessageAttributeNames=["All"]).get("Messages", [])
            if not batch:
                return messages
            messages += batch

    def _release(self, url: str, messages: list[dict[str, Any]]) -> None:
        sqs = self.client("sqs")
        for start in range(0, len(messages), 10):
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start:start + 10])])

    def dead_letters(self, queue_output: str = "DeadLetterQueueUrl") -> list[dict[str, Any]]:
        """Read every message without consuming it: hide them while reading, then make them visible again."""
        url = self._deployed.output(queue_output)
        messages = self._hidden_messages(url)
        self._release(url, messages)
        return [_letter(message["Body"]) for message in messages]

    def redrive(self, reason: str) -> Counter[str]:
        """Send the dead letters with this reason back (see common/redrive.py); returns what happened."""
        url = self._deployed.output("DeadLetterQueueUrl")
        ledger = DynamoLedger(self._deployed.output("ContactsTableName"), self._deployed.output("JobsTableName"),
                              client=self.client("dynamodb"))
        queue = ContactsQueue(self._deployed.output("ContactsQueueUrl"), client=self.client("sqs"))
        outcomes: Counter[str] = Counter()
        untouched = []
        for message in self._hidden_messages(url):
            if _letter(message["Body"]).get("reason") != reason:
                untouched.append(message)
                continue
            result = redrive_letter(message["Body"], ledger, queue)
            outcomes[result.why] += 1
            self.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        self._release(url, untouched)
        return outcomes

    def log_events(self, function: str, since_ms: int | None = None,
                   contains: str | None = None) -> Iterator[dict[str, Any]]:
        """CloudWatch events of a function; the text filter is applied here (moto ignores filter patterns)."""
        logs = self.client("logs")
        group = self._deployed.function(function).log_group
        request: dict[str, Any] = {"logGroupName": group}
        if since_ms is not None:
            request["startTime"] = since_ms
        try:
            pages = list(logs.get_paginator("filter_log_events").paginate(**request))
        except logs.exceptions.ResourceNotFoundException:
            return
        events = sorted((e for page in pages for e in page.get("events", [])),
                        key=lambda e: (e["timestamp"], e.get("eventId", "")))
        for event in events:
            if contains is None or contains in event["message"]:
                yield event


def _letter(body: str) -> dict[str, Any]:
    """A dead letter as written by send_email, or a contact batch the queue's redrive policy moved here."""
    try:
        letter = json.loads(body)
    except json.JSONDecodeError:
        return {"reason": "unreadable", "message": body}
    if isinstance(letter, dict) and "reason" not in letter and "contacts" in letter:
        return {"reason": "max-receives-exceeded", "job_id": letter.get("job", ""),
                "source_key": letter.get("key", ""), "contacts": len(letter.get("contacts", [])),
                "message": body}
    return letter
