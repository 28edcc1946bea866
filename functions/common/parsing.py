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


class RejectsSink(Protocol):
    def add(self, row: InvalidRow) -> None: ...

    def close(self) -> str:
        """Write what was added; return where (empty when there was nothing to write)."""
        ...


class UploadArchive(Protocol):
    def rejects_for(self, upload: Upload) -> RejectsSink: ...

    def archive(self, upload: Upload, failed: bool) -> str:
        """Move (or keep, or delete) the imported object; return its new key, if it has one."""
        ...


@dataclass(frozen=True)
class ImportResult:
    job_id: str
    already_imported: bool
    tally: ParseTally
    failure_reason: str = ""
    rejects_key: str = ""
    archived_key: str = ""


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


def import_upload(upload: Upload, lines: Iterable[str], jobs: JobStore, queue: BatchSink, archive: UploadArchive,
                  on_invalid: Callable[[InvalidRow], None] = lambda row: None) -> ImportResult:
    """Every row ends up counted once in the job; invalid rows also in the rejects file, with their reason."""
    if not jobs.begin(upload):
        # Imported before (a repeated event, or the same object again): make sure it was archived.
        return ImportResult(job_id=upload.job_id, already_imported=True, tally=ParseTally(),
                            archived_key=archive.archive(upload, failed=False))
    tally = ParseTally()
    text = _UntilUndecodable(lines)
    rejects = archive.rejects_for(upload)

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
                rejects.add(verdict)
                on_invalid(verdict)

    queue.send(pack_batches(deliveries(), job_id=upload.job_id, source_key=upload.key))
    rejects_key = rejects.close()
    jobs.finish(upload.job_id, tally, failure_reason=text.failure, rejects_key=rejects_key)
    archived_key = archive.archive(upload, failed=bool(text.failure))
    return ImportResult(job_id=upload.job_id, already_imported=False, tally=tally, failure_reason=text.failure,
                        rejects_key=rejects_key, archived_key=archived_key)
