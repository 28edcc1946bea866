"""Importing a file: every row counted once, contacts enqueued in batches, bad files failed clearly,
and a file too big for one invocation read in segments that neither skip nor repeat a row."""

import subprocess
import sys
from pathlib import Path

import pytest

from common.domain.contacts import OVERLONG_REASON
from common.domain.jobs import JobStatus, Upload
from common.domain.messages import MAX_CONTACTS_PER_MESSAGE, claim_token
from common.domain.parsing import ROWS_BETWEEN_DEADLINE_CHECKS, Importer
from common.ports import JobStore
from tests.fakes import MemoryJobs
from tests.unit.conftest import MemoryContinuations, MemoryUploads


class CollectingQueue:
    def __init__(self, fail_after: int | None = None):
        self.batches = []
        self.fail_after = fail_after

    def send(self, batches):
        for batch in batches:
            if self.fail_after is not None and len(self.batches) >= self.fail_after:
                self.fail_after = None
                raise ConnectionError("the invocation died while enqueueing")
            self.batches.append(batch)
        return len(self.batches)

    def rows(self) -> list[int]:
        return [d.row for b in self.batches for d in b.deliveries]


class World:
    def __init__(self, jobs: JobStore):
        self.jobs = jobs
        self.queue = CollectingQueue()
        self.uploads = MemoryUploads()
        self.continuations = MemoryContinuations()
        self.importer = Importer(self.jobs, self.queue, self.uploads, self.continuations)

    def upload(self, key: str, data: bytes | str) -> Upload:
        self.uploads.put(key, data)
        return Upload(bucket="b", key=key, etag="e")

    def run_continuations(self, should_stop=lambda: True) -> list:
        """Play the continuations queue: each request is one more invocation."""
        results = []
        while self.continuations.requested:
            job_id, segment = self.continuations.requested.pop(0)
            results.append(self.importer.continue_import(job_id, segment, should_stop))
        return results


@pytest.fixture
def world() -> World:
    return World(MemoryJobs())


def test_every_row_is_counted_once_and_contacts_are_enqueued_in_order(world):
    text = "".join(f"N{i}, c{i % 150}@example.com\n" for i in range(250)) + "bad row\n"
    result = world.importer.import_upload(world.upload("incoming/a.csv", text))
    tally = result.tally
    assert (tally.rows, tally.invalid, tally.duplicate, tally.enqueued) == (251, 1, 100, 150)
    assert [len(b.deliveries) for b in world.queue.batches] == [99, 51]
    job = world.jobs.get(result.job_id)
    assert (job.status, job.rows, job.invalid, job.duplicate) == (JobStatus.SENDING, 251, 1, 100)
    assert job.invalid_reasons == {"too few columns (1, expected at least 2)": 1}
    assert [r.row for r in world.uploads.rejects["rejects/a.csv"]] == [251]
    assert (job.rejects_key, result.archived_key) == ("rejects/a.csv", "processed/a.csv")
    assert job.read_as.startswith("UTF-8 (ASCII so far); no header: the seed's columns")
    assert not world.continuations.requested


def test_the_job_records_which_columns_a_file_s_header_named(world):
    result = world.importer.import_upload(world.upload("incoming/g.csv", "Given Name,Family Name,E-mail 1 - Value\n"
                                                                         "Ada,Lovelace,ada@example.com\n"))
    job = world.jobs.get(result.job_id)
    assert job.read_as == "UTF-8 (ASCII so far); email from 'E-mail 1 - Value', name from 'Given Name' + 'Family Name'"
    assert [d.name for b in world.queue.batches for d in b.deliveries] == ["Ada Lovelace"]


