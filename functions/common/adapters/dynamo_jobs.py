"""The jobs table on DynamoDB: a head item per job plus counter shards, read back as `Job`s."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from common.adapters.aws import client as aws_client
from common.adapters.dynamo_ledger import JOB_ITEM
from common.domain.columns import Unsure
from common.domain.jobs import Checkpoint, ImportState, Job, ParseTally, Stage, Upload
from common.domain.vocabulary import JobCounter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _head_key(job_id: str) -> dict[str, Any]:
    """The job's own item (the counters are items beside it)."""
    return {"job_id": {"S": job_id}, "item": {"S": JOB_ITEM}}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class DynamoJobs:
    """Jobs table: item `job` holds what the parser found; items `counters#N` the send side's ADDs.

    Every write here may be repeated by botocore after a lost answer, harmlessly: `begin` is a conditional
    put whose repeat finds the job still parsing and resumes it; `save_checkpoint` recognises its own
    checkpoint (by the call's writer id) in the item its failed condition returns; `mark_continued` sets
    the same value again; a repeated `finish` finds the job finished with the same tally and changes nothing."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None):
        self._table = table_name
        self._client = client or aws_client("dynamodb")

    def begin(self, upload: Upload, content_etag: str = "") -> ImportState | None:
        first = Checkpoint()
        content_etag = content_etag or upload.etag
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"job_id": {"S": upload.job_id}, "item": {"S": JOB_ITEM}, "stage": {"S": Stage.PARSING.value},
                      "bucket": {"S": upload.bucket}, "key": {"S": upload.key}, "etag": {"S": upload.etag},
                      "version_id": {"S": upload.version_id}, "content_etag": {"S": content_etag},
                      "size": {"N": str(upload.size)},
                      "started_at": {"S": _now()}, "parse_segment": {"N": "0"}, "parse_continued": {"N": "0"},
                      "parse_checkpoint": {"S": first.encode()}},
                ConditionExpression="attribute_not_exists(job_id)")
            return ImportState(upload=upload, checkpoint=first, content_etag=content_etag)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        state = self.resume(upload.job_id)
        if state is not None and state.stage is Stage.NEEDS_MAPPING:
            self._start_over(upload.job_id, first)
            state = self.resume(upload.job_id)
        return state if state is not None and state.parsing else None

    def _start_over(self, job_id: str, first: Checkpoint) -> None:
        """A job held for its mapping, parsed again from the start (once: the condition)."""
        try:
            self._client.update_item(
                TableName=self._table, Key=_head_key(job_id),
                UpdateExpression="SET stage = :parsing, parse_segment = :zero, parse_continued = :zero, "
                                 "parse_checkpoint = :checkpoint, started_at = :now REMOVE needs_mapping",
                ConditionExpression="stage = :held",
                ExpressionAttributeValues={":parsing": {"S": Stage.PARSING.value}, ":zero": {"N": "0"},
                                           ":checkpoint": {"S": first.encode()}, ":now": {"S": _now()},
                                           ":held": {"S": Stage.NEEDS_MAPPING.value}})
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def resume(self, job_id: str) -> ImportState | None:
        item = self._client.get_item(TableName=self._table, Key=_head_key(job_id),
                                     ConsistentRead=True).get("Item")
        if not item:
            return None
        upload = Upload(bucket=item["bucket"]["S"], key=item["key"]["S"], etag=item["etag"]["S"],
                        size=int(item["size"]["N"]), version_id=item.get("version_id", {}).get("S", ""))
        checkpoint = Checkpoint.decode(item["parse_checkpoint"]["S"]) if "parse_checkpoint" in item else Checkpoint()
        return ImportState(upload=upload, checkpoint=checkpoint,
                           continued=int(item.get("parse_continued", {}).get("N", 0)),
                           content_etag=item.get("content_etag", {}).get("S", upload.etag),
                           stage=Stage(item["stage"]["S"]))

    def save_checkpoint(self, job_id: str, checkpoint: Checkpoint) -> bool:
        writer = uuid.uuid4().hex  # this call's, so that its repeated request knows its own write
        try:
            self._client.update_item(
                TableName=self._table, Key=_head_key(job_id),
                UpdateExpression="SET parse_segment = :next, parse_checkpoint = :checkpoint, parse_writer = :writer",
                ConditionExpression="stage = :parsing AND parse_segment = :previous",
                ExpressionAttributeValues={":next": {"N": str(checkpoint.segment)},
                                           ":previous": {"N": str(checkpoint.segment - 1)},
                                           ":checkpoint": {"S": checkpoint.encode()}, ":writer": {"S": writer},
                                           ":parsing": {"S": Stage.PARSING.value}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD")
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # True for our own checkpoint, written by a request whose answer was lost and repeated by botocore.
            response: dict[str, Any] = dict(error.response)
            found: dict[str, Any] = response.get("Item", {})
            return bool(found.get("parse_writer", {}).get("S") == writer)

    def mark_continued(self, job_id: str, segment: int) -> None:
        self._client.update_item(
            TableName=self._table, Key=_head_key(job_id),
            UpdateExpression="SET parse_continued = :segment",
            ExpressionAttributeValues={":segment": {"N": str(segment)}})

    def finish(self, job_id: str, tally: ParseTally, failure_reason: str = "", rejects_key: str = "",
               segment: int = 0, read_as: str = "", unsure: Unsure | None = None) -> None:
        stage = Stage.NEEDS_MAPPING if unsure else Stage.FAILED if failure_reason else Stage.PARSED
        try:
            self._client.update_item(
                TableName=self._table, Key=_head_key(job_id),
                UpdateExpression="SET stage = :stage, #rows = :rows, invalid = :invalid, parse_duplicate = :dup, "
                                 "enqueued = :enqueued, invalid_reasons = :reasons, parsed_at = :now, "
                                 "failure_reason = :why, rejects_key = :rejects, #read_as = :read_as, "
                                 "notes = :notes, needs_mapping = :unsure REMOVE parse_checkpoint",
                ConditionExpression="stage = :parsing AND parse_segment = :segment",
                ExpressionAttributeNames={"#rows": "rows", "#read_as": "read_as"},
                ExpressionAttributeValues={
                    ":stage": {"S": stage.value}, ":rows": {"N": str(tally.rows)},
                    ":invalid": {"N": str(tally.invalid)}, ":dup": {"N": str(tally.duplicate)},
                    ":enqueued": {"N": str(tally.enqueued)}, ":now": {"S": _now()}, ":why": {"S": failure_reason},
                    ":rejects": {"S": rejects_key}, ":segment": {"N": str(segment)}, ":read_as": {"S": read_as},
                    ":parsing": {"S": Stage.PARSING.value},
                    ":reasons": {"M": {k: {"N": str(v)} for k, v in tally.invalid_reasons.items()}},
                    ":notes": {"M": {k: {"N": str(v)} for k, v in tally.notes.items()}},
                    ":unsure": {"S": json.dumps(unsure.to_json()) if unsure else ""}})
        except ClientError as error:
            # A concurrent parse of the same segment finished first with the same tally.
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def get(self, job_id: str) -> Job | None:
        response = self._client.query(
            TableName=self._table, ConsistentRead=True, KeyConditionExpression="job_id = :j",
            ExpressionAttributeValues={":j": {"S": job_id}})
        jobs = _assemble(response["Items"])
        return jobs[0] if jobs else None

    def all(self) -> list[Job]:
        items: list[dict[str, Any]] = []
        for page in self._client.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            items += page["Items"]
        return sorted(_assemble(items), key=lambda j: j.started_at)


def _assemble(items: list[dict[str, Any]]) -> list[Job]:
    heads: dict[str, dict[str, Any]] = {}
    counters: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        kind = item["item"]["S"]
        if kind == JOB_ITEM:
            heads[item["job_id"]["S"]] = item
        elif kind.startswith("counters#"):
            counters.setdefault(item["job_id"]["S"], []).append(item)
    return [_job(head, counters.get(job_id, [])) for job_id, head in heads.items()]


def _job(head: dict[str, Any], shards: list[dict[str, Any]]) -> Job:
    def number(item: dict[str, Any], name: str) -> int:
        return int(item.get(name, {}).get("N", "0"))

    def total(counter: JobCounter) -> int:
        return sum(number(s, counter.value) for s in shards)

    return Job(
        job_id=head["job_id"]["S"], bucket=head["bucket"]["S"], key=head["key"]["S"],
        stage=Stage(head["stage"]["S"]), rows=number(head, "rows"), invalid=number(head, "invalid"),
        duplicate=number(head, "parse_duplicate") + total(JobCounter.DUPLICATE), enqueued=number(head, "enqueued"),
        sent=total(JobCounter.SENT), bounced=total(JobCounter.BOUNCED), retried=total(JobCounter.RETRIED),
        exhausted=total(JobCounter.EXHAUSTED), unknown=total(JobCounter.UNKNOWN),
        complained=total(JobCounter.COMPLAINED),
        failure_reason=head.get("failure_reason", {}).get("S", ""),
        rejects_key=head.get("rejects_key", {}).get("S", ""), read_as=head.get("read_as", {}).get("S", ""),
        invalid_reasons={k: int(v["N"]) for k, v in head.get("invalid_reasons", {}).get("M", {}).items()},
        notes={k: int(v["N"]) for k, v in head.get("notes", {}).get("M", {}).items()},
        needs_mapping=_unsure(head.get("needs_mapping", {}).get("S", "")),
        started_at=head.get("started_at", {}).get("S", ""), parsed_at=head.get("parsed_at", {}).get("S", ""))


def _unsure(stored: str) -> Unsure | None:
    return Unsure.from_json(json.loads(stored)) if stored else None
