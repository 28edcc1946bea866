"""Import jobs: one per uploaded object, with the counters that say when every row is settled."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from common.domain.columns import Layout, Unsure

MAX_DISTINCT_REASONS = 20


class Stage(StrEnum):
    """What the parser has done; the user-facing status is derived from it and the counters."""

    PENDING = "PENDING"  # never stored: an uploaded object no parse has picked up yet
    PARSING = "PARSING"
    PARSED = "PARSED"
    FAILED = "FAILED"
    NEEDS_MAPPING = "NEEDS_MAPPING"  # held unsent: which column is which is not certain (common.domain.columns)


class JobStatus(StrEnum):
    PENDING = "PENDING"
    PARSING = "PARSING"
    SENDING = "SENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    NEEDS_MAPPING = "NEEDS_MAPPING"


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
    notes: dict[str, int] = field(default_factory=dict)  # what was read but not sent, though no row is invalid

    def reject(self, reason: str) -> None:
        self.invalid += 1
        if reason not in self.invalid_reasons and len(self.invalid_reasons) >= MAX_DISTINCT_REASONS:
            reason = "other reasons"
        self.invalid_reasons[reason] = self.invalid_reasons.get(reason, 0) + 1

    def note(self, what: str, count: int = 1) -> None:
        self.notes[what] = self.notes.get(what, 0) + count

    def copy(self) -> ParseTally:
        return replace(self, invalid_reasons=dict(self.invalid_reasons), notes=dict(self.notes))


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
    encoding: str = ""  # decided from the file's first bytes by its first segment, and on evidence since
    encoding_why: str = ""
    text_seen: bool = False  # UTF-8: non-ASCII text was read (a line that is not UTF-8 is then a bad row)

    def encode(self) -> str:
        return json.dumps({"segment": self.segment, "offset": self.offset, "line": self.line,
                           "layout": self.layout.to_json() if self.layout else None,
                           "tally": asdict(self.tally), "rejects_parts": list(self.rejects_parts),
                           "encoding": self.encoding, "encoding_why": self.encoding_why,
                           "text_seen": self.text_seen})

    @classmethod
    def decode(cls, text: str) -> Checkpoint:
        data = json.loads(text)
        return cls(segment=data["segment"], offset=data["offset"], line=data["line"],
                   layout=Layout.from_json(data["layout"]) if data["layout"] else None,
                   tally=ParseTally(**data["tally"]), rejects_parts=tuple(data["rejects_parts"]),
                   encoding=data.get("encoding", ""), encoding_why=data.get("encoding_why", ""),
                   text_seen=bool(data.get("text_seen", False)))


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
    read_as: str = ""  # how the file was read: encoding, delimiter, the columns of the email and name, and why
    notes: dict[str, int] = field(default_factory=dict)
    needs_mapping: Unsure | None = None  # NEEDS_MAPPING: why, the columns seen, the first rows
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
        if self.stage is Stage.NEEDS_MAPPING:
            return JobStatus.NEEDS_MAPPING
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
        data["needs_mapping"] = self.needs_mapping.to_json() if self.needs_mapping else None
        return data