@pytest.mark.parametrize(("encoding", "data", "read_as"), [
    ("windows-1252", "Name,Email\r\nZoë Ölund,zoe@example.com\r\nŁukasz € Nowak,lukasz@example.com\r\n".encode(),
     "UTF-8"),  # (Ł is not in Windows-1252: this one is UTF-8, as it should be read)
    ("windows-1252", "Name,Email\r\nZoë Ölund,zoe@example.com\r\nJosé € Núñez,jose@example.com\r\n".encode("cp1252"),
     "Windows-1252"),
    ("latin-1", "Name,Email\nZoë Ölund,zoe@example.com\nJosé Núñez,jose@example.com\n".encode("latin-1"),
     "Windows-1252"),
    ("utf-16", "Name\tEmail\r\nZoë Ölund\tzoe@example.com\r\nJosé Núñez\tjose@example.com\r\n".encode("utf-16"),
     "UTF-16 LE"),  # Excel's "Unicode Text"
    ("utf-16-be", "\ufeffName,Email\nZoë Ölund,zoe@example.com\nJosé Núñez,jose@example.com\n".encode("utf-16-be"),
     "UTF-16 BE"),
    ("utf-8-sig", "Name,Email\nZoë Ölund,zoe@example.com\nJosé Núñez,jose@example.com\n".encode("utf-8-sig"), "UTF-8"),
])
def test_files_in_the_encodings_people_export_are_read_with_their_names_right(world, encoding, data, read_as):
    # Given the same contacts saved the ways spreadsheets save them
    result = world.importer.import_upload(world.upload("incoming/export.csv", data))
    # When imported, Then every row is a contact, its name as written, and the job says how it was read
    job = world.jobs.get(result.job_id)
    assert (job.status, job.rows, job.enqueued, job.failure_reason) == (JobStatus.SENDING, 2, 2, "")
    names = [d.name for b in world.queue.batches for d in b.deliveries]
    assert names[0] == "Zoë Ölund" and names[1] in ("José € Núñez", "José Núñez", "Łukasz € Nowak")
    assert job.read_as.startswith(read_as + " (")


def test_a_file_that_is_not_text_fails_its_job_with_the_reason(world):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    result = world.importer.import_upload(world.upload("incoming/picture.csv", png))
    job = world.jobs.get(result.job_id)
    assert (job.status, job.rows) == (JobStatus.FAILED, 0)
    assert job.failure_reason.startswith("the file is not text")


def test_a_windows_1252_file_whose_first_accent_is_past_its_first_bytes_is_read_whole_with_names_right(world):
    # Given a file that is ASCII for its first 64 KiB (so it is read as UTF-8), then Windows-1252
    ascii_rows = "".join(f"N{i}, c{i}@example.com\n" for i in range(4_000))
    data = ascii_rows.encode() + "José Núñez, jose@example.com\nZoë, zoe@example.com\n".encode("cp1252")
    assert len(ascii_rows) > 64 * 1024
    result = world.importer.import_upload(world.upload("incoming/mixed.csv", data))
    # Then every row is read, the accented names right, and the job says what was decided where
    assert world.uploads.archived == [("incoming/mixed.csv", False)]
    job = world.jobs.get(result.job_id)
    assert (job.status, job.rows, job.enqueued, job.failure_reason) == (JobStatus.SENDING, 4_002, 4_002, "")
    assert [d.name for b in world.queue.batches for d in b.deliveries][-2:] == ["José Núñez", "Zoë"]
    assert job.read_as.startswith("Windows-1252 (ASCII up to line 4001, then not UTF-8; ")


def test_one_bad_byte_in_a_utf8_file_costs_its_row_and_every_other_name_is_read_right(world):
    # Given a UTF-8 file of accented names with one Windows-1252 byte in one row
    data = "Name,Email\nZoë Café,zoe@example.com\nRené,rene@example.com\n".encode() + \
        "Jos\xe9,jose@example.com\n".encode("latin-1") + "Åsa,asa@example.com\n".encode()
    result = world.importer.import_upload(world.upload("incoming/one-bad-byte.csv", data))
    # Then that row alone is rejected, with its line and text, and the others keep their names
    job = world.jobs.get(result.job_id)
    assert [d.name for b in world.queue.batches for d in b.deliveries] == ["Zoë Café", "René", "Åsa"]
    (reject,) = world.uploads.rejects["rejects/one-bad-byte.csv"]
    assert (reject.row, reject.raw) == (4, "Jos\ufffd,jose@example.com")
    assert reject.reason == "not UTF-8 text (byte 0xE9 at position 4); the rest of the file is UTF-8"
    assert (job.rows, job.invalid, job.enqueued) == (4, 1, 3) and job.read_as.startswith(
        "UTF-8 (4 UTF-8 characters and 1 byte(s) that are not UTF-8, whose lines are rejected)")


def test_a_line_over_the_limit_is_an_invalid_row_and_the_rows_after_it_keep_their_numbers(world):
    # Given a limit of 1,024 bytes and a 100,000-byte line as the second of three rows
    world.importer.max_line_bytes = 1_024
    text = "Ann, ann@example.com\n" + "Bob, " + "b" * 100_000 + "@example.com\n" + "Cy, cy@example.com\n"
    result = world.importer.import_upload(world.upload("incoming/long.csv", text))
    # Then it is counted, invalid with the reason, and the third row is still row 3
    job = world.jobs.get(result.job_id)
    assert (job.rows, job.invalid, job.enqueued, job.status) == (3, 1, 2, JobStatus.SENDING)
    assert job.invalid_reasons == {OVERLONG_REASON: 1}
    assert [r.row for r in world.uploads.rejects["rejects/long.csv"]] == [2]
    assert world.queue.rows() == [1, 3]


