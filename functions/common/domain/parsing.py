"""Importing one uploaded file: stream its rows, judge each, enqueue the contacts in batches.

A file too big for one invocation is imported in segments: before its deadline an invocation
stops after a record, enqueues what it has read, checkpoints the byte offset in the job and asks
for a continuation, which reads on from that byte. Each row is read, counted and enqueued in
exactly one segment; a segment that crashes is read again from its checkpoint, and its contacts
carry the same claim tokens, so the ledger treats them as the same work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO

from common.domain.columns import ColumnMapping, Layout, Unsure
from common.domain.contacts import Contact, ContactReader, DuplicateRow, InvalidRow
from common.domain.encodings import UTF8, EncodingDecision, LineDecoder, NotText
from common.domain.jobs import Checkpoint, ImportState, ParseTally, Stage, Upload
from common.domain.lines import DEFAULT_MAX_LINE_BYTES, PositionedLines, peek_encoding
from common.domain.messages import Delivery, pack_batches
from common.ports import BatchSink, Continuations, JobStore, RejectsSink, Uploads

# How many rows are judged between two looks at the clock (and so the least a segment reads).
ROWS_BETWEEN_DEADLINE_CHECKS = 500


# What is read; any other object put in incoming/ is a FAILED job that says so (none is dropped in silence).
READABLE_SUFFIXES = (".csv", ".txt", ".tsv")
SEVERAL_ADDRESSES_NOTE = "a cell held more than one address: the first was emailed, the others were not"


def unreadable_kind(key: str) -> str:
    """Why an object is not read as contacts ('' when it is)."""
    suffix = PurePosixPath(key).suffix
    if suffix.lower() in READABLE_SUFFIXES:
        return ""
    kind = f"'{suffix[1:]}' files" if suffix else "files without a .csv, .txt or .tsv ending"
    return (f"{kind} are not read: only .csv, .txt and .tsv files are (a spreadsheet: save it as CSV UTF-8 and "
            "upload that)")


@dataclass(frozen=True)
class OpenedObject:
    stream: BinaryIO
    etag: str  # of the content being read: later segments read only this content
    metadata: dict[str, str] = field(default_factory=dict)  # the upload's x-amz-meta-*: a column mapping, say


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
    unsure: Unsure | None = None  # held unsent (NEEDS_MAPPING): which columns are which is not certain


def never() -> bool:
    return False


def read_as(encoding: EncodingDecision | None, layout: Layout | None) -> str:
    """How the file was read and why, as the job records it and `status` shows it."""
    parts = [f"{encoding.name} ({encoding.why})" if encoding.why not in ("", encoding.encoding) else encoding.name] \
        if encoding else []
    return "; ".join(parts + ([layout.describe()] if layout else []))


def _decision(checkpoint: Checkpoint) -> EncodingDecision | None:
    """What the earlier segments decided (a checkpoint from before encodings were recorded: UTF-8, as then)."""
    if checkpoint.encoding:
        return EncodingDecision(checkpoint.encoding, checkpoint.encoding_why or checkpoint.encoding,
                                text_seen=checkpoint.text_seen)
    if checkpoint.offset:
        return EncodingDecision(UTF8, "as every file was read before encodings were told", text_seen=True)
    return None


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
        if kind := unreadable_kind(upload.key):
            stream.close()
            return self._finish(state, ParseTally(), self.uploads.rejects_for(upload, 0), kind)
        if state.checkpoint.segment > 0:  # a retried event: later segments own the rest
            stream.close()
            return self._skip_segment(state, 0)
        if self.max_file_bytes and upload.size > self.max_file_bytes:
            stream.close()
            return self._finish(state, ParseTally(), self.uploads.rejects_for(upload, 0),
                                f"the file has {upload.size:,} bytes, more than the {self.max_file_bytes:,} allowed "
                                "(MaxFileBytes): nothing was read or sent; split it, or raise MaxFileBytes")
        return self._read_segment(state, stream, should_stop, ColumnMapping.from_metadata(opened.metadata))

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

    def _read_segment(self, state: ImportState, stream: BinaryIO, should_stop: Callable[[], bool],
                      mapping: ColumnMapping | None = None) -> ImportResult:
        upload, checkpoint = state.upload, state.checkpoint
        rejects = self.uploads.rejects_for(upload, checkpoint.segment)
        decision = _decision(checkpoint)
        if decision is None:  # the first segment: tell the encoding from the first bytes
            try:
                decision, stream = peek_encoding(stream)
            except NotText as error:
                stream.close()
                return self._finish(state, checkpoint.tally.copy(), rejects,
                                    f"{error}; only CSV text files are imported")
        decoder = LineDecoder(decision)
        lines = PositionedLines(stream, checkpoint.offset, decoder, max_line_bytes=self.max_line_bytes,
                                first_line=checkpoint.line)
        reader = ContactReader(lines, layout=checkpoint.layout, first_line=checkpoint.line, mapping=mapping)
        segment = _Segment(reader, checkpoint.tally.copy(), rejects, self.on_invalid, self.max_rows, should_stop)
        try:
            self.queue.send(pack_batches(segment.deliveries(), job_id=upload.job_id, source_key=upload.key))
        finally:
            stream.close()
        if reader.unsure is not None:
            return self._finish(state, segment.tally, rejects, "", encoding=decoder.decision, unsure=reader.unsure)
        if segment.stopped and not segment.too_many:
            return self._continue_later(state, segment, lines)
        return self._finish(state, segment.tally, rejects, segment.too_many, reader.layout, decoder.decision)

    def _continue_later(self, state: ImportState, segment: _Segment, lines: PositionedLines) -> ImportResult:
        """Checkpoint where this segment stopped, and ask for the next one."""
        checkpoint, decision = state.checkpoint, lines.decoder.decision
        part = segment.rejects.close_part()
        following = Checkpoint(segment=checkpoint.segment + 1, offset=lines.position,
                               line=checkpoint.line + lines.count, layout=segment.reader.layout, tally=segment.tally,
                               rejects_parts=checkpoint.rejects_parts + ((part,) if part else ()),
                               encoding=decision.encoding, encoding_why=decision.why, text_seen=decision.text_seen)
        if self.jobs.save_checkpoint(state.upload.job_id, following):
            self._request_continuation(state.upload.job_id, following.segment)
        return ImportResult(job_id=state.upload.job_id, tally=segment.tally, segment=checkpoint.segment,
                            continued=True)

    def _finish(self, state: ImportState, tally: ParseTally, rejects: RejectsSink, failure_reason: str,
                layout: Layout | None = None, encoding: EncodingDecision | None = None,
                unsure: Unsure | None = None) -> ImportResult:
        """The job's end: FAILED with a reason, held (NEEDS_MAPPING) with what is unsure, or parsed."""
        upload, segment = state.upload, state.checkpoint.segment
        rejects_key = rejects.close(state.checkpoint.rejects_parts)
        self.jobs.finish(upload.job_id, tally, failure_reason=failure_reason, rejects_key=rejects_key,
                         segment=segment, read_as=read_as(encoding, layout), unsure=unsure)
        archived_key = self.uploads.archive(upload, failed=bool(failure_reason) or unsure is not None)
        return ImportResult(job_id=upload.job_id, tally=tally, segment=segment, failure_reason=failure_reason,
                            rejects_key=rejects_key, archived_key=archived_key, unsure=unsure)


