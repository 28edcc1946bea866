"""Importing one uploaded file: stream its rows, judge each, enqueue the contacts in batches.

A file too big for one invocation is imported in segments: before its deadline an invocation
stops after a record, enqueues what it has read, checkpoints the byte offset in the job and asks
for a continuation, which reads on from that byte. Each row is read, counted and enqueued in
exactly one segment; a segment that crashes is read again from its checkpoint, and its contacts
carry the same claim tokens, so the ledger treats them as the same work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from common.domain.contacts import Contact, ContactReader, DuplicateRow, InvalidRow, Layout
from common.domain.jobs import Checkpoint, ImportState, ParseTally, Stage, Upload
from common.domain.lines import DEFAULT_MAX_LINE_BYTES, ENCODING_NAMES, UTF8, NotText, PositionedLines, peek_encoding
from common.domain.messages import Delivery, pack_batches
from common.ports import BatchSink, Continuations, JobStore, RejectsSink, Uploads

# How many rows are judged between two looks at the clock (and so the least a segment reads).
ROWS_BETWEEN_DEADLINE_CHECKS = 500


@dataclass(frozen=True)
class OpenedObject:
    stream: BinaryIO
    etag: str  # of the content being read: later segments read only this content


class ObjectGone(LookupError):
    """The object an event named is not there any more (or changed): there is nothing to import."""


@dataclass(frozen=True)
class ImportResult:
    job_id: str
    tally: ParseTally
    segment: int = 0
    already_imported: bool = False
    skipped: str = ""  # why this invocation had nothing to read
    continued: bool = False  # stopped before the end; the next segment was requested
    failure_reason: str = ""
    rejects_key: str = ""
    archived_key: str = ""


def never() -> bool:
    return False


def _read_as(encoding: str, layout: Layout | None) -> str:
    """How the file was read, as the job records it and `status` shows it."""
    parts = [ENCODING_NAMES.get(encoding, encoding)] if encoding else []
    return "; ".join(parts + ([layout.describe()] if layout else []))


class _UntilUndecodable:
    """Yields lines until the text stops decoding; the error is kept, not raised, so that every
    row read before it is still enqueued and counted."""

    def __init__(self, lines: Iterable[str], encoding: str):
        self._lines = lines
        self._encoding = encoding
        self.failure = ""

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._lines
        except UnicodeDecodeError as error:
            self.failure = (f"the file stops being {ENCODING_NAMES.get(self._encoding, self._encoding)} text "
                            f"({error.reason}); save it as CSV UTF-8 and upload it again")


@dataclass
class Importer:
    jobs: JobStore
    queue: BatchSink
    uploads: Uploads
    continuations: Continuations
    on_invalid: Callable[[InvalidRow], None] = lambda row: None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES  # a longer line is an invalid row; its bytes are never held
    max_file_bytes: int = 0  # a larger upload FAILS before anything is read (0: no limit)
    max_rows: int = 0  # rows read at the most; the job then FAILS, keeping them (0: no limit)

    def import_upload(self, upload: Upload, should_stop: Callable[[], bool] = never) -> ImportResult:
        """An S3 event: segment 0 of a new job. Every row ends up counted once in the job;
        invalid rows also in the rejects file, with their reason."""
        opened = self.uploads.open(upload)  # before the job exists: a vanished object leaves no job behind
        stream = opened.stream
        state = self.jobs.begin(upload, content_etag=opened.etag)
        if state is None:
            # Imported before (a repeated event, or the same object again): make sure it was archived.
            stream.close()
            return ImportResult(job_id=upload.job_id, tally=ParseTally(), already_imported=True,
                                archived_key=self.uploads.archive(upload, failed=False))
        if state.checkpoint.segment > 0:  # a retried event: later segments own the rest
            stream.close()
            return self._skip_segment(state, 0)
        if self.max_file_bytes and upload.size > self.max_file_bytes:
            stream.close()
            return self._finish(state, ParseTally(), self.uploads.rejects_for(upload, 0),
                                f"the file has {upload.size:,} bytes, more than the {self.max_file_bytes:,} allowed "
                                "(MaxFileBytes): nothing was read or sent; split it, or raise MaxFileBytes")
        return self._read_segment(state, stream, should_stop)

    def continue_import(self, job_id: str, segment: int, should_stop: Callable[[], bool] = never) -> ImportResult:
        state = self.jobs.resume(job_id)
        if state is None:
            return ImportResult(job_id=job_id, tally=ParseTally(), segment=segment, skipped="no such job")
        if not state.parsing:
            # Its last segment finished the job, but may have stopped before archiving the object.
            return ImportResult(job_id=job_id, tally=ParseTally(), segment=segment, skipped="the job is parsed",
                                archived_key=self.uploads.archive(state.upload, failed=state.stage is Stage.FAILED))
        if state.checkpoint.segment != segment:
            return self._skip_segment(state, segment)
        try:
            stream = self.uploads.open(state.upload, state.checkpoint.offset, if_match=state.content_etag).stream
        except ObjectGone as gone:
            return self._finish(state, state.checkpoint.tally.copy(), self.uploads.rejects_for(state.upload, segment),
                                f"the file could not be read to its end: {gone}")
        return self._read_segment(state, stream, should_stop)

    def _skip_segment(self, state: ImportState, segment: int) -> ImportResult:
        """A repeated request for a segment already read: only make sure the next one was asked for
        (the invocation that read it may have stopped between its checkpoint and its request)."""
        current = state.checkpoint.segment
        if segment < current and state.continued < current:
            self._request_continuation(state.upload.job_id, current)
        return ImportResult(job_id=state.upload.job_id, tally=ParseTally(), segment=segment,
                            skipped=f"segment {segment} was already read; the job is at segment {current}")

    def _request_continuation(self, job_id: str, segment: int) -> None:
        self.continuations.request(job_id, segment)
        self.jobs.mark_continued(job_id, segment)

    def _read_segment(self, state: ImportState, stream: BinaryIO, should_stop: Callable[[], bool]) -> ImportResult:
        upload, checkpoint = state.upload, state.checkpoint
        tally = checkpoint.tally.copy()
        rejects = self.uploads.rejects_for(upload, checkpoint.segment)
        encoding = checkpoint.encoding or (UTF8 if checkpoint.offset else "")
        if not encoding:  # the first segment: tell the encoding from the first bytes
            try:
                encoding, stream = peek_encoding(stream)
            except NotText as error:
                stream.close()
                return self._finish(state, tally, rejects, f"{error}; only CSV text files are imported")
        lines = PositionedLines(stream, checkpoint.offset, encoding, max_line_bytes=self.max_line_bytes)
        text = _UntilUndecodable(lines, encoding)
        reader = ContactReader(text, layout=checkpoint.layout, first_line=checkpoint.line)
        stopped = False
        too_many = ""

        def deliveries() -> Iterator[Delivery]:
            nonlocal stopped, too_many
            for judged, verdict in enumerate(reader, start=1):
                if self.max_rows and tally.rows >= self.max_rows:
                    too_many = (f"the file has more than {self.max_rows:,} rows (MaxRowsPerFile): its first "
                                f"{self.max_rows:,} rows were imported, the rest were not read")
                    return
                tally.rows += 1
                if isinstance(verdict, Contact):
                    tally.enqueued += 1
                    yield Delivery(email=verdict.email, name=verdict.name, row=verdict.row)
                elif isinstance(verdict, DuplicateRow):
                    tally.duplicate += 1
                else:
                    tally.reject(verdict.reason)
                    rejects.add(verdict)
                    self.on_invalid(verdict)
                if judged % ROWS_BETWEEN_DEADLINE_CHECKS == 0 and should_stop():
                    stopped = True
                    return

        try:
            self.queue.send(pack_batches(deliveries(), job_id=upload.job_id, source_key=upload.key))
        finally:
            stream.close()
        if stopped and not text.failure and not too_many:
            part = rejects.close_part()
            following = Checkpoint(segment=checkpoint.segment + 1, offset=lines.position,
                                   line=checkpoint.line + lines.count, layout=reader.layout, tally=tally,
                                   rejects_parts=checkpoint.rejects_parts + ((part,) if part else ()),
                                   encoding=encoding)
            if self.jobs.save_checkpoint(upload.job_id, following):
                self._request_continuation(upload.job_id, following.segment)
            return ImportResult(job_id=upload.job_id, tally=tally, segment=checkpoint.segment, continued=True)
        return self._finish(state, tally, rejects, text.failure or too_many, reader.layout, encoding)

    def _finish(self, state: ImportState, tally: ParseTally, rejects: RejectsSink, failure_reason: str,
                layout: Layout | None = None, encoding: str = "") -> ImportResult:
        upload, segment = state.upload, state.checkpoint.segment
        rejects_key = rejects.close(state.checkpoint.rejects_parts)
        self.jobs.finish(upload.job_id, tally, failure_reason=failure_reason, rejects_key=rejects_key,
                         segment=segment, read_as=_read_as(encoding, layout))
        archived_key = self.uploads.archive(upload, failed=bool(failure_reason))
        return ImportResult(job_id=upload.job_id, tally=tally, segment=segment, failure_reason=failure_reason,
                            rejects_key=rejects_key, archived_key=archived_key)
