"""In-memory fakes of the ports the ledger and the jobs table stand behind, for domain tests in seconds.

They keep the conditional-write rules of `DynamoLedger` and `DynamoJobs`, item for item: a claim is
taken only where DynamoDB's condition would hold, a move only by the claim's holder, counters are
earned once with the move that earns them. tests/contract/ runs the same cases on each fake and on
its DynamoDB adapter (under moto), so the fakes stay honest.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from common.domain.columns import Unsure
from common.domain.jobs import Checkpoint, ImportState, Job, ParseTally, Stage, Upload
from common.domain.ledger import (
    Claim,
    DuplicateMark,
    LedgerEntry,
    Move,
    Transition,
    already_applied,
    feedback_refusal,
    holds,
    made_by,
)
from common.domain.pseudonyms import Pseudonyms
from common.domain.vocabulary import FeedbackMove, JobCounter, State


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


TEST_PSEUDONYMS = Pseudonyms(b"test pseudonym key, 32 bytes or more")  # as a stack's generated secret


class MemoryTables:
    """What the contacts and jobs tables hold: one ledger entry per email, job heads, counters."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.contacts: dict[str, LedgerEntry] = {}
        self.heads: dict[str, dict] = {}
        self.counters: dict[str, Counter[JobCounter]] = defaultdict(Counter)
        self.counted_duplicates: set[tuple[str, int]] = set()


class MemoryLedger:
    """`Ledger`, `FeedbackLedger` and `ReopeningLedger` on `MemoryTables`."""

    def __init__(self, tables: MemoryTables | None = None, pseudonym: Callable[[str], str] | None = None):
        self.tables = tables or MemoryTables()
        self._pseudonym = pseudonym or TEST_PSEUDONYMS.of

    def entry_for_pseudonym(self, pseudonym: str) -> LedgerEntry | None:
        with self.tables.lock:
            return next((entry for email, entry in self.tables.contacts.items() if self._pseudonym(email) == pseudonym),
                        None)

    def claim(self, claims: Sequence[Claim]) -> dict[str, LedgerEntry | None]:
        lost: dict[str, LedgerEntry | None] = {}
        with self.tables.lock:
            for claim in claims:
                current = self.tables.contacts.get(claim.email)
                taken = self._claimed(claim, current)
                if taken is None and not made_by(current, claim):
                    lost[claim.email] = current
                elif taken is None:
                    continue  # this very claim, made before (a repeated request): won
                else:
                    self.tables.contacts[claim.email] = taken
        return lost

    @staticmethod
    def _claimed(claim: Claim, current: LedgerEntry | None) -> LedgerEntry | None:
        """The entry after the claim, or None where DynamoDB's condition would fail."""
        if claim.take_over_lease_before is not None:
            if current is None or not (holds(current, claim)
                                       and current.lease_until <= claim.take_over_lease_before):
                return None
            return replace(current, lease_until=claim.lease_until, unsent=False, holder=claim.holder)
        if claim.attempt == 1:
            if current is not None:
                return None
            return LedgerEntry(email=claim.email, state=State.CLAIMED, token=claim.token, attempt=1,
                               carrier=claim.carrier, lease_until=claim.lease_until, job_id=claim.job_id,
                               row=claim.row, source_key=claim.source_key, name=claim.name, holder=claim.holder)
        if current is None or not (current.state is State.BLOCKED and current.token == claim.token
                                   and current.attempt == claim.attempt - 1):
            return None
        return replace(current, state=State.CLAIMED, attempt=claim.attempt, carrier=claim.carrier,
                       lease_until=claim.lease_until, holder=claim.holder)

    def entry(self, email: str) -> LedgerEntry | None:
        return self.tables.contacts.get(email)

    def settle(self, transitions: Sequence[Transition]) -> list[Transition]:
        rejected: list[Transition] = []
        with self.tables.lock:
            for transition in dict.fromkeys(transitions):
                if isinstance(transition, DuplicateMark):
                    mark = (transition.job_id, transition.row)
                    if mark in self.tables.counted_duplicates:
                        continue
                    self.tables.counted_duplicates.add(mark)
                    self.tables.counters[transition.job_id][transition.counter] += 1
                    continue
                current = self.tables.contacts.get(transition.claim.email)
                if already_applied(current, transition):
                    continue  # a repeated request: applied and counted by the first
                if current is None or not holds(current, transition.claim):
                    rejected.append(transition)
                    continue
                self.tables.contacts[current.email] = _moved(current, transition)
                if transition.counter is not None:
                    self.tables.counters[transition.claim.job_id][transition.counter] += 1
        return rejected

    def record_feedback(self, email: str, provider_message_id: str, state: State,
                        detail: str) -> tuple[FeedbackMove, LedgerEntry | None]:
        with self.tables.lock:
            entry = self.tables.contacts.get(email)
            if entry is None:
                return FeedbackMove.NOT_OURS, None
            if (refusal := feedback_refusal(entry, provider_message_id, state)) is not None:
                return refusal, entry
            self.tables.contacts[email] = replace(entry, state=state, detail=detail[:500])
            counters = self.tables.counters[entry.job_id]
            if state is State.BOUNCED:
                counters[JobCounter.BOUNCED] += 1
                counters[JobCounter.SENT] -= 1
            else:
                counters[JobCounter.COMPLAINED] += 1
            return FeedbackMove.MOVED, entry

    def reopen_exhausted(self, email: str, token: str, attempt: int, job_id: str) -> bool:
        with self.tables.lock:
            entry = self.tables.contacts.get(email)
            if entry is None or not (entry.state is State.EXHAUSTED and entry.token == token
                                     and entry.attempt == attempt):
                return False
            self.tables.contacts[email] = replace(entry, state=State.BLOCKED, next_attempt_at=0.0)
            self.tables.counters[job_id][JobCounter.EXHAUSTED] -= 1
            self.tables.counters[job_id][JobCounter.RETRIED] += 1
            return True


