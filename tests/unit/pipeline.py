"""A test harness that plays SQS and Lambda around the real domain code: messages are delivered,
redelivered, crashed and retried at the test's command. The ledger and the jobs are the in-memory
fakes (tests/fakes.py), or, given a deployment, the DynamoDB adapters on moto's mock."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import boto3

from common.adapters.dynamo_jobs import DynamoJobs
from common.adapters.dynamo_ledger import DynamoLedger
from common.domain.jobs import Job, Upload
from common.domain.parsing import Importer
from common.domain.sending import BatchReport, RetryPolicy, SendPorts, deliver_message
from common.ports import EmailProvider, JobStore, Ledger
from localcloud.deploy import Deployment
from tests.fakes import TEST_PSEUDONYMS, MemoryJobs, MemoryLedger, MemoryTables
from tests.unit.conftest import (
    FaultyProvider,
    MemoryContinuations,
    MemoryOutbox,
    MemoryQueue,
    MemoryUploads,
    SimulatedCrash,
)

LEASE_SECONDS = 60
VISIBILITY_TIMEOUT = 180


@dataclass
class Message:
    message_id: str
    body: str
    receives: int = 0


@dataclass
class Pipeline:
    deployment: Deployment | None = None
    max_attempts: int = 3
    can_look_up: bool = True
    provider_settings: dict = field(default_factory=dict)
    real_provider: EmailProvider | None = None  # instead of the simulated one (e.g. SES at a test endpoint)

    def __post_init__(self) -> None:
        self.outbox = MemoryOutbox()
        self.provider = FaultyProvider(self.outbox, can_look_up=self.can_look_up, **self.provider_settings)
        self.queue = MemoryQueue()
        self.uploads = MemoryUploads()
        self.ledger: Ledger
        self.jobs: JobStore
        if self.deployment is None:
            tables = MemoryTables()
            self.ledger, self.jobs = MemoryLedger(tables), MemoryJobs(tables)
        else:
            dynamodb = boto3.client("dynamodb")
            outputs = self.deployment.outputs
            self.ledger = DynamoLedger(outputs["ContactsTableName"], outputs["JobsTableName"], client=dynamodb,
                                       sleep=lambda s: None, pseudonym=TEST_PSEUDONYMS.of)
            self.jobs = DynamoJobs(outputs["JobsTableName"], client=dynamodb)
        self.ports = SendPorts(ledger=self.ledger, provider=self.real_provider or self.provider, retries=self.queue,
                               dead_letters=self.queue, draw=lambda: 0.5, clock=lambda: self.clock)
        self.policy = RetryPolicy(max_attempts=self.max_attempts, base_delay_seconds=1, max_delay_seconds=8)
        self.inbox: deque[Message] = deque()
        self.clock = 1_000_000.0
        self.job_ids: list[str] = []
        self.reports: list[BatchReport] = []

    # -- the parse side ----------------------------------------------------------------------
    def upload(self, key: str, text: str, etag: str | None = None) -> str:
        upload = Upload(bucket="bucket", key=key, etag=etag or f"etag-{len(self.job_ids)}")

        class Sink:
            def send(sink, batches) -> int:
                count = 0
                for batch in batches:
                    self.inbox.append(Message(self.queue.next_message_id(), batch.encode()))
                    count += 1
                return count

        self.uploads.put(key, text)
        result = Importer(self.jobs, Sink(), self.uploads, MemoryContinuations()).import_upload(upload)
        self.job_ids.append(result.job_id)
        return result.job_id

    # -- the send side -----------------------------------------------------------------------
    def deliver(self, message: Message, seconds_left: float | None = None) -> BatchReport:
        message.receives += 1
        report = deliver_message(message.body, message.message_id, self.ports, self.policy, now=self.clock,
                                 lease_until=self.clock + LEASE_SECONDS,
                                 send_deadline=None if seconds_left is None else self.clock + seconds_left)
        self.reports.append(report)
        return report

    def sends_take(self, seconds: float) -> None:
        """Each provider call moves the test's clock on by this much."""
        send = self.provider.send

        def slow_send(request):
            self.clock += seconds
            return send(request)

        self.provider.send = slow_send

    def crash_once_at(self, step: str) -> None:
        """Make the next delivery die at a step: before_claim, after_claim, before_settle or after_settle."""
        ledger = self.ledger
        claim, settle = ledger.claim, ledger.settle

        def restore() -> None:
            ledger.claim, ledger.settle = claim, settle

        def crashing(original, before: bool):
            def run(items):
                restore()
                if before:
                    raise SimulatedCrash(step)
                original(items)
                raise SimulatedCrash(step)
            return run

        if step.endswith("claim"):
            ledger.claim = crashing(claim, before=step.startswith("before"))
        else:
            ledger.settle = crashing(settle, before=step.startswith("before"))

    def collect_retries(self) -> None:
        """Delayed retries become new messages (their delay is the queue's business, not the test's)."""
        while self.queue.retries:
            retry = self.queue.retries.pop(0)
            self.inbox.append(Message(self.queue.next_message_id(), retry.batch.encode()))

    def drain(self, redeliver_each: bool = False, limit: int = 10_000) -> None:
        """Deliver until nothing is left; a failed or crashed delivery comes back after the visibility timeout."""
        for _ in range(limit):
            self.collect_retries()
            if not self.inbox:
                return
            message = self.inbox.popleft()
            try:
                report = self.deliver(message)
                failed = report.must_retry
            except SimulatedCrash:
                failed = True
            if failed:
                self.clock += VISIBILITY_TIMEOUT
                self.inbox.append(message)
            elif redeliver_each and message.receives == 1:
                self.inbox.append(message)  # SQS at-least-once: the same message again
        raise AssertionError("the pipeline did not drain")

    # -- what tests look at ------------------------------------------------------------------
    def job(self, job_id: str | None = None) -> Job:
        job = self.jobs.get(job_id or self.job_ids[-1])
        assert job is not None
        return job

    def delivered_per_address(self) -> Counter[str]:
        return Counter(self.outbox.delivered_to())

    def attempts_per_address(self) -> Counter[str]:
        return Counter(e.to for e in self.outbox.recorded)
