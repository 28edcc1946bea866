"""Importing one uploaded file: stream its rows, judge each, enqueue the contacts in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from common.contacts import Contact, DuplicateRow, InvalidRow, read_contacts
from common.jobs import JobStore, ParseTally, Upload
from common.messages import ContactBatch, Delivery, pack_batches


class BatchSink(Protocol):
    def send(self, batches: Iterable[ContactBatch]) -> int: ...


@dataclass(frozen=True)
class ImportResult:
    job_id: str
    already_imported: bool
    tally: ParseTally
    failure_reason: str = ""


class _UntilUndecodable:
    """Yields lines until the text stops decoding; the error is kept, not raised, so that every
    row read before it is still enqueued and counted."""

    def __init__(self, lines: Iterable[str]):
        self._lines = lines
        self.failure = ""

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._lines
        except UnicodeDecodeError as error:
            self.failure = (f"the file is not UTF-8 text ({error.reason}); "
                            "save it as CSV UTF-8 and upload it again")


def import_upload(upload: Upload, lines: Iterable[str], jobs: JobStore, queue: BatchSink,
                  on_invalid: Callable[[InvalidRow], None] = lambda row: None) -> ImportResult:
    if not jobs.begin(upload):
        return ImportResult(job_id=upload.job_id, already_imported=True, tally=ParseTally())
    tally = ParseTally()
    text = _UntilUndecodable(lines)

    def deliveries() -> Iterator[Delivery]:
        for verdict in read_contacts(text):
            tally.rows += 1
            if isinstance(verdict, Contact):
                tally.enqueued += 1
                yield Delivery(email=verdict.email, name=verdict.name, row=verdict.row)
            elif isinstance(verdict, DuplicateRow):
                tally.duplicate += 1
            else:
                tally.reject(verdict.reason)
                on_invalid(verdict)

    queue.send(pack_batches(deliveries(), job_id=upload.job_id, source_key=upload.key))
    jobs.finish(upload.job_id, tally, failure_reason=text.failure)
    return ImportResult(job_id=upload.job_id, already_imported=False, tally=tally, failure_reason=text.failure)