def test_a_file_over_the_size_limit_fails_before_anything_is_read_or_sent(world):
    # Given a limit of 1,000 bytes and an upload of 2,100
    world.importer.max_file_bytes = 1_000
    text = "".join(f"N{i}, c{i}@example.com\n" for i in range(100))
    world.uploads.put("incoming/big.csv", text)
    upload = Upload(bucket="b", key="incoming/big.csv", etag="e", size=len(text))
    result = world.importer.import_upload(upload)
    # Then its job FAILS, naming the limit and the parameter, with nothing read or enqueued
    job = world.jobs.get(result.job_id)
    assert (job.status, job.rows, world.queue.batches) == (JobStatus.FAILED, 0, [])
    assert "more than the 1,000 allowed (MaxFileBytes)" in job.failure_reason
    assert world.uploads.archived == [("incoming/big.csv", True)]


def test_a_file_over_the_row_limit_imports_its_first_rows_and_fails_saying_so(world):
    # Given a limit of 700 rows and a file of 1,200, read in segments of 500 rows
    world.importer.max_rows = 700
    text = "".join(f"N{i}, c{i}@example.com\n" for i in range(1_200))
    first = world.importer.import_upload(world.upload("incoming/long.csv", text), should_stop=lambda: True)
    results = [first, *world.run_continuations(should_stop=lambda: True)]
    # Then the second segment stops at the limit: exactly the first 700 rows are counted and enqueued, and the
    # job FAILS saying what was imported
    assert [r.continued for r in results] == [True, False]
    job = world.jobs.get(first.job_id)
    assert (job.status, job.rows, job.enqueued) == (JobStatus.FAILED, 700, 700)
    assert world.queue.rows() == list(range(1, 701))
    assert "more than 700 rows (MaxRowsPerFile): its first 700 rows were imported" in job.failure_reason


