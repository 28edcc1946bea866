"""Send slots on DynamoDB: one conditional counter hands out the next free slots (common.domain.pacing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from common.adapters.aws import client as aws_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


LIMITER_KEY = "send-slots"


class DynamoSendSlots:
    """One item holds the next free slot; a conditional update moves it past what a caller takes."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None):
        self._table = table_name
        self._client = client or aws_client("dynamodb")
        self._next_known = 0

    def reserve(self, count: int, earliest: int) -> range:
        while True:
            start = max(earliest, self._next_known)
            try:
                self._client.update_item(
                    TableName=self._table, Key={"limiter": {"S": LIMITER_KEY}},
                    UpdateExpression="SET next_slot = :end",
                    ConditionExpression="attribute_not_exists(next_slot) OR next_slot <= :start",
                    ExpressionAttributeValues={":start": {"N": str(start)}, ":end": {"N": str(start + count)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD")
                self._next_known = start + count
                return range(start, start + count)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                item: Any = error.response.get("Item") or self._client.get_item(
                    TableName=self._table, Key={"limiter": {"S": LIMITER_KEY}}, ConsistentRead=True).get("Item", {})
                self._next_known = int(item.get("next_slot", {}).get("N", start + count))
