"""What the console shows and does, as JSON-ready dicts: the same LocalCloud calls the CLI makes.

Read-only except two actions, each with the CLI's rules: an upload goes to `incoming/` as `aws s3 cp`
would put it, and a redrive runs `common.domain.redrive` on the letters of one reason.
"""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from common.domain.columns import ColumnMapping, mapping_metadata
from common.domain.contacts import normalise_email
from common.domain.encodings import NotText, decide_encoding
from common.domain.lines import HEAD_BYTES
from common.domain.parsing import unreadable_kind
from common.domain.preview import preview
from common.domain.redrive import REDRIVABLE
from localcloud.cloud import LEVELS, UPLOAD_PREFIX, LocalCloud, NotImported, log_line_matches

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # larger files: `aws s3 cp`, which streams them
FORBIDDEN_IN_NAMES = set('"/\\')  # (an apostrophe stays: "Bob's contacts.csv" is a real name, and harmless)
LETTERS_SHOWN = 50  # with their contact's address looked up in the ledger, one query each
LOG_WINDOW_SECONDS = 15 * 60
LOG_LINES = 200
QUEUES = {"contacts": "ContactsQueueUrl", "retries": "RetryQueueUrl", "dead letters": "DeadLetterQueueUrl",
          "parse failures": "ParseFailuresQueueUrl"}
# What a provider call ends as, in a job's counters: its sends so far.
SEND_COUNTERS = ("sent", "bounced", "retried", "exhausted", "unknown")


