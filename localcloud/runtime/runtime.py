"""The local Lambda runtime: runs the template's functions for the triggers the template declares.

- Each function gets a pool of execution environments (worker processes forked from a template that
  has the libraries imported, see zygote.py and worker.py), at most
  its concurrency limit: the sum of its SQS events' ScalingConfig.MaximumConcurrency (each event
  source runs up to its own, as on Lambda), else its reserved concurrency, else a small local default.
- SQS event sources poll like Lambda: batch size and batching window, Lambda-shaped records, an
  error fails the whole batch, otherwise only records not in `batchItemFailures` are deleted.
- Asynchronous invocations (S3 notifications, which the emulator puts on the function's async
  invocation queue) run with the function's retry count, and a failure record goes to its on-failure
  destination, as the function's EventInvokeConfig says.
- Every invocation's output goes to CloudWatch Logs `/aws/lambda/<name>` with START/END/REPORT lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from localcloud.config import aws_client, local_environment
from localcloud.deploy import Deployment, FunctionSpec, SqsSource
from localcloud.emulator.patches.lambda_hosting import ASYNC_QUEUE_ATTRIBUTES
from localcloud.processes import process_alive
from localcloud.runtime.journal import RuntimeJournal, recover
from localcloud.runtime.zygote import EXECUTION_ENV, TEMPLATE_PROCESS_NAME, zygote_for

_log = logging.getLogger("localcloud.runtime")

DEFAULT_CONCURRENCY = 4
INIT_TIMEOUT_SECONDS = 60  # a cold start (importing the handler) is not part of the invocation's timeout
# Lambda waits about 1 and then 2 minutes between asynchronous retries; locally seconds are enough.
ASYNC_RETRY_DELAYS = (1.0, 2.0)
POLL_WAIT_SECONDS = 1
STOP_SECONDS = 2  # `localcloud up` ends within 5 s of Ctrl-C (its watchdog: 3 s)
FORK_ATTEMPTS = 3  # a new template process is started before each further attempt


@dataclass
class Invocation:
    function: str
    request_id: str
    response: Any
    error: dict[str, Any] | None
    log: str
    duration_ms: float
    init_ms: float
    max_memory_mb: int
    timed_out: bool = False
    aws_requests: dict[str, int] = field(default_factory=dict)  # service.Operation -> count
    aws_resources: list[tuple[str, str, str]] = field(default_factory=list)  # (service, Operation, resource) touched
    ended_at: float = field(default_factory=time.time)  # epoch seconds the runtime had the answer

    @property
    def ok(self) -> bool:
        return self.error is None


def environment_process_name(spec: FunctionSpec) -> str:
    """What `ps` shows for an execution environment of this function (at most 15 characters)."""
    return f"env:{spec.logical_id.removesuffix('Function')}"[:15]


class ExecutionEnvironment:
    def __init__(self, spec: FunctionSpec, deployment: Deployment, journal: RuntimeJournal | None = None):
        settings = deployment.settings
        self.spec = spec
        self._journal = journal
        self.log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        environment = {
            **local_environment(settings.endpoint, settings.region), **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb), "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream, "AWS_EXECUTION_ENV": EXECUTION_ENV,
            "LAMBDA_TASK_ROOT": str(settings.code_dir), "TZ": ":UTC", "LANG": "en_US.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # No X-Ray daemon here.
            "POWERTOOLS_TRACE_DISABLED": "true"}
        # A fork of the template process (localcloud.zygote: libraries imported, nothing of ours),
        # talking over a socket pair.
        ours, theirs = socket.socketpair()
        for attempt in range(1, FORK_ATTEMPTS + 1):
            zygote = zygote_for(settings.root)
            try:
                self._pid = zygote.fork(theirs)
                break
            except (OSError, RuntimeError):  # the template died between the check and the fork: again
                if attempt == FORK_ATTEMPTS:
                    raise
        theirs.close()
        if journal is not None:
            journal.process_started(zygote.pid, TEMPLATE_PROCESS_NAME)
            journal.process_started(self._pid, environment_process_name(spec))
        self._connection = Connection(ours.detach())
        self._ready = False
        with contextlib.suppress(OSError):  # killed as soon as it was forked: its first invocation reports it
            self._connection.send({"handler": spec.handler, "code_dir": str(settings.code_dir),
                                   "environment": environment,
                                   "process_name": environment_process_name(spec)})

    def invoke(self, event: Any, request_id: str) -> Invocation:
        """One invocation; an environment that dies (killed while idle, in its init or mid-invocation: EOF, a
        reset connection or a broken pipe) is a failed invocation, Runtime.ExitError, as in Lambda."""
        try:
            return self._invoke(event, request_id)
        except (EOFError, OSError):
            self.close()
            return self._failed(request_id, "Runtime.ExitError", "the runtime exited" if self._ready
                                else "the runtime exited during init")

    def _invoke(self, event: Any, request_id: str) -> Invocation:
        spec = self.spec
        if not self._ready:
            if not self._connection.poll(INIT_TIMEOUT_SECONDS):
                self.close()
                return self._failed(request_id, "Runtime.InitTimeout", f"init took over {INIT_TIMEOUT_SECONDS} s")
            self._connection.recv()
            self._ready = True
        deadline = time.time() + spec.timeout_seconds
        self._connection.send({"event": event, "context": {
            "function_name": spec.name, "function_version": "$LATEST", "invoked_function_arn": spec.arn,
            "memory_limit_in_mb": spec.memory_mb, "aws_request_id": request_id,
            "log_group_name": spec.log_group, "log_stream_name": self.log_stream, "deadline": deadline}})
        if self._connection.poll(spec.timeout_seconds + 0.5):
            return Invocation(function=spec.name, request_id=request_id, **self._connection.recv())
        self.close()
        return self._failed(request_id, "Sandbox.Timedout", f"Task timed out after {spec.timeout_seconds:.2f} seconds",
                            timed_out=True)

    def _failed(self, request_id: str, error_type: str, message: str, timed_out: bool = False) -> Invocation:
        """An invocation the runtime itself ended (no answer from the handler)."""
        return Invocation(function=self.spec.name, request_id=request_id, response=None,
                          error={"errorType": error_type, "errorMessage": message}, log="",
                          duration_ms=self.spec.timeout_seconds * 1000 if timed_out else 0, init_ms=0,
                          max_memory_mb=0, timed_out=timed_out)

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def alive(self) -> bool:
        return process_alive(self._pid)

    def close(self) -> None:
        if self.alive:
            os.kill(self._pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.alive and time.monotonic() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(OSError):  # closed already by the thread that saw it die
            self._connection.close()
        if self._journal is not None:
            self._journal.process_ended(self._pid)


class CloudWatchLogWriter:
    """Writes invocations to CloudWatch Logs from a background thread, as Lambda's log agent does."""

    MAX_BATCH_EVENTS = 10_000
    MAX_BATCH_BYTES = 900_000

    def __init__(self, deployment: Deployment):
        settings = deployment.settings
        self._logs = aws_client("logs", settings.endpoint, settings.region)
        self._queue: queue.Queue[tuple[str, str, list[tuple[int, str]]] | None] = queue.Queue()
        self._known_streams: set[tuple[str, str]] = set()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def write(self, spec: FunctionSpec, stream: str, invocation: Invocation, started_ms: int) -> None:
        lines = [f"START RequestId: {invocation.request_id} Version: $LATEST"]
        lines += [line for line in invocation.log.splitlines() if line.strip()]
        if invocation.timed_out:
            lines.append(f"{datetime.now(UTC).isoformat()} {invocation.request_id} "
                         f"Task timed out after {spec.timeout_seconds:.2f} seconds")
        lines.append(f"END RequestId: {invocation.request_id}")
        report = (f"REPORT RequestId: {invocation.request_id}\tDuration: {invocation.duration_ms:.2f} ms\t"
                  f"Billed Duration: {math.ceil(invocation.duration_ms)} ms\tMemory Size: {spec.memory_mb} MB\t"
                  f"Max Memory Used: {invocation.max_memory_mb} MB")
        if invocation.init_ms:
            report += f"\tInit Duration: {invocation.init_ms:.2f} ms"
        lines.append(report + "\t")
        end_ms = started_ms + int(invocation.duration_ms)
        events = [(min(started_ms + i, end_ms), line) for i, line in enumerate(lines)]
        self._queue.put((spec.log_group, stream, events))

    def flush(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.flush()
        self._queue.put(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._put(*item)
            except ClientError:
                pass  # losing a log line must not stop the runtime
            finally:
                self._queue.task_done()

    def _put(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        if (group, stream) not in self._known_streams:
            for create in (lambda: self._logs.create_log_group(logGroupName=group),
                           lambda: self._logs.create_log_stream(logGroupName=group, logStreamName=stream)):
                try:
                    create()
                except ClientError as error:
                    if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                        raise
            self._known_streams.add((group, stream))
        batch: list[dict[str, Any]] = []
        size = 0
        for timestamp, message in events:
            cost = len(message.encode()) + 26
            if batch and (len(batch) >= self.MAX_BATCH_EVENTS or size + cost > self.MAX_BATCH_BYTES):
                self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
                batch, size = [], 0
            batch.append({"timestamp": timestamp, "message": message[:250_000]})
            size += cost
        if batch:
            self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


class FunctionPool:
    """Warm execution environments of one function, at most `concurrency` busy at once."""

    def __init__(self, spec: FunctionSpec, deployment: Deployment, logs: CloudWatchLogWriter, concurrency: int,
                 on_invocation: Callable[[Invocation], None] | None = None, journal: RuntimeJournal | None = None):
        self.spec = spec
        self._journal = journal
        self.concurrency = concurrency
        self.slots = threading.BoundedSemaphore(concurrency)
        self._deployment = deployment
        self._logs = logs
        self._idle: list[ExecutionEnvironment] = []
        self._busy: set[ExecutionEnvironment] = set()
        self._closed = False
        self._lock = threading.Lock()
        self._on_invocation = on_invocation
        self.in_flight = 0
        self.aws_requests: Counter[str] = Counter()
        self.aws_resources: set[tuple[str, str, str]] = set()
        self.invocations: list[Invocation] = []

    def invoke(self, event: Any) -> Invocation:
        """Run one invocation; the caller holds one of `slots`."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the runtime is stopping")
            environment = self._idle.pop() if self._idle else None
            self.in_flight += 1
        try:
            if environment is not None and not environment.alive:  # killed while idle
                environment.close()
                environment = None
            if environment is None:
                environment = ExecutionEnvironment(self.spec, self._deployment, self._journal)
            with self._lock:
                self._busy.add(environment)
                closed = self._closed
            if closed:  # closed while this one started: it must not outlive the runtime
                environment.close()
                raise RuntimeError("the runtime is stopping")
            started_ms = int(time.time() * 1000)
            invocation = environment.invoke(event, str(uuid.uuid4()))
            self._logs.write(self.spec, environment.log_stream, invocation, started_ms)
            with self._lock:
                self.invocations.append(replace(invocation, log="", aws_resources=[]))
                self.aws_requests.update(invocation.aws_requests)
                self.aws_resources.update(invocation.aws_resources)
            with self._lock:
                self._busy.discard(environment)
                if environment.alive and not invocation.timed_out and not self._closed:
                    self._idle.append(environment)
            if self._on_invocation:
                self._on_invocation(invocation)
            return invocation
        finally:
            with self._lock:
                self.in_flight -= 1

    @property
    def idle_pids(self) -> list[int]:
        with self._lock:
            return [environment.pid for environment in self._idle]

    def close(self) -> None:
        """Every environment ends now, busy ones too (their invocations fail, as when Lambda's are shut down:
        the batch comes back to its queue)."""
        with self._lock:
            self._closed = True
            environments = [*self._idle, *self._busy]
            self._idle.clear()
        for environment in environments:
            environment.close()


class _Poller(threading.Thread):
    def __init__(self, name: str, deployment: Deployment, pool: FunctionPool, queue_url: str,
                 journal: RuntimeJournal | None = None, max_concurrency: int | None = None):
        """`max_concurrency`: this source's own limit (an SQS event's ScalingConfig), within the pool's."""
        super().__init__(name=name, daemon=True)
        self.journal = journal
        self._own_slots = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None
        settings = deployment.settings
        self.sqs = aws_client("sqs", settings.endpoint, settings.region)
        self.pool = pool
        self.queue_url = queue_url
        self.region = settings.region
        self.stopping = threading.Event()
        self.executor = ThreadPoolExecutor(max_workers=pool.concurrency, thread_name_prefix=name)
        self.pending = 0
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()  # the event source's own SQS requests (Lambda bills them too)
        self.failures: list[str] = []  # the runtime's own errors while handling messages

    def run(self) -> None:
        while not self.stopping.is_set():
            if not self.take_slot():
                continue
            try:
                messages = self.receive()
            except Exception as error:  # noqa: BLE001 - the emulator went away or hiccupped: try again shortly
                self.failures.append(f"receive: {type(error).__name__}: {error}")
                messages = []
                time.sleep(0.5)
            if not messages:
                self.give_back_slot()
                continue
            if self.journal is not None:
                self.journal.messages_taken(self.queue_url, [m["ReceiptHandle"] for m in messages])
            with self._lock:
                self.pending += 1
            self.executor.submit(self._handle_and_release, messages)

    def receive(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def handle(self, messages: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _handle_and_release(self, messages: list[dict[str, Any]]) -> None:
        try:
            self.handle(messages)
        except Exception as error:  # noqa: BLE001 - the runtime's own failure, not the function's
            self.failures.append(f"{type(error).__name__}: {error}")
            _log.warning("%s: the runtime failed handling %d messages: %r", self.name, len(messages), error)
            with contextlib.suppress(Exception):
                self.return_soon(messages, "the runtime failed handling them")
        finally:
            if self.journal is not None:  # deleted, or left to its visibility timeout as Lambda leaves it
                self.journal.messages_released([m["ReceiptHandle"] for m in messages])
            with self._lock:
                self.pending -= 1
            self.give_back_slot()

    def take_slot(self) -> bool:
        """One of this source's slots, then one of the function's."""
        if self._own_slots is not None and not self._own_slots.acquire(timeout=0.2):
            return False
        if self.pool.slots.acquire(timeout=0.2):
            return True
        if self._own_slots is not None:
            self._own_slots.release()
        return False

    def give_back_slot(self) -> None:
        self.pool.slots.release()
        if self._own_slots is not None:
            self._own_slots.release()

    def return_soon(self, messages: list[dict[str, Any]], why: str) -> None:
        """The environment died under the batch (its process was killed), or the runtime itself failed:
        unlike an error of the handler's, nothing says the batch is at fault, so it is handed out again in
        a second, not after the visibility timeout (12 hours on an async invocation queue). Receive counts
        still grow, so a batch that kills every environment ends up dead-lettered by the redrive policy."""
        _log.warning("%s: %s; %d messages come back in 1 s", self.name, why, len(messages))
        for start in range(0, len(messages), 10):
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 1}
                for i, m in enumerate(messages[start:start + 10])])

    @property
    def busy(self) -> bool:
        return self.pending > 0

    def stop(self, deadline: float) -> None:
        self.stopping.set()
        self.join(timeout=max(0.0, deadline - time.monotonic()))
        self.executor.shutdown(wait=True, cancel_futures=True)


def _lambda_sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": {key: attributes[key] for key in ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                                         "ApproximateFirstReceiveTimestamp") if key in attributes},
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
                   "stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
            for name, value in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message.get("MD5OfBody")
        or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region}