@dataclass
class _Segment:
    """One segment's reading: every row the reader judges, counted as it goes by; contacts handed on."""

    reader: ContactReader
    tally: ParseTally
    rejects: RejectsSink
    on_invalid: Callable[[InvalidRow], None]
    max_rows: int
    should_stop: Callable[[], bool]
    stopped: bool = False  # before its deadline, after a record
    too_many: str = ""  # past MaxRowsPerFile: why reading stopped

    def deliveries(self) -> Iterator[Delivery]:
        tally = self.tally
        for judged, verdict in enumerate(self.reader, start=1):
            if self.max_rows and tally.rows >= self.max_rows:
                self.too_many = (f"the file has more than {self.max_rows:,} rows (MaxRowsPerFile): its first "
                                 f"{self.max_rows:,} rows were imported, the rest were not read")
                return
            tally.rows += 1
            if isinstance(verdict, Contact):
                tally.enqueued += 1
                if verdict.other_addresses:
                    tally.note(SEVERAL_ADDRESSES_NOTE, verdict.other_addresses)
                yield Delivery(email=verdict.email, name=verdict.name, row=verdict.row)
            elif isinstance(verdict, DuplicateRow):
                tally.duplicate += 1
            else:
                tally.reject(verdict.reason)
                self.rejects.add(verdict)
                self.on_invalid(verdict)
            if judged % ROWS_BETWEEN_DEADLINE_CHECKS == 0 and self.should_stop():
                self.stopped = True
                return
