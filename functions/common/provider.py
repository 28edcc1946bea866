"""The email provider port, and the deterministic simulated provider modelled on the seed's mock client.

Outcomes: delivered (accepted), bounced (permanent), blocked (temporary, retry later).
A `TransientProviderError` is none of these: throttled (certainly not taken; retried like a block)
or an answer lost in transport (maybe taken; looked up before anything is sent again).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from common.aws import client as aws_client
from common.config import SimulatedProviderSettings
from common.welcome import render_welcome

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class Outcome(StrEnum):
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class EmailRequest:
    to: str
    name: str
    attempt: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str
    detail: str = ""


class TransientProviderError(RuntimeError):
    """Throttled or unreachable: try the record again later.

    `maybe_sent` is False when the provider said it did not take the email (throttling), and
    True when the answer was lost (a timeout after the request went out): then the retry must
    ask the provider before sending again, or give the contact up as UNKNOWN.
    """

    def __init__(self, message: str, maybe_sent: bool = False):
        super().__init__(message)
        self.maybe_sent = maybe_sent


class ProviderConfigurationError(TransientProviderError):
    """The provider refused the sender's own setup (identity not verified, no permission, missing
    configuration set): nothing was sent, and nothing will be until someone fixes the account.
    The contact is released unsent and its message comes back, so no row is lost meanwhile."""

    def __init__(self, message: str):
        super().__init__(f"provider configuration error: {message}", maybe_sent=False)


class EmailProvider(Protocol):
    can_look_up: bool

    def send(self, request: EmailRequest) -> SendResult: ...

    def look_up(self, idempotency_key: str) -> SendResult | None:
        """The outcome of an earlier send with this key, or None if the provider never received it."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One send attempt as the simulated provider received it."""

    to: str
    attempt: int
    outcome: Outcome
    provider_message_id: str
    idempotency_key: str
    subject: str
    body: str
    received_at: str


class Outbox(Protocol):
    def record(self, entry: OutboxEntry) -> None: ...

    def find(self, idempotency_key: str) -> list[OutboxEntry]: ...

    def entries(self) -> Iterator[OutboxEntry]: ...


def _unit_interval(*parts: object) -> float:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


class SimulatedProvider:
    """Outcome and latency are functions of (seed, email, attempt), so every run is reproducible.

    Tags in the local part force outcomes: `+bounce` always bounces, `+blockedforever`
    is always blocked, `+blocked` is blocked on attempts 1 and 2 and then delivered,
    `+throttled` is refused (TransientProviderError) on attempt 1. A share `throttle_rate`
    of the other sends is refused the same way, before anything is recorded.
    """

    can_look_up = True

    def __init__(self, settings: SimulatedProviderSettings, outbox: Outbox,
                 sleep: Callable[[float], None] = time.sleep):
        self._settings = settings
        self._outbox = outbox
        self._sleep = sleep

    def outcome_for(self, email: str, attempt: int) -> Outcome:
        local_part = email.rsplit("@", 1)[0]
        if "+bounce" in local_part:
            return Outcome.BOUNCED
        if "+blockedforever" in local_part:
            return Outcome.BLOCKED
        if "+blocked" in local_part:
            return Outcome.BLOCKED if attempt <= 2 else Outcome.DELIVERED
        draw = _unit_interval(self._settings.seed, email, attempt, "outcome")
        if draw < self._settings.bounce_rate:
            return Outcome.BOUNCED
        if draw < self._settings.bounce_rate + self._settings.block_rate:
            return Outcome.BLOCKED
        return Outcome.DELIVERED

    def latency_for(self, email: str, attempt: int) -> float:
        s = self._settings
        if _unit_interval(s.seed, email, attempt, "slow") >= s.slow_rate:
            return 0.0
        return s.slow_min_seconds + (s.slow_max_seconds - s.slow_min_seconds) * _unit_interval(
            s.seed, email, attempt, "latency")

    def throttles(self, email: str, attempt: int) -> bool:
        if "+throttled" in email.rsplit("@", 1)[0]:
            return attempt == 1
        return _unit_interval(self._settings.seed, email, attempt, "throttle") < self._settings.throttle_rate

    def send(self, request: EmailRequest) -> SendResult:
        if self.throttles(request.to, request.attempt):
            raise TransientProviderError("429 too many requests: maximum sending rate exceeded")
        received_at = datetime.now(UTC).isoformat(timespec="milliseconds")  # when the request arrived
        self._sleep(self.latency_for(request.to, request.attempt))
        outcome = self.outcome_for(request.to, request.attempt)
        email = render_welcome(request.name)
        result = SendResult(outcome=outcome, provider_message_id=f"sim-{uuid.uuid4()}",
                            detail={Outcome.DELIVERED: "250 accepted",
                                    Outcome.BOUNCED: "550 5.1.1 mailbox unavailable",
                                    Outcome.BLOCKED: "421 4.7.0 temporarily blocked, try again later"}[outcome])
        self._outbox.record(OutboxEntry(
            to=request.to, attempt=request.attempt, outcome=outcome, provider_message_id=result.provider_message_id,
            idempotency_key=request.idempotency_key, subject=email.subject, body=email.text,
            received_at=received_at))
        return result

    def look_up(self, idempotency_key: str) -> SendResult | None:
        entries = self._outbox.find(idempotency_key)
        if not entries:
            return None
        first = min(entries, key=lambda e: e.received_at)
        return SendResult(outcome=first.outcome, provider_message_id=first.provider_message_id,
                          detail="reconciled from the provider's record")