class SqsEventSource(_Poller):
    def __init__(self, deployment: Deployment, pool: FunctionPool, source: SqsSource,
                 journal: RuntimeJournal | None = None):
        super().__init__(f"sqs-{pool.spec.logical_id}", deployment, pool, source.queue_url, journal,
                         max_concurrency=source.max_concurrency)
        self.source = source

    def receive(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        window_ends = None
        while len(records) < self.source.batch_size and not self.stopping.is_set():
            self.requests["sqs.ReceiveMessage"] += 1
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, self.source.batch_size - len(records)),
                WaitTimeSeconds=0 if records else POLL_WAIT_SECONDS, MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"])
            batch = response.get("Messages", [])
            records += batch
            if not records:
                return records
            window_ends = window_ends or time.monotonic() + self.source.batching_window_seconds
            if not batch:
                if time.monotonic() >= window_ends:
                    break
                time.sleep(0.05)
        return records

    def handle(self, messages: list[dict[str, Any]]) -> None:
        self.requests["messages"] += len(messages)
        event = {"Records": [_lambda_sqs_record(m, self.source.queue_arn, self.region) for m in messages]}
        invocation = self.pool.invoke(event)
        if not invocation.ok:
            if (invocation.error or {}).get("errorType") == "Runtime.ExitError":
                self.return_soon(messages, "an execution environment died under them")
            return  # the whole batch becomes visible again after the visibility timeout
        failed: set[str] = set()
        if self.source.report_batch_item_failures and isinstance(invocation.response, dict):
            failures = invocation.response.get("batchItemFailures") or []
            failed = {f.get("itemIdentifier") for f in failures}
            known = {m["MessageId"] for m in messages}
            if not failed <= known:
                return  # Lambda treats an unknown or empty identifier as the whole batch failing
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages) if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.requests["sqs.DeleteMessageBatch"] += 1
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done[start:start + 10])



