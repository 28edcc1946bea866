"""SQS adapters: the contacts queue (batches, delayed retries) and the dead-letter queue."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

from common.adapters.aws import client as aws_client
from common.domain.messages import ContactBatch, ContinuationRequest, DeadLetter, DelayedRetry

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


SQS_BATCH_LIMIT = 10


FAILED_ENTRY_ATTEMPTS = 6


class QueueSendError(RuntimeError):
    pass


def _chunks[T](items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class SqsSender:
    """SendMessageBatch in tens, re-sending the entries SQS reports as Failed (botocore retries
    only whole-request errors, not per-entry failures)."""

    def __init__(self, queue_url: str, client: SQSClient | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.queue_url = queue_url
        self._client = client or aws_client("sqs")
        self._sleep = sleep

    def send_entries(self, entries: Iterable[dict[str, Any]]) -> int:
        sent = 0
        for chunk in _chunks(entries, SQS_BATCH_LIMIT):
            pending: dict[str, Any] = {str(i): {**entry, "Id": str(i)} for i, entry in enumerate(chunk)}
            for attempt in range(FAILED_ENTRY_ATTEMPTS):
                response = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=list(pending.values()))
                for ok in response.get("Successful", []):
                    pending.pop(ok["Id"], None)
                    sent += 1
                failed = response.get("Failed", [])
                if not failed:
                    break
                if any(f.get("SenderFault") for f in failed):
                    raise QueueSendError(f"SQS rejected messages as malformed: {failed}")
                self._sleep(min(0.1 * 2**attempt, 2.0))
            if pending:
                raise QueueSendError(f"{len(pending)} messages still failed after {FAILED_ENTRY_ATTEMPTS} attempts")
        return sent


class ContactsQueue:
    # A message that may come back at once comes back after this, not after the whole visibility timeout.
    RETURN_SOON_SECONDS = 2
    MAX_VISIBILITY_SECONDS = 43_200  # SQS's limit (12 hours)

    def __init__(self, queue_url: str, client: SQSClient | None = None):
        self._client = client or aws_client("sqs")
        self._queue_url = queue_url
        self._sender = SqsSender(queue_url, self._client)

    def return_after(self, receipt_handle: str, seconds: float) -> None:
        visibility = min(self.MAX_VISIBILITY_SECONDS, max(self.RETURN_SOON_SECONDS, math.ceil(seconds)))
        self._client.change_message_visibility(QueueUrl=self._queue_url, ReceiptHandle=receipt_handle,
                                               VisibilityTimeout=visibility)

    def send(self, batches: Iterable[ContactBatch]) -> int:
        return self._sender.send_entries({"MessageBody": b.encode()} for b in batches)

    def send_retries(self, retries: Sequence[DelayedRetry]) -> int:
        return self._sender.send_entries(
            {"MessageBody": r.batch.encode(), "DelaySeconds": r.delay_seconds} for r in retries)


class DeadLetterQueue:
    """Dead letters name their contact by pseudonym (the ledger has the address)."""

    def __init__(self, queue_url: str, pseudonym: Callable[[str], str], client: SQSClient | None = None):
        self._sender = SqsSender(queue_url, client)
        self._pseudonym = pseudonym

    def put(self, letters: Sequence[DeadLetter]) -> int:
        return self._sender.send_entries(
            {"MessageBody": letter.body(self._pseudonym),
             "MessageAttributes": {"reason": {"DataType": "String", "StringValue": letter.reason.value}}}
            for letter in letters)


class ParseContinuations:
    """Asks parse_csv to import the next segment of a file (its second event source)."""

    def __init__(self, queue_url: str, client: SQSClient | None = None):
        self._client = client or aws_client("sqs")
        self._queue_url = queue_url

    def request(self, job_id: str, segment: int) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=ContinuationRequest(job_id, segment).encode())