class DynamoOutbox:
    """The simulated provider's record of every attempt (table keyed by idempotency key + message id).

    Concurrent sends are written together (group commit, BatchWriteItem of up to 25, gathered for
    at most `gather_seconds`), and each `record` returns only once its own entry is stored: a send
    is never reported before it is on record, and the table costs one request per many sends.
    """

    BATCH = 25

    def __init__(self, table_name: str, client: DynamoDBClient | None = None, gather_seconds: float = 0.02):
        self._table = table_name
        self._client = client or aws_client("dynamodb")
        self._pending: list[tuple[dict[str, Any], Future[None]]] = []
        self._arrived = threading.Condition()
        self._writing = False
        self._gather_seconds = gather_seconds

    def record(self, entry: OutboxEntry) -> None:
        done: Future[None] = Future()
        with self._arrived:
            self._pending.append((_outbox_item(entry), done))
            lead = not self._writing
            self._writing = True
            self._arrived.notify()
        if lead:  # this caller writes for everyone waiting, until nothing is pending
            self._write_pending()
        done.result()

    def _write_pending(self) -> None:
        while True:
            with self._arrived:
                self._arrived.wait_for(lambda: len(self._pending) >= self.BATCH, timeout=self._gather_seconds)
                group, self._pending = self._pending[:self.BATCH], self._pending[self.BATCH:]
                if not group:
                    self._writing = False
                    return
            try:
                requests = [{"PutRequest": {"Item": item}} for item, _ in group]
                while requests:
                    response = self._client.batch_write_item(RequestItems={self._table: requests})
                    requests = response.get("UnprocessedItems", {}).get(self._table, [])
                for _, done in group:
                    done.set_result(None)
            except Exception as error:  # noqa: BLE001 - every waiting send learns it was not recorded
                for _, done in group:
                    done.set_exception(error)

    def find(self, idempotency_key: str) -> list[OutboxEntry]:
        response = self._client.query(TableName=self._table, ConsistentRead=True,
                                      KeyConditionExpression="idempotency_key = :k",
                                      ExpressionAttributeValues={":k": {"S": idempotency_key}})
        return [_outbox_entry(item) for item in response["Items"]]

    def entries(self) -> Iterator[OutboxEntry]:
        for page in self._client.get_paginator("scan").paginate(TableName=self._table):
            for item in page["Items"]:
                yield _outbox_entry(item)


def _outbox_item(entry: OutboxEntry) -> dict[str, Any]:
    return {"idempotency_key": {"S": entry.idempotency_key}, "provider_message_id": {"S": entry.provider_message_id},
            "to": {"S": entry.to}, "attempt": {"N": str(entry.attempt)}, "outcome": {"S": entry.outcome.value},
            "subject": {"S": entry.subject}, "body": {"S": entry.body}, "received_at": {"S": entry.received_at}}


def _outbox_entry(item: dict[str, Any]) -> OutboxEntry:
    return OutboxEntry(to=item["to"]["S"], attempt=int(item["attempt"]["N"]), outcome=Outcome(item["outcome"]["S"]),
                       provider_message_id=item["provider_message_id"]["S"],
                       idempotency_key=item["idempotency_key"]["S"], subject=item["subject"]["S"],
                       body=item["body"]["S"], received_at=item["received_at"]["S"])