def test_a_200_megabyte_file_without_a_newline_is_one_invalid_row_in_flat_memory():
    # Given an upload of 200 MB of one line, streamed (never held), imported in a process of its own
    script = """
import io
from common.domain.jobs import Upload
from common.domain.parsing import Importer, OpenedObject
from tests.fakes import MemoryJobs
from tests.unit.conftest import MemoryContinuations, MemoryUploads
from tests.unit.test_parsing import CollectingQueue

class Endless(io.RawIOBase):
    left = 200 * 1024 * 1024
    def readable(self):
        return True
    def readinto(self, buffer):
        size = min(len(buffer), self.left)
        buffer[:size] = b"a" * size
        self.left -= size
        return size

class OneBigUpload(MemoryUploads):
    def open(self, upload, offset=0, if_match=""):
        return OpenedObject(stream=io.BufferedReader(Endless(), 1024 * 1024), etag="e")

jobs = MemoryJobs()
result = Importer(jobs, CollectingQueue(), OneBigUpload(), MemoryContinuations()).import_upload(
    Upload(bucket="b", key="incoming/endless.csv", etag="e"))
job = jobs.get(result.job_id)
# VmHWM: this process's peak resident memory (getrusage's maxrss would include the forking parent's)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(job.rows, job.invalid, job.status.value, peak_kb // 1024)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr[-2000:]
    rows, invalid, status, peak_mb = run.stdout.split()
    # Then the job has its one row, invalid, and the process never came near the file's size
    assert (rows, invalid, status) == ("1", "1", "SUCCEEDED")  # nothing to send
    assert int(peak_mb) < 200


def big_file(rows: int) -> str:
    """A header with the columns swapped, a quoted name spanning two lines, CRLF endings, bad rows."""
    lines = ["email,name\n"]
    for i in range(1, rows + 1):
        if i % 97 == 0:
            lines.append("not-an-email,Bad\n")
        elif i % 250 == 0:
            lines.append(f'c{i}@example.com,"Two\nLines"\n')
        else:
            lines.append(f"c{i}@example.com,Name {i}\r\n")
    return "".join(lines)


def test_a_semicolon_file_read_in_segments_keeps_its_delimiter_and_header(world):
    # Given a semicolon, Windows-1252 export with Excel's sep= line, long enough for several segments
    rows = 1_200
    text = "sep=;\nFirst Name;Last Name;E-mail\n"
    text += "".join(f"Zoë;Ölund {i};zoe{i}@example.com\n" for i in range(rows))
    upload = world.upload("incoming/export.csv", text.encode("cp1252"))
    # When it is imported, a segment per 500 rows
    first = world.importer.import_upload(upload, should_stop=lambda: True)
    later = world.run_continuations()
    # Then every segment read it with the same delimiter and columns: every row is a contact, named whole
    assert first.continued and len(later) == 2
    job = world.jobs.get(first.job_id)
    assert (job.rows, job.invalid, job.enqueued) == (rows, 0, rows)
    names = [d.name for b in world.queue.batches for d in b.deliveries]
    assert names[0] == "Zoë Ölund 0" and names[-1] == f"Zoë Ölund {rows - 1}" and len(set(names)) == rows
    assert [d.row for b in world.queue.batches for d in b.deliveries][:2] == [3, 4]
    assert job.read_as.startswith("Windows-1252 (not UTF-8; ")
    assert job.read_as.endswith("; delimiter semicolon; email from 'E-mail', name from 'First Name' + 'Last Name'")


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_a_file_in_another_encoding_read_in_segments_keeps_it_and_every_row_once(world, encoding):
    # Given a tab-separated UTF-16 file, or a Windows-1252 one, long enough for several segments
    rows = 1_200
    text = "Name\tEmail\r\n" + "".join(f"Zoë Ölund {i}\tzoe{i}@example.com\r\n" for i in range(rows))
    upload = world.upload("incoming/unicode.txt.csv", text.encode(encoding))
    # When it is imported, a segment per 500 rows, each later one starting at a byte of the file
    first = world.importer.import_upload(upload, should_stop=lambda: True)
    later = world.run_continuations()
    # Then every row was read once, in order, with its name right
    assert first.continued and len(later) == 2
    job = world.jobs.get(first.job_id)
    assert (job.rows, job.invalid, job.enqueued) == (rows, 0, rows)
    names = [d.name for b in world.queue.batches for d in b.deliveries]
    assert names == [f"Zoë Ölund {i}" for i in range(rows)]


def test_a_file_read_in_segments_counts_and_enqueues_every_row_exactly_once(world):
    # Given a 4,000-row file and an invocation whose deadline is near at every look at the clock
    rows = 4_000
    upload = world.upload("incoming/big.csv", "\ufeff" + big_file(rows))
    # When the upload is imported and every requested continuation runs
    first = world.importer.import_upload(upload, should_stop=lambda: True)
    later = world.run_continuations()
    # Then it took several segments, each going on at a later byte
    segments = [first, *later]
    assert first.continued and len(segments) == -(-rows // ROWS_BETWEEN_DEADLINE_CHECKS) + 1
    assert world.uploads.opened_at == sorted(set(world.uploads.opened_at))
    # And every row was counted once, and no row enqueued twice or skipped
    job = world.jobs.get(first.job_id)
    enqueued = world.queue.rows()
    assert len(enqueued) == len(set(enqueued)) == job.enqueued
    assert (job.status, job.rows) == (JobStatus.SENDING, rows)
    assert job.rows == job.invalid + job.duplicate + job.enqueued
    assert job.invalid == rows // 97
    # And a row's number is the file line its record starts on (header: line 1; a two-line record takes two)
    expected_line, line = {}, 1
    for i in range(1, rows + 1):
        expected_line[i] = line + 1
        line += 2 if i % 250 == 0 and i % 97 else 1
    assert set(enqueued) == {expected_line[i] for i in range(1, rows + 1) if i % 97}
    names = {d.row: d.name for b in world.queue.batches for d in b.deliveries}
    assert all(names[expected_line[i]] == "Two Lines" for i in range(250, rows + 1, 250))
    # And the rejects of all segments were joined into one file, in row order
    rejected = [r.row for r in world.uploads.rejects["rejects/big.csv"]]
    assert rejected == sorted(rejected) and len(rejected) == job.invalid
    assert list(world.uploads.rejects) == ["rejects/big.csv"]
    assert world.uploads.archived == [("incoming/big.csv", False)]


def test_a_repeated_request_for_a_segment_reads_nothing_but_makes_sure_the_next_one_was_asked_for(world):
    # Given a file whose first segment checkpointed, but whose invocation stopped before asking for the next
    upload = world.upload("incoming/c.csv", big_file(1_200))
    world.importer.import_upload(upload, should_stop=lambda: True)
    world.continuations.requested.clear()
    world.jobs.mark_continued(upload.job_id, 0)
    enqueued_before = len(world.queue.batches)
    # When the S3 event is delivered again
    again = world.importer.import_upload(upload, should_stop=lambda: True)
    # Then nothing is read again, and segment 1 is requested once
    assert again.skipped and len(world.queue.batches) == enqueued_before
    assert world.continuations.requested == [(upload.job_id, 1)]
    # And a second repeat does not ask again
    world.importer.import_upload(upload, should_stop=lambda: True)
    assert world.continuations.requested == [(upload.job_id, 1)]
    world.run_continuations()
    job = world.jobs.get(upload.job_id)
    assert (job.rows, len(world.queue.rows())) == (1_200, job.enqueued)


def test_a_segment_that_dies_midway_is_read_again_from_its_checkpoint_with_the_same_tokens(world):
    # Given a segment that dies after enqueueing some of its batches
    upload = world.upload("incoming/d.csv", "".join(f"N{i},p{i}@example.com\n" for i in range(3_000)))
    world.importer.import_upload(upload, should_stop=lambda: True)
    world.queue.fail_after = len(world.queue.batches) + 2
    job_id, segment = world.continuations.requested.pop(0)
    with pytest.raises(ConnectionError):
        world.importer.continue_import(job_id, segment, lambda: True)
    # When SQS delivers the same request again, and the rest runs
    world.continuations.requested.insert(0, (job_id, segment))
    world.run_continuations()
    # Then rows were enqueued again only where the dead invocation had, with the same claim tokens
    rows = world.queue.rows()
    assert sorted(set(rows)) == list(range(1, 3_001))
    repeated = sorted({r for r in rows if rows.count(r) > 1})
    assert len(repeated) == 2 * MAX_CONTACTS_PER_MESSAGE  # the two messages enqueued before it died
    assert {claim_token(job_id, r) for r in repeated} <= {claim_token(job_id, r) for r in range(1, 3_001)}
    # And the job counts each row once
    job = world.jobs.get(job_id)
    assert (job.rows, job.enqueued, job.status) == (3_000, 3_000, JobStatus.SENDING)


def test_a_file_replaced_or_deleted_between_segments_fails_its_job_keeping_what_was_read(world):
    upload = world.upload("incoming/e.csv", "".join(f"N{i},q{i}@example.com\n" for i in range(1_000)))
    world.importer.import_upload(upload, should_stop=lambda: True)
    del world.uploads.objects["incoming/e.csv"]
    world.run_continuations()
    job = world.jobs.get(upload.job_id)
    assert (job.status, job.rows, job.enqueued) == (JobStatus.FAILED, ROWS_BETWEEN_DEADLINE_CHECKS,
                                                    ROWS_BETWEEN_DEADLINE_CHECKS)
    assert "could not be read to its end" in job.failure_reason


def test_a_file_replaced_between_segments_is_not_read_on_from_the_new_content(world):
    upload = world.upload("incoming/f.csv", "".join(f"N{i},r{i}@example.com\n" for i in range(1_000)))
    world.importer.import_upload(upload, should_stop=lambda: True)
    world.uploads.put("incoming/f.csv", "Someone Else,other@example.com\n" * 1_000)
    world.run_continuations()
    job = world.jobs.get(upload.job_id)
    assert (job.status, job.rows) == (JobStatus.FAILED, ROWS_BETWEEN_DEADLINE_CHECKS)
    assert "replaced" in job.failure_reason
    assert {d.email for b in world.queue.batches for d in b.deliveries} == {f"r{i}@example.com" for i in range(500)}


def test_a_repeated_request_after_the_last_segment_only_makes_sure_the_file_was_archived(world):
    # Given a file whose last segment finished the job but died before archiving the object
    upload = world.upload("incoming/g.csv", "".join(f"N{i},s{i}@example.com\n" for i in range(700)))
    world.importer.import_upload(upload, should_stop=lambda: True)
    (job_id, segment), = world.continuations.requested
    archive = world.uploads.archive
    world.uploads.archive = lambda upload, failed: (_ for _ in ()).throw(TimeoutError("killed"))
    with pytest.raises(TimeoutError):
        world.run_continuations()
    world.uploads.archive = archive
    # When SQS delivers that segment's request again
    again = world.importer.continue_import(job_id, segment, lambda: True)
    # Then nothing is read again, and the object is archived
    assert again.skipped == "the job is parsed" and again.archived_key == "processed/g.csv"
    assert world.jobs.get(job_id).rows == 700 and len(world.queue.rows()) == 700
