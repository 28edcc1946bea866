"""Import jobs: one per uploaded object, with the counters that say when every row is settled."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from common.aws import client as aws_client
from common.contacts import Layout
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

    def copy(self) -> ParseTally:
        return replace(self, invalid_reasons=dict(self.invalid_reasons))


@dataclass(frozen=True)
class Checkpoint:
    """How far the import of a file has got: segment `segment` starts at byte `offset`, after
    `line` lines; `tally` counts every row before it; `rejects_parts` hold earlier segments' rejects."""

    segment: int = 0
    offset: int = 0
    line: int = 0
    layout: Layout | None = None
    tally: ParseTally = field(default_factory=ParseTally)
    rejects_parts: tuple[str, ...] = ()

    def encode(self) -> str:
        return json.dumps({"segment": self.segment, "offset": self.offset, "line": self.line,
                           "layout": self.layout.to_json() if self.layout else None,
                           "tally": asdict(self.tally), "rejects_parts": list(self.rejects_parts)})

    @classmethod
    def decode(cls, text: str) -> Checkpoint:
        data = json.loads(text)
        return cls(segment=data["segment"], offset=data["offset"], line=data["line"],
                   layout=Layout.from_json(data["layout"]) if data["layout"] else None,
                   tally=ParseTally(**data["tally"]), rejects_parts=tuple(data["rejects_parts"]))


@dataclass(frozen=True)
class ImportState:
    """A job as the parser left it: its stage, where the next segment starts, and the last segment
    a continuation was requested for."""

    upload: Upload
    checkpoint: Checkpoint
    continued: int = 0
    content_etag: str = ""
    stage: Stage = Stage.PARSING

    @property
    def parsing(self) -> bool:
        return self.stage is Stage.PARSING


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
    complained: int = 0  # of the sent, marked as spam afterwards (SES feedback)
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
    def begin(self, upload: Upload, content_etag: str = "") -> ImportState | None:
        """Create the job, or find it still being parsed; None once its parse has finished."""
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
               segment: int = 0) -> None: ...


def _head_key(job_id: str) -> dict[str, Any]:
    """The job's own item (the counters are items beside it)."""
    return {"job_id": {"S": job_id}, "item": {"S": JOB_ITEM}}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class DynamoJobs:
    """Jobs table: item `job` holds what the parser found; items `counters#N` the send side's ADDs."""

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
        return state if state is not None and state.parsing else None

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
        try:
            self._client.update_item(
                TableName=self._table, Key=_head_key(job_id),
                UpdateExpression="SET parse_segment = :next, parse_checkpoint = :checkpoint",
                ConditionExpression="stage = :parsing AND parse_segment = :previous",
                ExpressionAttributeValues={":next": {"N": str(checkpoint.segment)},
                                           ":previous": {"N": str(checkpoint.segment - 1)},
                                           ":checkpoint": {"S": checkpoint.encode()},
                                           ":parsing": {"S": Stage.PARSING.value}})
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def mark_continued(self, job_id: str, segment: int) -> None:
        self._client.update_item(
            TableName=self._table, Key=_head_key(job_id),
            UpdateExpression="SET parse_continued = :segment",
            ExpressionAttributeValues={":segment": {"N": str(segment)}})

    def finish(self, job_id: str, tally: ParseTally, failure_reason: str = "", rejects_key: str = "",
               segment: int = 0) -> None:
        stage = Stage.FAILED if failure_reason else Stage.PARSED
        try:
            self._client.update_item(
                TableName=self._table, Key=_head_key(job_id),
                UpdateExpression="SET stage = :stage, #rows = :rows, invalid = :invalid, parse_duplicate = :dup, "
                                 "enqueued = :enqueued, invalid_reasons = :reasons, parsed_at = :now, "
                                 "failure_reason = :why, rejects_key = :rejects REMOVE parse_checkpoint",
                ConditionExpression="stage = :parsing AND parse_segment = :segment",
                ExpressionAttributeNames={"#rows": "rows"},
                ExpressionAttributeValues={
                    ":stage": {"S": stage.value}, ":rows": {"N": str(tally.rows)},
                    ":invalid": {"N": str(tally.invalid)}, ":dup": {"N": str(tally.duplicate)},
                    ":enqueued": {"N": str(tally.enqueued)}, ":now": {"S": _now()}, ":why": {"S": failure_reason},
                    ":rejects": {"S": rejects_key}, ":segment": {"N": str(segment)},
                    ":parsing": {"S": Stage.PARSING.value},
                    ":reasons": {"M": {k: {"N": str(v)} for k, v in tally.invalid_reasons.items()}}})
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

    def total(counter: Counter) -> int:
        return sum(number(s, counter.value) for s in shards)

    return Job(
        job_id=head["job_id"]["S"], bucket=head["bucket"]["S"], key=head["key"]["S"],
        stage=Stage(head["stage"]["S"]), rows=number(head, "rows"), invalid=number(head, "invalid"),
        duplicate=number(head, "parse_duplicate") + total(Counter.DUPLICATE), enqueued=number(head, "enqueued"),
        sent=total(Counter.SENT), bounced=total(Counter.BOUNCED), retried=total(Counter.RETRIED),
        exhausted=total(Counter.EXHAUSTED), unknown=total(Counter.UNKNOWN),
        complained=total(Counter.COMPLAINED),
        failure_reason=head.get("failure_reason", {}).get("S", ""),
        rejects_key=head.get("rejects_key", {}).get("S", ""),
        invalid_reasons={k: int(v["N"]) for k, v in head.get("invalid_reasons", {}).get("M", {}).items()},
        started_at=head.get("started_at", {}).get("S", ""), parsed_at=head.get("parsed_at", {}).get("S", ""))
