"""Unit fixtures: in-memory fakes of the outside world (the ledger and jobs fakes are in tests/fakes.py)."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator

from common.adapters.simulated import SimulatedProvider
from common.config import SimulatedProviderSettings
from common.domain.provider import EmailRequest, OutboxEntry, SendResult, TransientProviderError


class MemoryOutbox:
    def __init__(self) -> None:
        self.recorded: list[OutboxEntry] = []

    def record(self, entry: OutboxEntry) -> None:
        self.recorded.append(entry)

    def find(self, idempotency_key: str) -> list[OutboxEntry]:
        return [e for e in self.recorded if e.idempotency_key == idempotency_key]

    def entries(self) -> Iterator[OutboxEntry]:
        return iter(self.recorded)

    def delivered_to(self) -> list[str]:
        return [e.to for e in self.recorded if e.outcome.value == "delivered"]


def simulated_settings(**changes: object) -> SimulatedProviderSettings:
    values = {"seed": "tests", "bounce_rate": 0.1, "block_rate": 0.1, "slow_rate": 0.0, "slow_min_seconds": 1.0,
              "slow_max_seconds": 5.0, "outbox_table": "unused"}
    values.update(changes)
    return SimulatedProviderSettings(**values)  # type: ignore[arg-type]


class FaultyProvider:
    """The simulated provider with faults injected by recipient."""

    def __init__(self, outbox: MemoryOutbox, can_look_up: bool = True, **settings: object):
        self.inner = SimulatedProvider(simulated_settings(**settings), outbox, sleep=lambda s: None)
        self.can_look_up = can_look_up
        self.crash_after_send: set[str] = set()
        self.transient_for: set[str] = set()
        self.answer_lost_for: set[str] = set()
        self.refused: list[tuple[str, int]] = []  # throttled sends (address, attempt): the outbox never saw them

    def send(self, request: EmailRequest) -> SendResult:
        if request.to in self.transient_for:
            self.transient_for.discard(request.to)
            self.refused.append((request.to, request.attempt))
            raise TransientProviderError("throttled")
        result = self.inner.send(request)
        if request.to in self.answer_lost_for:
            self.answer_lost_for.discard(request.to)
            raise TransientProviderError("timed out waiting for the answer", maybe_sent=True)
        if request.to in self.crash_after_send:
            self.crash_after_send.discard(request.to)
            raise SimulatedCrash(f"crashed after sending to {request.to}")
        return result

    def look_up(self, idempotency_key: str) -> SendResult | None:
        return self.inner.look_up(idempotency_key)


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the code under test catches it."""


class MemoryQueue:
    """Collects what the code sends: retries (with their delay) and dead letters."""

    def __init__(self) -> None:
        self.retries: list = []
        self.letters: list = []
        self._ids = itertools.count(1)

    def send_retries(self, retries) -> int:
        self.retries += retries
        return len(retries)

    def send(self, batches) -> int:
        from common.domain.messages import DelayedRetry

        batches = list(batches)
        self.retries += [DelayedRetry(batch=b, delay_seconds=0) for b in batches]
        return len(batches)

    def put(self, letters) -> int:
        self.letters += letters
        return len(letters)

    def next_message_id(self) -> str:
        return f"msg-{next(self._ids)}"


class MemoryUploads:
    """Uploaded objects, rejects files (and their per-segment parts) and archived keys, in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.rejects: dict[str, list] = {}
        self.archived: list[tuple[str, bool]] = []
        self.opened_at: list[int] = []

    def put(self, key: str, data: bytes | str, metadata: dict[str, str] | None = None) -> None:
        self.objects[key] = data.encode() if isinstance(data, str) else data
        self.metadata[key] = metadata or {}

    def open(self, upload, offset: int = 0, if_match: str = ""):
        from common.domain.parsing import ObjectGone, OpenedObject

        if upload.key not in self.objects:
            raise ObjectGone(f"{upload.key} no longer exists")
        etag = str(hash(self.objects[upload.key]))
        if if_match and if_match != etag:
            raise ObjectGone(f"{upload.key} was replaced by another upload")
        self.opened_at.append(offset)
        return OpenedObject(stream=io.BytesIO(self.objects[upload.key][offset:]), etag=etag,
                            metadata=self.metadata.get(upload.key, {}))

    def rejects_for(self, upload, segment: int = 0):
        uploads = self
        key = "rejects/" + upload.key.removeprefix("incoming/")

        class Rejects:
            def __init__(self) -> None:
                self.rows: list = []

            def add(self, row) -> None:
                self.rows.append(row)

            def close_part(self) -> str:
                if not self.rows:
                    return ""
                uploads.rejects[f"{key}.part{segment}"] = self.rows
                return f"{key}.part{segment}"

            def close(self, earlier_parts=()) -> str:
                rows = [row for part in earlier_parts for row in uploads.rejects.pop(part)] + self.rows
                if not rows:
                    return ""
                uploads.rejects[key] = rows
                return key

        return Rejects()

    def archive(self, upload, failed: bool) -> str:
        self.archived.append((upload.key, failed))
        self.objects.pop(upload.key, None)
        return ("failed/" if failed else "processed/") + upload.key.removeprefix("incoming/")


class MemoryContinuations:
    def __init__(self) -> None:
        self.requested: list[tuple[str, int]] = []

    def request(self, job_id: str, segment: int) -> None:
        self.requested.append((job_id, segment))
