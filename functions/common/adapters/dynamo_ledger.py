"""The contact ledger on DynamoDB: claims and moves in TransactWriteItems of up to 100 conditional
writes, with the job's counters in the same transaction (rules and states: common.domain.ledger).

Every transaction carries a ClientRequestToken, the digest of the request itself: botocore's retry of a
request whose answer was lost sends the same bytes, so the same token, and DynamoDB applies nothing twice
within its 10-minute window. Each request of ours after a known answer (a cancellation, a conflict) is a
new request and gets a token of its own. Past the window, or on an endpoint that ignores tokens, the old
item returned with a failed condition (ALL_OLD) tells our own committed write from someone else's.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from common.adapters.aws import client as aws_client
from common.domain.ledger import (
    Claim,
    DuplicateMark,
    LedgerEntry,
    Move,
    Transition,
    already_applied,
    feedback_refusal,
    made_by,
)
from common.domain.vocabulary import FeedbackMove, JobCounter, State

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


MAX_TRANSACTION_ITEMS = 100


COUNTER_SHARDS = 8


JOB_ITEM = "job"


class TransactionsKeepConflicting(RuntimeError):
    pass


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def counter_item_key(job_id: str, carrier: str) -> dict[str, Any]:
    shard = zlib.crc32(carrier.encode()) % COUNTER_SHARDS
    return {"job_id": {"S": job_id}, "item": {"S": f"counters#{shard}"}}


PSEUDONYM_INDEX = "by-pseudonym"


class DynamoLedger:
    """Ledger on DynamoDB: claims and moves in TransactWriteItems of up to 100 conditional writes."""

    def __init__(self, contacts_table: str, jobs_table: str, client: DynamoDBClient | None = None,
                 sleep: Callable[[float], None] = time.sleep, pseudonym: Callable[[str], str] | None = None):
        """`pseudonym`: stored on each new item, so that a dead letter (which names its contact by pseudonym)
        leads back to it (`entry_for_pseudonym`)."""
        self._contacts = contacts_table
        self._jobs = jobs_table
        self._client = client or aws_client("dynamodb")
        self._sleep = sleep
        self._pseudonym = pseudonym

    # -- claims -----------------------------------------------------------------------------
    def claim(self, claims: Sequence[Claim]) -> dict[str, LedgerEntry | None]:
        lost: dict[str, LedgerEntry | None] = {}
        for start in range(0, len(claims), MAX_TRANSACTION_ITEMS):
            chunk = claims[start:start + MAX_TRANSACTION_ITEMS]
            for index, item in self._transact([self._claim_op(c) for c in chunk]).items():
                entry = _entry_or_none(item)
                # Not lost: our own claim, committed by a request whose answer was lost.
                if not made_by(entry, chunk[index]):
                    lost[chunk[index].email] = entry
        return lost

    def _claim_op(self, claim: Claim) -> dict[str, Any]:
        if claim.take_over_lease_before is not None:
            return {"Update": {
                "TableName": self._contacts,
                "Key": {"email": {"S": claim.email}},
                "UpdateExpression": "SET lease_until = :lease, holder = :holder, updated_at = :now REMOVE unsent",
                "ConditionExpression": "#state = :claimed AND #token = :token AND attempt = :attempt "
                                       "AND carrier = :carrier AND lease_until <= :before",
                "ExpressionAttributeNames": {"#state": "state", "#token": "token"},
                "ExpressionAttributeValues": {
                    ":claimed": {"S": State.CLAIMED.value}, ":token": {"S": claim.token},
                    ":attempt": {"N": str(claim.attempt)}, ":carrier": {"S": claim.carrier},
                    ":before": {"N": f"{claim.take_over_lease_before:.3f}"},
                    ":lease": {"N": f"{claim.lease_until:.3f}"}, ":holder": {"S": claim.holder},
                    ":now": {"S": _now_iso()}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
        if claim.attempt == 1:
            item = {
                "email": {"S": claim.email}, "state": {"S": State.CLAIMED.value}, "token": {"S": claim.token},
                "attempt": {"N": "1"}, "carrier": {"S": claim.carrier},
                "lease_until": {"N": f"{claim.lease_until:.3f}"}, "job_id": {"S": claim.job_id},
                "row": {"N": str(claim.row)}, "name": {"S": claim.name}, "source_key": {"S": claim.source_key},
                "holder": {"S": claim.holder}, "claimed_at": {"S": _now_iso()}, "updated_at": {"S": _now_iso()}}
            if self._pseudonym is not None:
                item["pseudonym"] = {"S": self._pseudonym(claim.email)}
            return {"Put": {
                "TableName": self._contacts, "Item": item,
                "ConditionExpression": "attribute_not_exists(email)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
        return {"Update": {
            "TableName": self._contacts,
            "Key": {"email": {"S": claim.email}},
            "UpdateExpression": "SET #state = :claimed, attempt = :attempt, carrier = :carrier, "
                                "lease_until = :lease, holder = :holder, updated_at = :now",
            "ConditionExpression": "#state = :blocked AND #token = :token AND attempt = :previous",
            "ExpressionAttributeNames": {"#state": "state", "#token": "token"},
            "ExpressionAttributeValues": {
                ":claimed": {"S": State.CLAIMED.value}, ":blocked": {"S": State.BLOCKED.value},
                ":token": {"S": claim.token}, ":attempt": {"N": str(claim.attempt)},
                ":previous": {"N": str(claim.attempt - 1)}, ":carrier": {"S": claim.carrier},
                ":lease": {"N": f"{claim.lease_until:.3f}"}, ":holder": {"S": claim.holder},
                ":now": {"S": _now_iso()}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}

    def entry(self, email: str) -> LedgerEntry | None:
        """The ledger's record of one normalised address ("did Bob get his email?")."""
        item = self._client.get_item(TableName=self._contacts, Key={"email": {"S": email}},
                                     ConsistentRead=True).get("Item")
        return _entry(item) if item else None

    def entry_for_pseudonym(self, pseudonym: str) -> LedgerEntry | None:
        """The record a dead letter names (`by-pseudonym` index: keys only; the item itself read consistently)."""
        found = self._client.query(TableName=self._contacts, IndexName=PSEUDONYM_INDEX, Limit=1,
                                   KeyConditionExpression="pseudonym = :p",
                                   ExpressionAttributeValues={":p": {"S": pseudonym}}).get("Items", [])
        return self.entry(found[0]["email"]["S"]) if found else None

    # -- settling ---------------------------------------------------------------------------
    def settle(self, transitions: Sequence[Transition]) -> list[Transition]:
        by_job: dict[str, list[Transition]] = defaultdict(list)
        # One transaction cannot touch an item twice; a row counted twice is still one duplicate.
        for transition in dict.fromkeys(transitions):
            by_job[transition.claim.job_id if isinstance(transition, Move) else transition.job_id].append(transition)
        rejected: list[Transition] = []
        room = MAX_TRANSACTION_ITEMS - 1  # one item is the job's counter shard
        for job_id, moves in by_job.items():
            for start in range(0, len(moves), room):
                rejected += self._settle_chunk(job_id, moves[start:start + room])
        return rejected

    def _settle_chunk(self, job_id: str, chunk: list[Transition]) -> list[Transition]:
        rejected: list[Transition] = []
        while chunk:
            ops = [self._transition_op(t) for t in chunk]
            counter_op = self._counter_op(job_id, chunk)
            lost = self._transact(ops + ([counter_op] if counter_op else []), drop_lost=False)
            if not lost:
                return rejected
            # A move already applied was committed (with its counter) by a request whose answer was lost.
            rejected += [t for i, t in enumerate(chunk) if i in lost and isinstance(t, Move)
                         and not already_applied(_entry_or_none(lost[i]), t)]
            chunk = [t for i, t in enumerate(chunk) if i not in lost]
        return rejected

    def _transition_op(self, transition: Transition) -> dict[str, Any]:
        if isinstance(transition, DuplicateMark):
            return {"Put": {
                "TableName": self._jobs,
                "Item": {"job_id": {"S": f"duplicates#{transition.job_id}"}, "item": {"S": str(transition.row)},
                         "counted_at": {"S": _now_iso()}},
                "ConditionExpression": "attribute_not_exists(job_id)"}}
        claim = transition.claim
        values: dict[str, Any] = {
            ":claimed": {"S": State.CLAIMED.value}, ":token": {"S": claim.token},
            ":attempt": {"N": str(claim.attempt)}, ":carrier": {"S": claim.carrier},
            ":state": {"S": transition.state.value}, ":now": {"S": _now_iso()}}
        update = "SET #state = :state, updated_at = :now"
        if transition.state is State.CLAIMED:  # a release: the attempt is free to be resumed at once
            update += ", lease_until = :zero, unsent = :unsent"
            values[":zero"] = {"N": "0"}
            values[":unsent"] = {"BOOL": transition.unsent}
        if transition.provider_message_id:
            update += ", provider_message_id = :pmid"
            values[":pmid"] = {"S": transition.provider_message_id}
        if transition.next_attempt_at:
            update += ", next_attempt_at = :next"
            values[":next"] = {"N": f"{transition.next_attempt_at:.3f}"}
        if transition.detail:
            update += ", detail = :detail"
            values[":detail"] = {"S": transition.detail[:500]}
        return {"Update": {
            "TableName": self._contacts,
            "Key": {"email": {"S": claim.email}},
            "UpdateExpression": update,
            "ConditionExpression": "#state = :claimed AND #token = :token AND attempt = :attempt "
                                   "AND carrier = :carrier",
            "ExpressionAttributeNames": {"#state": "state", "#token": "token"},
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}

    def _counter_op(self, job_id: str, chunk: Iterable[Transition]) -> dict[str, Any] | None:
        counts: dict[JobCounter, int] = defaultdict(int)
        carriers = []
        for transition in chunk:
            if transition.counter is not None:
                counts[transition.counter] += 1
            carriers.append(transition.claim.carrier if isinstance(transition, Move) else transition.carrier)
        if not counts:
            return None
        names = {f"#{c.value}": c.value for c in counts}
        values = {f":{c.value}": {"N": str(n)} for c, n in counts.items()}
        return {"Update": {
            "TableName": self._jobs,
            "Key": counter_item_key(job_id, carriers[0]),
            "UpdateExpression": "ADD " + ", ".join(f"#{c.value} :{c.value}" for c in counts),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values}}

    # -- provider feedback ------------------------------------------------------------------
    def record_feedback(self, email: str, provider_message_id: str, state: State,
                        detail: str) -> tuple[FeedbackMove, LedgerEntry | None]:
        """SENT -> BOUNCED (sent -1, bounced +1) or COMPLAINED (complained +1), for the email sent
        as `provider_message_id` only; returns what was done and the entry as it was."""
        item = self._client.get_item(TableName=self._contacts, Key={"email": {"S": email}},
                                     ConsistentRead=True).get("Item")
        entry = _entry(item) if item else None
        if entry is None:
            return FeedbackMove.NOT_OURS, None
        if (refusal := feedback_refusal(entry, provider_message_id, state)) is not None:
            return refusal, entry
        counts = "ADD bounced :one, sent :minus" if state is State.BOUNCED else "ADD complained :one"
        values: dict[str, Any] = {":one": {"N": "1"}}
        if state is State.BOUNCED:
            values[":minus"] = {"N": "-1"}
        lost = self._transact([
            {"Update": {
                "TableName": self._contacts, "Key": {"email": {"S": email}},
                "UpdateExpression": "SET #state = :state, detail = :detail, feedback_at = :now, updated_at = :now",
                "ConditionExpression": "#state = :sent AND provider_message_id = :pmid",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":state": {"S": state.value}, ":sent": {"S": State.SENT.value},
                    ":pmid": {"S": provider_message_id}, ":detail": {"S": detail[:500]},
                    ":now": {"S": _now_iso()}}}},
            {"Update": {
                "TableName": self._jobs, "Key": counter_item_key(entry.job_id, f"feedback:{email}"),
                "UpdateExpression": counts, "ExpressionAttributeValues": values}}], drop_lost=False)
        return (FeedbackMove.ALREADY_RECORDED if lost else FeedbackMove.MOVED), entry

    # -- redrive ----------------------------------------------------------------------------
    def reopen_exhausted(self, email: str, token: str, attempt: int, job_id: str) -> bool:
        """EXHAUSTED -> BLOCKED for one more attempt, moving its count from `exhausted` to `retried`.

        False when the contact is no longer EXHAUSTED at that attempt (already redriven).
        """
        lost = self._transact([
                {"Update": {
                    "TableName": self._contacts, "Key": {"email": {"S": email}},
                    "UpdateExpression": "SET #state = :blocked, next_attempt_at = :zero, updated_at = :now",
                    "ConditionExpression": "#state = :exhausted AND #token = :token AND attempt = :attempt",
                    "ExpressionAttributeNames": {"#state": "state", "#token": "token"},
                    "ExpressionAttributeValues": {
                        ":blocked": {"S": State.BLOCKED.value}, ":exhausted": {"S": State.EXHAUSTED.value},
                        ":token": {"S": token}, ":attempt": {"N": str(attempt)}, ":zero": {"N": "0"},
                        ":now": {"S": _now_iso()}}}},
                {"Update": {
                    "TableName": self._jobs, "Key": counter_item_key(job_id, f"redrive:{email}"),
                    "UpdateExpression": "ADD exhausted :minus, retried :plus",
                    "ExpressionAttributeValues": {":minus": {"N": "-1"}, ":plus": {"N": "1"}}}}], drop_lost=False)
        return not lost

    # -- transactions -----------------------------------------------------------------------
    def _transact(self, ops: list[dict[str, Any]], drop_lost: bool = True) -> dict[int, dict[str, Any] | None]:
        """Run ops as one transaction, retrying conflicts.

        Returns the index -> old item of each op whose condition failed. With drop_lost the
        others are retried without the losers until they commit; otherwise the caller decides.
        """
        lost: dict[int, dict[str, Any] | None] = {}
        pending = list(range(len(ops)))
        conflicts = 0
        for round_ in itertools.count():  # one round per request we send; botocore's retries stay in their round
            if not pending:
                return lost
            items = [ops[i] for i in pending]
            try:
                self._client.transact_write_items(TransactItems=items,  # type: ignore[arg-type]
                                                  ClientRequestToken=request_token(items, round_))
                return lost
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = error.response.get("CancellationReasons") or []
                failed = [(i, r) for i, r in zip(pending, reasons, strict=False)
                          if r.get("Code") == "ConditionalCheckFailed"]
                if not failed:
                    conflicts += 1
                    if conflicts > 8:
                        raise TransactionsKeepConflicting(str(reasons)) from error
                    self._sleep(min(0.05 * 2**conflicts, 1.0))
                    continue
                for i, reason in failed:
                    lost[i] = dict(reason["Item"]) if reason.get("Item") else None
                if not drop_lost:
                    return lost
                pending = [i for i in pending if i not in lost]
        return lost


def request_token(items: list[dict[str, Any]], round_: int) -> str:
    """The same request, the same token (botocore's retries resend it as it was); the round tells apart two
    identical requests of ours sent after a known answer (a conflict), which DynamoDB must not take for one."""
    digest = hashlib.sha256(json.dumps([round_, items], sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()[:36]  # DynamoDB's limit


def _entry_or_none(item: dict[str, Any] | None) -> LedgerEntry | None:
    return _entry(item) if item else None


def _entry(item: dict[str, Any]) -> LedgerEntry:
    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    def number(name: str) -> float:
        return float(item.get(name, {}).get("N", "0"))

    return LedgerEntry(email=text("email"), state=State(text("state")), token=text("token"),
                       attempt=int(number("attempt")), carrier=text("carrier"), lease_until=number("lease_until"),
                       job_id=text("job_id"), row=int(number("row")), source_key=text("source_key"),
                       provider_message_id=text("provider_message_id"), detail=text("detail"),
                       unsent=item.get("unsent", {}).get("BOOL", False), next_attempt_at=number("next_attempt_at"),
                       name=text("name"), holder=text("holder"))