def _moved(entry: LedgerEntry, move: Move) -> LedgerEntry:
    changes: dict = {"state": move.state}
    if move.state is State.CLAIMED:  # a release
        changes.update(lease_until=0.0, unsent=move.unsent)
    if move.provider_message_id:
        changes["provider_message_id"] = move.provider_message_id
    if move.next_attempt_at:
        changes["next_attempt_at"] = move.next_attempt_at
    if move.detail:
        changes["detail"] = move.detail[:500]
    return replace(entry, **changes)


class MemoryJobs:
    """`JobStore` on `MemoryTables`, with the counters the ledger earns."""

    def __init__(self, tables: MemoryTables | None = None):
        self.tables = tables or MemoryTables()

    def begin(self, upload: Upload, content_etag: str = "") -> ImportState | None:
        with self.tables.lock:
            held = self.tables.heads.get(upload.job_id, {}).get("stage") is Stage.NEEDS_MAPPING
            if upload.job_id not in self.tables.heads or held:
                self.tables.heads[upload.job_id] = {
                    "upload": upload, "stage": Stage.PARSING, "content_etag": content_etag or upload.etag,
                    "segment": 0, "continued": 0, "checkpoint": Checkpoint().encode(), "started_at": _now()}
                return ImportState(upload=upload, checkpoint=Checkpoint(), content_etag=content_etag or upload.etag)
        state = self.resume(upload.job_id)
        return state if state is not None and state.parsing else None

    def resume(self, job_id: str) -> ImportState | None:
        head = self.tables.heads.get(job_id)
        if head is None:
            return None
        # Stored encoded, as the jobs table stores it: what does not survive encoding does not survive here.
        checkpoint = Checkpoint.decode(head["checkpoint"]) if head.get("checkpoint") else Checkpoint()
        return ImportState(upload=head["upload"], checkpoint=checkpoint,
                           continued=head["continued"], content_etag=head["content_etag"], stage=head["stage"])

    def save_checkpoint(self, job_id: str, checkpoint: Checkpoint) -> bool:
        with self.tables.lock:
            head = self.tables.heads[job_id]
            if head["stage"] is not Stage.PARSING or head["segment"] != checkpoint.segment - 1:
                return False
            head.update(segment=checkpoint.segment, checkpoint=checkpoint.encode())
            return True

    def mark_continued(self, job_id: str, segment: int) -> None:
        self.tables.heads[job_id]["continued"] = segment

    def finish(self, job_id: str, tally: ParseTally, failure_reason: str = "", rejects_key: str = "",
               segment: int = 0, read_as: str = "", unsure: Unsure | None = None) -> None:
        with self.tables.lock:
            head = self.tables.heads[job_id]
            if head["stage"] is not Stage.PARSING or head["segment"] != segment:
                return  # a concurrent parse of the same segment finished first with the same tally
            stage = Stage.NEEDS_MAPPING if unsure else Stage.FAILED if failure_reason else Stage.PARSED
            head.update(stage=stage, tally=tally.copy(), failure_reason=failure_reason, rejects_key=rejects_key,
                        parsed_at=_now(), checkpoint=None, read_as=read_as, unsure=unsure)

    def interrupt(self, job_id: str) -> None:
        """What a parse that died before finishing leaves behind: the job still PARSING."""
        self.tables.heads[job_id]["stage"] = Stage.PARSING

    def get(self, job_id: str) -> Job | None:
        head = self.tables.heads.get(job_id)
        if head is None:
            return None
        tally: ParseTally = head.get("tally") or ParseTally()
        counts = self.tables.counters[job_id]
        upload: Upload = head["upload"]
        return Job(job_id=job_id, bucket=upload.bucket, key=upload.key, stage=head["stage"], rows=tally.rows,
                   invalid=tally.invalid, duplicate=tally.duplicate + counts[JobCounter.DUPLICATE],
                   enqueued=tally.enqueued, sent=counts[JobCounter.SENT], bounced=counts[JobCounter.BOUNCED],
                   retried=counts[JobCounter.RETRIED], exhausted=counts[JobCounter.EXHAUSTED],
                   unknown=counts[JobCounter.UNKNOWN], complained=counts[JobCounter.COMPLAINED],
                   failure_reason=head.get("failure_reason", ""), rejects_key=head.get("rejects_key", ""),
                   read_as=head.get("read_as", ""), notes=dict(tally.notes), needs_mapping=head.get("unsure"),
                   invalid_reasons=dict(tally.invalid_reasons), started_at=head["started_at"],
                   parsed_at=head.get("parsed_at", ""))

    def all(self) -> list[Job]:
        jobs = [self.get(job_id) for job_id in list(self.tables.heads)]
        return sorted((j for j in jobs if j is not None), key=lambda j: j.started_at)
