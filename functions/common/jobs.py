"""Import jobs: one per uploaded object, with the counters that say when every row is settled."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from common.aws import client as aws_client
from common.ledger import JOB_ITEM, Counter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_DISTINCT_REASONS = 20


class Stage(StrEnum):
    """What the parser has done; the user-facing status is derived from it and the counters."""

    PENDING = "PENDING"  # never stored: an uploaded object no parse has picked up yet
    PARSING = "PARSING"
    PARSED = "PARSED"
    FAILED = "FAILED"


class JobStatus(StrEnum):
    PENDING = "PENDING"
    PARSING = "PARSING"
    SENDING = "SENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    etag: str
    size: int = 0
    version_id: str = ""

    @property
    def job_id(self) -> str:
        return f"{self.bucket}/{self.key}@{self.version_id or self.etag}"


@dataclass
class ParseTally:
    rows: int = 0
    invalid: int = 0
    duplicate: int = 0
    enqueued: int = 0
    invalid_reasons: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.invalid += 1
        if reason not in self.invalid_reasons and len(self.invalid_reasons) >= MAX_DISTINCT_REASONS:
            reason = "other reasons"
        self.invalid_reasons[reason] = self.invalid_reasons.get(reason, 0) + 1


@dataclass
class Job:
    job_id: str
    bucket: str
    key: str
    stage: Stage
    rows: int = 0
    invalid: int = 0
    duplicate: int = 0
    enqueued: int = 0
    sent: int = 0
    bounced: int = 0
    retried: int = 0
    exhausted: int = 0
    unknown: int = 0
    failure_reason: str = ""
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    rejects_key: str = ""
    started_at: str = ""
    parsed_at: str = ""

    @property
    def settled(self) -> int:
        return self.invalid + self.duplicate + self.sent + self.bounced + self.exhausted + self.unknown

    @property
    def status(self) -> JobStatus:
        if self.stage is Stage.PENDING:
            return JobStatus.PENDING
        if self.stage is Stage.FAILED:
            return JobStatus.FAILED
        if self.stage is Stage.PARSING:
            return JobStatus.PARSING
        return JobStatus.SUCCEEDED if self.settled >= self.rows else JobStatus.SENDING

    @property
    def done(self) -> bool:
        """Nothing more will happen to this job's rows."""
        return self.stage not in (Stage.PENDING, Stage.PARSING) and self.settled >= self.rows

    @classmethod
    def pending(cls, job_id: str, bucket: str, key: str) -> Job:
        return cls(job_id=job_id, bucket=bucket, key=key, stage=Stage.PENDING)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage"] = self.stage.value
        data["status"] = self.status.value
        data["settled"] = self.settled
        return data


class JobStore(Protocol):
    def begin(self, upload: Upload) -> bool: ...

    def finish(self, job_id: str, tally: ParseTally, failure_reason: str = "", rejects_key: str = "") -> None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class DynamoJobs:
    """Jobs table: item `job` holds what the parser found; items `counters#N` the send side's ADDs."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None):
        self._table = table_name
        self._client = client or aws_client("dynamodb")

    def begin(self, upload: Upload) -> bool:
        """Start (or restart, after a crash mid-parse) the job; False if it was already parsed."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"job_id": {"S": upload.job_id}, "item": {"S": JOB_ITEM}, "stage": {"S": Stage.PARSING.value},
                      "bucket": {"S": upload.bucket}, "key": {"S": upload.key}, "etag": {"S": upload.etag},
                      "size": {"N": str(upload.size)}, "started_at": {"S": _now()}},
                ConditionExpression="attribute_not_exists(job_id) OR stage = :parsing",
                ExpressionAttributeValues={":parsing": {"S": Stage.PARSING.value}})
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def finish(self, job_id: str, tally: ParseTally, failure_reason: str = "", rejects_key: str = "") -> None:
        stage = Stage.FAILED if failure_reason else Stage.PARSED
        try:
            self._client.update_item(
                TableName=self._table, Key={"job_id": {"S": job_id}, "item": {"S": JOB_ITEM}},
                UpdateExpression="SET stage = :stage, #rows = :rows, invalid = :invalid, parse_duplicate = :dup, "
                                 "enqueued = :enqueued, invalid_reasons = :reasons, parsed_at = :now, "
                                 "failure_reason = :why, rejects_key = :rejects",
                ConditionExpression="stage = :parsing",
                ExpressionAttributeNames={"#rows": "rows"},
                ExpressionAttributeValues={
                    ":stage": {"S": stage.value}, ":rows": {"N": str(tally.rows)},
                    ":invalid": {"N": str(tally.invalid)}, ":dup": {"N": str(tally.duplicate)},
                    ":enqueued": {"N": str(tally.enqueued)}, ":now": {"S": _now()}, ":why": {"S": failure_reason},
                    ":rejects": {"S": rejects_key},
                    ":parsing": {"S": Stage.PARSING.value},
                    ":reasons": {"M": {k: {"N": str(v)} for k, v in tally.invalid_reasons.items()}}})
        except ClientError as error:
            # A concurrent parse of the same object finished first with the same tally.
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

    def total(counter: Counter) -> int:
        return sum(number(s, counter.value) for s in shards)

    return Job(
        job_id=head["job_id"]["S"], bucket=head["bucket"]["S"], key=head["key"]["S"],
        stage=Stage(head["stage"]["S"]), rows=number(head, "rows"), invalid=number(head, "invalid"),
        duplicate=number(head, "parse_duplicate") + total(Counter.DUPLICATE), enqueued=number(head, "enqueued"),
        sent=total(Counter.SENT), bounced=total(Counter.BOUNCED), retried=total(Counter.RETRIED),
        exhausted=total(Counter.EXHAUSTED), unknown=total(Counter.UNKNOWN),
        failure_reason=head.get("failure_reason", {}).get("S", ""),
        rejects_key=head.get("rejects_key", {}).get("S", ""),
        invalid_reasons={k: int(v["N"]) for k, v in head.get("invalid_reasons", {}).get("M", {}).items()},
        started_at=head.get("started_at", {}).get("S", ""), parsed_at=head.get("parsed_at", {}).get("S", ""))
