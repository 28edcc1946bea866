"""The local cloud as one object: endpoint + stack + runtime, and what users ask of them.

`start` is for the commands that may start things (up, run, deploy, invoke): it starts the emulator
if nothing answers on this machine, deploys the stack, and runs the functions where the endpoint does
not (our emulator). `connect` is for every other command: it only reads the stack that is there.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.adapters.dynamo_jobs import DynamoJobs
from common.adapters.dynamo_ledger import DynamoLedger
from common.adapters.dynamo_outbox import DynamoOutbox
from common.adapters.sqs import ContactsQueue
from common.domain.jobs import Job, Upload
from common.domain.ledger import LedgerEntry
from common.domain.parsing import unreadable_kind
from common.domain.provider import OutboxEntry
from common.domain.pseudonyms import Pseudonyms
from common.domain.redrive import redrive_letter
from common.domain.vocabulary import Outcome
from localcloud.config import CloudSettings
from localcloud.deploy import Deployment, StackNotFound, deploy, read_stack
from localcloud.emulator.process import (
    PLAIN_MOTO_REFUSAL,
    Answerer,
    EmulatorError,
    health,
    identify,
    identify_with_version,
    start_background_emulator,
)
from localcloud.emulator.server import SES_MESSAGES_PATH

UPLOAD_PREFIX = "incoming/"


class RunTimeout(RuntimeError):
    pass


class NotReady(RuntimeError):
    """Nothing answers at the endpoint, or no stack is deployed there: a read-only command stops here."""


class NotImported(ValueError):
    """A key the bucket's notifications would not send to the parse function."""


@dataclass(frozen=True)
class Uploaded:
    key: str
    job_id: str
    at: str = ""  # when it was put (UTC, ISO), to tell a held job's earlier verdict from its new one

    def seen_by(self, job: Job) -> bool:
        """The job's state answers this upload: it is not the hold of an earlier upload of the same object, which
        this one (with its columns said) starts over."""
        return not (job.needs_mapping is not None and self.at and job.parsed_at and job.parsed_at < self.at)


@dataclass(frozen=True)
class KeyFilter:
    prefix: str
    suffix: str

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)

    def __str__(self) -> str:
        return f"starting with {self.prefix!r}" + (f" and ending with {self.suffix!r}" if self.suffix else "")


