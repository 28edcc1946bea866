"""The simulated provider's outbox on DynamoDB (every attempt it received), written by group commit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from common.adapters.aws import client as aws_client
from common.domain.gathering import GroupCommit
from common.domain.provider import OutboxEntry
from common.domain.vocabulary import Outcome

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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
        self._commit: GroupCommit[dict[str, Any], None] = GroupCommit(self._write, gather_seconds, most=self.BATCH)

    def record(self, entry: OutboxEntry) -> None:
        self._commit.submit([_outbox_item(entry)])

    def _write(self, items: list[dict[str, Any]]) -> None:
        requests: Any = [{"PutRequest": {"Item": item}} for item in items]
        while requests:
            response = self._client.batch_write_item(RequestItems={self._table: requests})
            requests = response.get("UnprocessedItems", {}).get(self._table, [])

    def find(self, idempotency_key: str) -> list[OutboxEntry]:
        response = self._client.query(TableName=self._table, ConsistentRead=True,
                                      KeyConditionExpression="idempotency_key = :k",
                                      ExpressionAttributeValues={":k": {"S": idempotency_key}})
        return [_outbox_entry(item) for item in response["Items"]]

    def entries(self) -> Iterator[OutboxEntry]:
        for page in self._client.get_paginator("scan").paginate(TableName=self._table):
            for item in page["Items"]:
                yield _outbox_entry(item)


OUTBOX_RETENTION_SECONDS = 30 * 24 * 3600  # the table's TTL deletes an attempt's record a month after it


def _outbox_item(entry: OutboxEntry) -> dict[str, Any]:
    return {"idempotency_key": {"S": entry.idempotency_key}, "provider_message_id": {"S": entry.provider_message_id},
            "to": {"S": entry.to}, "attempt": {"N": str(entry.attempt)}, "outcome": {"S": entry.outcome.value},
            "subject": {"S": entry.subject}, "body": {"S": entry.body}, "received_at": {"S": entry.received_at},
            "expires_at": {"N": str(int(time.time()) + OUTBOX_RETENTION_SECONDS)}}


def _outbox_entry(item: dict[str, Any]) -> OutboxEntry:
    return OutboxEntry(to=item["to"]["S"], attempt=int(item["attempt"]["N"]), outcome=Outcome(item["outcome"]["S"]),
                       provider_message_id=item["provider_message_id"]["S"],
                       idempotency_key=item["idempotency_key"]["S"], subject=item["subject"]["S"],
                       body=item["body"]["S"], received_at=item["received_at"]["S"])