class ConsoleError(ValueError):
    """Bad input to an action: nothing was changed; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Sample:
    at: float
    sends: int
    depths: dict[str, int]


class ConsoleApi:
    def __init__(self, cloud: LocalCloud, history_seconds: float = 600, sample_every: float = 2.0):
        self.cloud = cloud
        self.sample_every = sample_every
        self._samples: deque[Sample] = deque(maxlen=int(history_seconds / sample_every) + 1)
        self._sampling = threading.Lock()

    # -- reads -------------------------------------------------------------------------------
    def jobs(self) -> dict[str, Any]:
        jobs = sorted(self.cloud.jobs(), key=lambda j: (j.started_at or "~", j.key), reverse=True)
        return {"jobs": [job.to_json() for job in jobs]}

    def job(self, job_id: str) -> dict[str, Any]:
        found = self.cloud.jobs_store.get(job_id)
        if found is None:
            raise ConsoleError(f"no job {job_id!r}", status=404)
        data = found.to_json()
        data["rejects_url"] = f"rejects?job={quote(job_id, safe='')}" if found.rejects_key else ""
        data["rejects_s3"] = f"s3://{found.bucket}/{found.rejects_key}" if found.rejects_key else ""
        return data

    def rejects(self, job_id: str) -> tuple[str, bytes]:
        """The job's rejects file (its invalid rows and why), read through the S3 API as any client would."""
        found = self.cloud.jobs_store.get(job_id)
        if found is None or not found.rejects_key:
            raise ConsoleError(f"job {job_id!r} has no rejects file", status=404)
        body = self.cloud.client("s3").get_object(Bucket=found.bucket, Key=found.rejects_key)["Body"].read()
        return found.rejects_key.rsplit("/", 1)[-1], body

    def contact(self, email: str) -> dict[str, Any]:
        try:
            address = normalise_email(email)
        except ValueError as error:
            raise ConsoleError(f"{email!r} is not an email address: {error}") from None
        entry = self.cloud.contact(address)
        if entry is None:
            return {"email": address, "found": False,
                    "why": "not in the ledger: not imported yet, or its row was invalid"}
        attempts = [{"attempt": a.attempt, "outcome": a.outcome.value, "received_at": a.received_at,
                     "provider_message_id": a.provider_message_id}
                    for a in self.cloud.outbox_attempts(entry)]
        return {"email": entry.email, "found": True, "name": entry.name, "state": entry.state.value,
                "attempt": entry.attempt, "provider_message_id": entry.provider_message_id,
                "file": entry.source_key, "row": entry.row, "job": entry.job_id, "detail": entry.detail,
                "attempts": attempts}

    def dlq(self) -> dict[str, Any]:
        letters = self.cloud.dead_letters(named=LETTERS_SHOWN)
        by_reason = Counter(str(letter.get("reason", "?")) for letter in letters)
        return {"reasons": [{"reason": reason, "count": count, "redrivable": reason in REDRIVABLE}
                            for reason, count in by_reason.most_common()],
                "letters": letters[:LETTERS_SHOWN], "total": len(letters)}

    def logs(self, function: str, level: str = "", job: str = "") -> dict[str, Any]:
        if level and level.upper() not in LEVELS:
            raise ConsoleError(f"level must be one of {', '.join(LEVELS)}")
        try:
            self.cloud.deployed.function(function)
        except KeyError as error:
            raise ConsoleError(str(error.args[0]), status=404) from None
        since = int((time.time() - LOG_WINDOW_SECONDS) * 1000)
        lines = [{"timestamp": e["timestamp"], "message": e["message"].rstrip()}
                 for e in self.cloud.log_events(function, since_ms=since)
                 if not _is_metric(e["message"]) and log_line_matches(e["message"], job, level.upper())]
        return {"function": function, "lines": lines[-LOG_LINES:]}

    def functions(self) -> list[str]:
        return sorted(self.cloud.deployed.functions)

    def metrics(self) -> dict[str, Any]:
        """Queue depths now, and sends per second between samples over the last minutes."""
        self.sample()
        samples = list(self._samples)
        rates = [{"at": later.at, "per_second": max(0, later.sends - earlier.sends) / (later.at - earlier.at)}
                 for earlier, later in itertools.pairwise(samples) if later.at > earlier.at]
        return {"depths": samples[-1].depths if samples else {}, "sends": rates,
                "depth_history": [{"at": s.at, **s.depths} for s in samples]}

    def sample(self) -> None:
        """One sample at most every `sample_every` seconds, however many browsers poll."""
        with self._sampling:
            now = time.time()
            if self._samples and now - self._samples[-1].at < self.sample_every:
                return
            jobs = self.cloud.jobs_store.all()
            sends = sum(getattr(job, counter) for job in jobs for counter in SEND_COUNTERS)
            self._samples.append(Sample(at=now, sends=sends, depths=self._depths()))

    def _depths(self) -> dict[str, int]:
        sqs = self.cloud.client("sqs")
        depths = {}
        for name, output in QUEUES.items():
            if output not in self.cloud.deployed.outputs:
                continue
            attributes = sqs.get_queue_attributes(
                QueueUrl=self.cloud.deployed.output(output),
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            depths[name] = sum(int(value) for value in attributes.values())
        return depths

    # -- actions -----------------------------------------------------------------------------
    def preview(self, filename: str, body: bytes, mapping: ColumnMapping | None = None) -> dict[str, Any]:
        """How the file would be read, and its first emails as they would be sent; nothing is uploaded."""
        return preview(io.BytesIO(body), self._name(filename), mapping).to_json()

    @staticmethod
    def _name(filename: str) -> str:
        """The file's own name, refused when it could be more (a path, a header's end, a quoted string's end)."""
        name = filename.strip(" ")
        if not name:
            raise ConsoleError("the upload has no file name")
        if any(ord(char) < 32 or ord(char) == 127 for char in name) or set(name) & FORBIDDEN_IN_NAMES \
                or name in (".", ".."):
            raise ConsoleError(f"the file name {name!r} may not hold control characters, double quotes or path "
                               "separators: rename the file")
        return name

    def upload(self, filename: str, body: bytes, mapping: ColumnMapping | None = None) -> dict[str, Any]:
        """Checked first, then put to incoming/ in one request; a refused file changes nothing. `mapping`: which
        column is which, as the object's metadata (x-amz-meta-email-column, -name-columns)."""
        name = self._name(filename)
        if len(body) > MAX_UPLOAD_BYTES:
            raise ConsoleError(f"{name} is {len(body) / 2**20:.0f} MB; the console takes files up to "
                               f"{MAX_UPLOAD_BYTES // 2**20} MB (upload larger ones with aws s3 cp)", status=413)
        if not body:
            raise ConsoleError(f"{name} is empty")
        try:
            decide_encoding(body[:HEAD_BYTES])  # the parser's own rule: refused here, it would fail the job
        except NotText as error:
            raise ConsoleError(f"{name} is not a CSV file: {error}", status=415) from None
        if kind := unreadable_kind(name):
            raise ConsoleError(f"{name} would not be read: {kind}", status=415)
        key = UPLOAD_PREFIX + name
        try:
            self.cloud.check_importable(key)
        except NotImported as error:
            raise ConsoleError(str(error), status=415) from None
        uploaded = self.cloud.put_upload(key, body, mapping_metadata(mapping))
        return {"key": key, "s3": f"s3://{self.cloud.bucket}/{key}", "job_id": uploaded.job_id, "bytes": len(body)}

    def redrive(self, reason: str) -> dict[str, Any]:
        if reason not in REDRIVABLE:
            raise ConsoleError(f"{reason or 'nothing'}: only {' and '.join(REDRIVABLE)} letters can be redriven "
                               "(bounced addresses are permanent, and an unknown outcome must first be checked "
                               "with the provider)")
        outcomes = self.cloud.redrive(reason)
        return {"reason": reason, "handled": sum(outcomes.values()), "outcomes": dict(outcomes)}


def _is_metric(message: str) -> bool:
    """Powertools' EMF lines are metrics for CloudWatch (the chart and `localcloud metrics` sum them), not prose."""
    return message.startswith('{"_aws"')