class LocalCloud:
    def __init__(self, settings: CloudSettings):
        self.settings = settings
        self.answerer: Answerer | None = None
        self.answerer_version = ""
        self.deployment: Deployment | None = None
        self.runtime: Any = None  # a LambdaRuntime; imported only by the commands that run functions
        self.started_emulator = False  # `start` found nothing answering and started our emulator

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, with_runtime: bool = True, on_invocation: Callable[[Any], None] | None = None) -> LocalCloud:
        """Emulator (started if nothing answers on this machine), stack deployed, functions running."""
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        supported_types = None
        if not self.settings.is_real_aws:
            self.answerer, self.answerer_version = identify_with_version(self.settings.endpoint)
            if self.answerer is Answerer.NOTHING:
                start_background_emulator(self.settings.endpoint, self.settings.state_dir)
                self.answerer = Answerer.LOCALCLOUD
                self.started_emulator = True
            if self.answerer is Answerer.PLAIN_MOTO:
                raise EmulatorError(f"{self.settings.endpoint} is {PLAIN_MOTO_REFUSAL}")
            if self.answerer is Answerer.LOCALCLOUD:
                supported_types = set(health(self.settings.endpoint).get("cloudformation_types", []))
        self.deployment = deploy(self.settings, supported_types=supported_types,
                                 runs_code=self.answerer is not Answerer.LOCALCLOUD)
        if self.answerer is Answerer.MINISTACK and self.deployment.changed:
            self._numbers_in_mappings()
        if with_runtime and self.hosts_functions and not self.runtime_running_elsewhere():
            from localcloud.runtime.journal import RuntimeStillRunning, journal_path
            from localcloud.runtime.runtime import LambdaRuntime

            try:  # cleans up first after a runtime of this endpoint that was killed (runtime/journal.py)
                runtime = LambdaRuntime(self.deployment, on_invocation,
                                        journal_path=journal_path(self.settings.state_dir, self.settings.endpoint))
            except RuntimeStillRunning:
                return self
            self.runtime = runtime.start()
            self._runtime_lock.write_text(json.dumps({"pid": os.getpid(), "endpoint": self.settings.endpoint}))
        return self

    def connect(self) -> LocalCloud:
        """The deployed stack, read only: nothing is started or deployed."""
        if not self.settings.is_real_aws:
            self.answerer = identify(self.settings.endpoint)
            if self.answerer is Answerer.NOTHING:
                raise NotReady(f"nothing answers at {self.settings.endpoint}; start it with: localcloud up")
        try:
            self.deployment = read_stack(self.settings)
        except StackNotFound:
            raise NotReady(f"no stack {self.settings.stack_name} at {self.settings.endpoint}; "
                           "deploy it with: localcloud up") from None
        return self

    def _numbers_in_mappings(self) -> None:
        """ministack 1.5 keeps a mapping's `Ref`'d numbers (BatchSize, MaximumConcurrency) as strings when
        CloudFormation creates it, and its SQS poller then stops on the first such mapping (docs/local-cloud.md,
        "Other emulators"). The same numbers, sent again through Lambda's own API, are stored as numbers."""
        lambda_ = self.client("lambda")
        for function in self.deployed.functions.values():
            for mapping in lambda_.list_event_source_mappings(FunctionName=function.name)["EventSourceMappings"]:
                update: dict[str, Any] = {"UUID": mapping["UUID"], "BatchSize": int(mapping["BatchSize"])}
                if (most := mapping.get("ScalingConfig", {}).get("MaximumConcurrency")) is not None:
                    update["ScalingConfig"] = {"MaximumConcurrency": int(most)}
                lambda_.update_event_source_mapping(**update)

    @property
    def answered_by(self) -> str:
        """Who answers at the endpoint, with its version where it says."""
        return f"{self.answerer} {self.answerer_version}".strip() if self.answerer else "AWS"

    @property
    def hosts_functions(self) -> bool:
        """Our emulator keeps Lambda's records but runs no code: the local runtime runs the functions.
        A LocalStack (with Docker) and AWS run them themselves; a second runner would process every message twice."""
        return self.answerer is Answerer.LOCALCLOUD

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()
            self._runtime_lock.unlink(missing_ok=True)
            self.runtime = None

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
        return self.settings.client(service)

    @property
    def deployed(self) -> Deployment:
        """The stack `start` deployed or `connect` read."""
        if self.deployment is None:
            raise RuntimeError("the local cloud is not started")
        return self.deployment

    @property
    def bucket(self) -> str:
        return self.deployed.output("UploadsBucketName")

    @property
    def jobs_store(self) -> DynamoJobs:
        return DynamoJobs(self.deployed.output("JobsTableName"), self.client("dynamodb"))

    @property
    def key_filters(self) -> list[KeyFilter]:
        """The keys the bucket notifies the parse function of, as the bucket itself says."""
        configuration = self.client("s3").get_bucket_notification_configuration(Bucket=self.bucket)
        filters = []
        for entry in configuration.get("LambdaFunctionConfigurations", []):
            rules = {r["Name"].lower(): r["Value"]
                     for r in entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
            filters.append(KeyFilter(prefix=rules.get("prefix", ""), suffix=rules.get("suffix", "")))
        return filters

    def check_importable(self, key: str, filters: list[KeyFilter] | None = None) -> None:
        filters = self.key_filters if filters is None else filters
        if not any(f.matches(key) for f in filters):
            raise NotImported(f"s3://{self.bucket}/{key} would not be imported: the bucket notifies the parse "
                              "function only of keys " + (" or ".join(str(f) for f in filters) or "(none)")
                              + " (S3's suffix filters are case-sensitive)")

    # -- what users do -----------------------------------------------------------------------
    def upload(self, paths: Iterable[Path], prefix: str = UPLOAD_PREFIX,
               metadata: dict[str, str] | None = None) -> list[Uploaded]:
        """Refuses, before uploading anything, a file the bucket would not send to the parse function. `metadata`:
        the object's x-amz-meta-* (which column is which, say)."""
        paths = list(paths)
        filters = self.key_filters
        for path in paths:
            if kind := unreadable_kind(path.name):  # the parse function would fail its job, saying the same
                raise NotImported(f"{path.name} would not be read: {kind}")
            self.check_importable(prefix + path.name, filters)
        return [self.put_upload(prefix + path.name, path.read_bytes(), metadata) for path in paths]

    def put_upload(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> Uploaded:
        """One PutObject, as `aws s3 cp` makes it; the job id follows from the object's ETag."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        etag = self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body,
                                            Metadata=metadata or {})["ETag"].strip('"')
        return Uploaded(key=key, job_id=Upload(bucket=self.bucket, key=key, etag=etag).job_id, at=at)

    def invoke(self, function: str, event: Any) -> Any:
        from localcloud.runtime.runtime import LambdaRuntime

        runtime = self.runtime or LambdaRuntime(self.deployed)
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
        filters = self.key_filters
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                             Prefix=UPLOAD_PREFIX)
        for page in pages:
            for item in page.get("Contents", []):
                upload = Upload(bucket=self.bucket, key=item["Key"], etag=item["ETag"].strip('"'))
                if any(f.matches(item["Key"]) for f in filters) and upload.job_id not in known:
                    jobs.append(Job.pending(upload.job_id, self.bucket, upload.key))
        return jobs

    def wait(self, uploaded: list[Uploaded], timeout: float = 600,
             on_progress: Callable[[list[Job]], None] | None = None, patience: float | None = None) -> list[Job]:
        """Until every uploaded file's job has settled and the runtime has nothing left to do: `timeout` seconds
        in all, and, with `patience`, no longer than that without any job moving (a busy machine is slow, a
        stuck pipeline is still)."""
        started = last_move = time.monotonic()
        last: tuple | None = None
        while True:
            jobs = self.jobs(uploaded)
            if on_progress:
                on_progress(jobs)
            settled = all(job.done and upload.seen_by(job) for job, upload in zip(jobs, uploaded, strict=True))
            if settled and (self.runtime is None or self.runtime.idle()):
                if self.runtime is not None:
                    self.runtime.logs.flush()
                return jobs
            now = time.monotonic()
            if (state := tuple((j.status, j.rows, j.settled) for j in jobs)) != last:
                last, last_move = state, now
            still = patience is not None and now - last_move > patience
            if now - started > timeout or still:
                raise RunTimeout(f"not settled after {now - started:.0f} s"
                                 + (f", nothing moved for {now - last_move:.0f} s: " if still else ": ")
                                 + ", ".join(f"{j.key} {j.status} {j.settled}/{j.rows}" for j in jobs))
            time.sleep(0.2)

    @property
    def email_provider(self) -> str:
        return str(self.deployed.parameters.get("EmailProvider", "simulated"))

    def outbox(self) -> list[OutboxEntry]:
        """What the provider received: the simulated provider's outbox table, or, with EmailProvider=ses,
        the messages the emulator's SES accepted (read from moto's state; SES keeps no attempt numbers)."""
        if self.email_provider == "ses":
            return self._ses_sent_messages()
        return sorted(DynamoOutbox(self.deployed.output("OutboxTableName"), self.client("dynamodb")).entries(),
                      key=lambda e: e.received_at)

    def _ses_sent_messages(self) -> list[OutboxEntry]:
        if not self.hosts_functions:
            raise NotReady("the messages SES accepted can be listed on the embedded local cloud only; "
                           "elsewhere, see SES's sending statistics and the ledger (`localcloud contact EMAIL`)")
        with urllib.request.urlopen(self.settings.endpoint + SES_MESSAGES_PATH, timeout=30) as response:  # noqa: S310 - our emulator  # nosec B310
            messages = json.load(response)["messages"]
        return [OutboxEntry(to=", ".join(m["destinations"].get("ToAddresses", [])), attempt=0,
                            outcome=Outcome.DELIVERED, provider_message_id=m["id"], idempotency_key="",
                            subject=m["subject"], body=m["body"], received_at="")
                for m in messages]

    def contact(self, email: str) -> LedgerEntry | None:
        from common.domain.contacts import normalise_email

        return self._ledger().entry(normalise_email(email))

    def outbox_attempts(self, entry: LedgerEntry) -> list[OutboxEntry]:
        """The provider's record of each attempt of a contact's claim: the simulated provider's outbox, or, with
        SES, the messages the emulator's SES accepted for that address (SES keeps no attempt numbers)."""
        if self.email_provider == "ses":
            return [e for e in self._ses_sent_messages() if entry.email in e.to.split(", ")]
        outbox = DynamoOutbox(self.deployed.output("OutboxTableName"), self.client("dynamodb"))
        return [found for attempt in range(1, entry.attempt + 1)
                for found in outbox.find(f"{entry.token}#{attempt}")]

    def pseudonym(self, email: str) -> str:
        """What the functions' log lines call this address (HMAC under the stack's generated key)."""
        from common.domain.contacts import normalise_email

        return self.pseudonyms().of(normalise_email(email))

    def pseudonyms(self) -> Pseudonyms:
        """The stack's pseudonyms of normalised addresses, its key read once (for many addresses)."""
        from common.adapters.secrets import read_secret

        return Pseudonyms(read_secret(self.deployed.output("PseudonymKeySecretArn"), self.client("secretsmanager")))

    def _ledger(self) -> DynamoLedger:
        return DynamoLedger(self.deployed.output("ContactsTableName"), self.deployed.output("JobsTableName"),
                            client=self.client("dynamodb"))

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

    def dead_letters(self, queue_output: str = "DeadLetterQueueUrl",
                     named: int | None = None) -> list[dict[str, Any]]:
        """Read every message without consuming it: hide them while reading, then make them visible again.
        Copies of one letter (a redelivery writes a follow-up again; a send repeated after a lost answer adds a
        copy) are shown once. The first `named` letters (all: None) get their contact's address and name from
        the ledger."""
        url = self.deployed.output(queue_output)
        messages = self._hidden_messages(url)
        self._release(url, messages)
        letters = [_letter(body) for body in dict.fromkeys(message["Body"] for message in messages)]
        ledger = self._ledger()
        for letter in letters[:named]:  # a letter names its contact by pseudonym; the ledger knows who that is
            if letter.get("contact") and (entry := ledger.entry_for_pseudonym(letter["contact"])) is not None:
                letter.update(email=entry.email, name=entry.name)
        return letters

    def redrive(self, reason: str) -> Counter[str]:
        """Send the dead letters with this reason back (see common/redrive.py); returns what happened."""
        url = self.deployed.output("DeadLetterQueueUrl")
        ledger = self._ledger()
        queue = ContactsQueue(self.deployed.output("ContactsQueueUrl"), client=self.client("sqs"))
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
        group = self.deployed.function(function).log_group
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


LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def log_line_matches(message: str, job: str | None, level: str | None) -> bool:
    """Filters by job and level look inside Powertools' JSON lines (moto ignores JSON filter patterns)."""
    if not job and not level:
        return True
    try:
        record = json.loads(message)
    except json.JSONDecodeError:
        return False
    if not isinstance(record, dict):
        return False
    if job and job not in str(record.get("correlation_id") or record.get("job_id") or ""):
        return False
    return not level or LEVELS.get(str(record.get("level")).upper(), 0) >= LEVELS[level]


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
