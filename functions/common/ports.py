"""Every port of the pipeline, declared once: what the domain asks of the outside world.

The domain (`common.domain`) is written against these Protocols; `common.adapters` implements them
on DynamoDB, SQS, S3 and SES (and the simulated provider), and the tests' in-memory fakes implement
them too. Nothing here imports boto3 or an adapter (`make lint` checks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from common.domain.columns import Unsure
    from common.domain.contacts import InvalidRow
    from common.domain.jobs import Checkpoint, ImportState, ParseTally, Upload
    from common.domain.ledger import Claim, LedgerEntry, Transition
    from common.domain.messages import ContactBatch, DeadLetter, DelayedRetry
    from common.domain.parsing import OpenedObject
    from common.domain.provider import EmailRequest, OutboxEntry, SendResult
    from common.domain.vocabulary import FeedbackMove, State


class BatchSink(Protocol):
    def send(self, batches: Iterable[ContactBatch]) -> int: ...


class RejectsSink(Protocol):
    def add(self, row: InvalidRow) -> None: ...

    def close(self, earlier_parts: tuple[str, ...] = ()) -> str:
        """Write the rejects file (earlier segments' parts, then these rows); return its key,
        empty when there was nothing to write."""
        ...

    def close_part(self) -> str:
        """Write these rows as one segment's part; return its key, empty when there were none."""
        ...


class Uploads(Protocol):
    def open(self, upload: Upload, offset: int = 0, if_match: str = "") -> OpenedObject:
        """The object's bytes from `offset`; raises ObjectGone when it is not there (any more),
        or no longer has the ETag `if_match`."""
        ...

    def rejects_for(self, upload: Upload, segment: int = 0) -> RejectsSink: ...

    def archive(self, upload: Upload, failed: bool) -> str:
        """Move (or keep, or delete) the imported object; return its new key, if it has one."""
        ...


class Continuations(Protocol):
    def request(self, job_id: str, segment: int) -> None:
        """Have a later invocation import segment `segment` of the job."""
        ...


class RetryQueue(Protocol):
    def send_retries(self, retries: Sequence[DelayedRetry]) -> int: ...


class DeadLetters(Protocol):
    def put(self, letters: Sequence[DeadLetter]) -> int: ...


class FeedbackLedger(Protocol):
    def record_feedback(self, email: str, provider_message_id: str, state: State,
                        detail: str) -> tuple[FeedbackMove, LedgerEntry | None]: ...


class ReopeningLedger(Protocol):
    def reopen_exhausted(self, email: str, token: str, attempt: int, job_id: str) -> bool: ...

    def entry_for_pseudonym(self, pseudonym: str) -> LedgerEntry | None:
        """The entry a dead letter names by its contact's pseudonym."""
        ...


class ContactsQueuePort(Protocol):
    def send(self, batches: Any) -> int: ...

    def send_retries(self, retries: Any) -> int: ...


class Ledger(Protocol):
    def claim(self, claims: Sequence[Claim]) -> dict[str, LedgerEntry | None]:
        """Try every claim; return, keyed by email, what stands in the way of each claim that lost."""
        ...

    def settle(self, transitions: Sequence[Transition]) -> list[Transition]:
        """Apply the transitions with their job counters; return those whose condition no longer held."""
        ...


class JobStore(Protocol):
    def begin(self, upload: Upload, content_etag: str = "") -> ImportState | None:
        """Create the job, or find it still being parsed; None once its parse has finished. A job held as
        NEEDS_MAPPING starts over (the same file uploaded again, with its columns said)."""
        ...

    def resume(self, job_id: str) -> ImportState | None:
        """The job as the parser left it (any stage); None if there is no such job."""
        ...

    def save_checkpoint(self, job_id: str, checkpoint: Checkpoint) -> bool:
        """Move the job from segment `checkpoint.segment - 1` to `checkpoint`; False if another
        invocation already moved it."""
        ...

    def mark_continued(self, job_id: str, segment: int) -> None: ...

    def finish(self, job_id: str, tally: ParseTally, failure_reason: str = "", rejects_key: str = "",
               segment: int = 0, read_as: str = "", unsure: Unsure | None = None) -> None:
        """The parse is over: PARSED, FAILED (a reason), or NEEDS_MAPPING (`unsure`: nothing was sent)."""
        ...


class EmailProvider(Protocol):
    can_look_up: bool

    def send(self, request: EmailRequest) -> SendResult: ...

    def look_up(self, idempotency_key: str) -> SendResult | None:
        """The outcome of an earlier send with this key, or None if the provider never received it."""
        ...


class Outbox(Protocol):
    def record(self, entry: OutboxEntry) -> None: ...

    def find(self, idempotency_key: str) -> list[OutboxEntry]: ...

    def entries(self) -> Iterator[OutboxEntry]: ...


class SlotSource(Protocol):
    def reserve(self, count: int, earliest: int) -> range:
        """`count` consecutive slot numbers, none below `earliest`, handed out to nobody else."""
        ...
