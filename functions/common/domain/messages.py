"""The contacts queue's message format: many contacts of one job per message.

A contact's claim token is `<job id>#<row>`: it is derived, not random, so that a file
parsed twice (a retried S3 event) produces the same tokens and is recognised as the same work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from common.domain.vocabulary import DeadLetterReason

FORMAT_VERSION = 1


# One message's settle is one TransactWriteItems: its moves plus the job's counter item, at most 100.
MAX_CONTACTS_PER_MESSAGE = 99


# SendMessageBatch caps the whole batch of 10 at 256 KiB, so one message stays well under a tenth.
MAX_MESSAGE_BYTES = 24_000


class MalformedMessage(ValueError):
    """A queue message that is not a contact batch this code can read."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One contact to deliver, as carried by a message; attempt > 1 marks a retry."""

    email: str
    name: str
    row: int
    attempt: int = 1

    def to_json(self) -> dict[str, str | int]:
        return {"email": self.email, "name": self.name, "row": self.row, "attempt": self.attempt}


@dataclass(frozen=True, slots=True)
class ContactBatch:
    job_id: str
    source_key: str
    deliveries: tuple[Delivery, ...]

    def token(self, delivery: Delivery) -> str:
        return claim_token(self.job_id, delivery.row)

    def encode(self) -> str:
        return json.dumps({"v": FORMAT_VERSION, "job": self.job_id, "key": self.source_key,
                           "contacts": [d.to_json() for d in self.deliveries]},
                          separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, body: str) -> ContactBatch:
        try:
            data = json.loads(body)
            if data.get("v") != FORMAT_VERSION:
                raise MalformedMessage(f"unsupported message version {data.get('v')!r}")
            deliveries = tuple(
                Delivery(email=str(c["email"]), name=str(c["name"]), row=int(c["row"]), attempt=int(c["attempt"]))
                for c in data["contacts"])
            return cls(job_id=str(data["job"]), source_key=str(data["key"]), deliveries=deliveries)
        except MalformedMessage:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise MalformedMessage(f"not a contact batch: {error!r}") from None


_NEEDS_ESCAPING = re.compile(r'["\\\x00-\x1f\x7f-\x9f\u2028\u2029]')


_FIXED_COST = len(json.dumps(Delivery(email="", name="", row=0, attempt=0).to_json())) - 2  # without the zeros


def encoded_cost(delivery: Delivery) -> int:
    """Bytes the delivery adds to a message (UTF-8 JSON, with room for a separator).

    The same as measuring `json.dumps(delivery.to_json())`, counted directly when neither string
    needs escaping (nearly always: the parser already turned control characters into spaces).
    """
    if _NEEDS_ESCAPING.search(delivery.email) or _NEEDS_ESCAPING.search(delivery.name):
        return len(json.dumps(delivery.to_json(), ensure_ascii=False).encode()) + 1
    return (_FIXED_COST + len(delivery.email.encode()) + len(delivery.name.encode())
            + len(str(delivery.row)) + len(str(delivery.attempt)) + 1)


def claim_token(job_id: str, row: int) -> str:
    return f"{job_id}#{row}"


def pack_batches(deliveries: Iterable[Delivery], job_id: str, source_key: str,
                 max_contacts: int = MAX_CONTACTS_PER_MESSAGE,
                 max_bytes: int = MAX_MESSAGE_BYTES) -> Iterator[ContactBatch]:
    """Group deliveries into as few messages as the count and size limits allow."""
    pending: list[Delivery] = []
    size = len(job_id) + len(source_key) + 64
    base = size
    for delivery in deliveries:
        cost = encoded_cost(delivery)
        if pending and (len(pending) >= max_contacts or size + cost > max_bytes):
            yield ContactBatch(job_id, source_key, tuple(pending))
            pending, size = [], base
        pending.append(delivery)
        size += cost
    if pending:
        yield ContactBatch(job_id, source_key, tuple(pending))


@dataclass(frozen=True)
class DeadLetter:
    reason: DeadLetterReason
    email: str
    name: str
    job_id: str
    source_key: str
    row: int
    attempt: int
    provider_response: str = ""
    message: str = ""  # the raw message, for one that could not be read
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def body(self, pseudonym: Callable[[str], str]) -> str:
        """What the dead-letter queue keeps: the contact by pseudonym, with its job and row; no address or name
        (`localcloud dlq` and the redrive find them in the ledger)."""
        fields = {key: value for key, value in asdict(self).items() if key not in ("email", "name")}
        contact = pseudonym(self.email) if self.email else ""
        return json.dumps({**fields, "reason": self.reason.value, "contact": contact}, ensure_ascii=False)


@dataclass(frozen=True)
class DelayedRetry:
    batch: ContactBatch
    delay_seconds: int


def merge_retries(retries: Iterable[DelayedRetry]) -> list[DelayedRetry]:
    """Retries of one job, file and delay, packed into as few messages as the limits allow.

    An address is never twice in one message (its claim could not be written twice in one
    transaction, and the second row would read as a duplicate): a second copy goes to another message.
    """
    lanes: dict[tuple[str, str, int], list[dict[str, Delivery]]] = {}
    for retry in retries:
        same_kind = lanes.setdefault((retry.batch.job_id, retry.batch.source_key, retry.delay_seconds), [])
        for delivery in retry.batch.deliveries:
            lane = next((lane for lane in same_kind if delivery.email not in lane), None)
            if lane is None:
                lane = {}
                same_kind.append(lane)
            lane[delivery.email] = delivery
    return [DelayedRetry(batch=batch, delay_seconds=delay)
            for (job_id, source_key, delay), same_kind in lanes.items() for lane in same_kind
            for batch in pack_batches(lane.values(), job_id=job_id, source_key=source_key)]


@dataclass(frozen=True)
class ContinuationRequest:
    job_id: str
    segment: int

    def encode(self) -> str:
        return json.dumps({"continue": self.job_id, "segment": self.segment}, ensure_ascii=False)

    @classmethod
    def decode(cls, body: str) -> ContinuationRequest:
        data = json.loads(body)
        return cls(job_id=str(data["continue"]), segment=int(data["segment"]))