class AsyncEventSource(_Poller):
    """The function's async invocation queue (S3 events) -> invocations with retries and an on-failure destination."""

    def __init__(self, deployment: Deployment, pool: FunctionPool,
                 retry_delays: tuple[float, ...] = ASYNC_RETRY_DELAYS, journal: RuntimeJournal | None = None):
        settings = deployment.settings
        sqs = aws_client("sqs", settings.endpoint, settings.region)
        queue_url = sqs.create_queue(QueueName=pool.spec.async_queue, Attributes=ASYNC_QUEUE_ATTRIBUTES)["QueueUrl"]
        super().__init__(f"async-{pool.spec.logical_id}", deployment, pool, queue_url, journal=journal)
        self.retry_delays = retry_delays

    def receive(self) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1,
                                            WaitTimeSeconds=POLL_WAIT_SECONDS)
        messages = response.get("Messages", [])
        for message in list(messages):
            if "Records" not in json.loads(message["Body"]):  # s3:TestEvent when notifications are set up
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                messages.remove(message)
        return messages

    def handle(self, messages: list[dict[str, Any]]) -> None:
        spec = self.pool.spec
        for message in messages:
            event = json.loads(message["Body"])
            attempts = 1 + spec.async_retries
            for attempt in range(1, attempts + 1):
                invocation = self.pool.invoke(event)
                if invocation.ok:
                    break
                if attempt < attempts:
                    time.sleep(self.retry_delays[min(attempt - 1, len(self.retry_delays) - 1)])
            else:
                if spec.on_failure_queue_url:
                    self.sqs.send_message(QueueUrl=spec.on_failure_queue_url, MessageBody=json.dumps({
                        "version": "1.0", "timestamp": datetime.now(UTC).isoformat(),
                        "requestContext": {"requestId": invocation.request_id, "functionArn": f"{spec.arn}:$LATEST",
                                           "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
                        "requestPayload": event,
                        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                            "functionError": "Unhandled"},
                        "responsePayload": invocation.error}))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class LambdaRuntime:
    def __init__(self, deployment: Deployment, on_invocation: Callable[[Invocation], None] | None = None,
                 journal_path: Path | None = None):
        """With `journal_path` (the runtime that polls the event sources), first clean up after a previous
        runtime for this endpoint that was killed (journal.py), then keep a journal of its own."""
        self.deployment = deployment
        settings = deployment.settings
        self._sqs = aws_client("sqs", settings.endpoint, settings.region)
        self.recovery = recover(journal_path, self._sqs) if journal_path else None
        self.journal = RuntimeJournal(journal_path) if journal_path else None
        self.logs = CloudWatchLogWriter(deployment)
        self.pools: dict[str, FunctionPool] = {}
        for spec in deployment.functions.values():
            # As on Lambda, each SQS event source runs up to its own MaximumConcurrency.
            limits = [s.max_concurrency for s in spec.sqs_sources if s.max_concurrency]
            concurrency = sum(limits) if limits else spec.reserved_concurrency or DEFAULT_CONCURRENCY
            self.pools[spec.logical_id] = FunctionPool(spec, deployment, self.logs, concurrency, on_invocation,
                                                       journal=self.journal)
        self.sources: list[_Poller] = []

    def start(self) -> LambdaRuntime:
        for spec in self.deployment.functions.values():
            pool = self.pools[spec.logical_id]
            self.sources += [SqsEventSource(self.deployment, pool, s, self.journal) for s in spec.sqs_sources]
            if spec.async_queue:
                self.sources.append(AsyncEventSource(self.deployment, pool, journal=self.journal))
        for source in self.sources:
            source.start()
        return self

    def invoke(self, function: str, event: Any) -> Invocation:
        pool = self.pools[self.deployment.function(function).logical_id]
        with pool.slots:
            return pool.invoke(event)

    def idle(self) -> bool:
        """No invocation running and nothing waiting (visible, in flight or delayed) on a polled queue."""
        if any(source.busy for source in self.sources) or any(p.in_flight for p in self.pools.values()):
            return False
        for source in self.sources:
            attributes = self._sqs.get_queue_attributes(QueueUrl=source.queue_url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            if any(int(value) for value in attributes.values()):
                return False
        return not any(source.busy for source in self.sources)

    def stop(self) -> None:
        """Within seconds: pollers stop taking messages, every environment ends (an invocation cut short is
        retried from its queue, as on Lambda), and the pollers' threads are given what is left of
        STOP_SECONDS together, not each its own."""
        for source in self.sources:
            source.stopping.set()
        for pool in self.pools.values():
            pool.close()
        deadline = time.monotonic() + STOP_SECONDS
        for source in self.sources:
            source.stop(deadline)
        self.logs.close()
        if self.journal is not None:
            self.journal.close()
