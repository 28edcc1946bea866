"""What parse_csv answers for each invocation (its response and log line are the ImportResult) and what the job
records, in every path: a new file, a repeated event, a file over a limit, segments, repeats and skips."""

from __future__ import annotations

import pytest

from common.domain.encodings import EncodingDecision
from common.domain.jobs import ParseTally, Upload
from common.domain.parsing import Importer, ImportResult, read_as
from tests.fakes import MemoryJobs
from tests.unit.test_parsing import World


@pytest.fixture
def world() -> World:
    return World(MemoryJobs())


def test_a_new_file_answers_with_its_tally_rejects_and_archive(world):
    upload = world.upload("incoming/a.csv", "Ann, ann@example.com\nnot a row\n")
    result = world.importer.import_upload(upload)
    tally = ParseTally(rows=2, invalid=1, enqueued=1, invalid_reasons={"too few columns (1, expected at least 2)": 1})
    assert result == ImportResult(job_id=upload.job_id, tally=tally, segment=0, rejects_key="rejects/a.csv",
                                  archived_key="processed/a.csv")
    job = world.jobs.get(upload.job_id)
    assert (job.rejects_key, job.read_as) == (
        "rejects/a.csv", "UTF-8 (ASCII so far); no header: the seed's columns (name, email, phone, street, city, "
                         "state, zip)")


def test_a_repeated_event_answers_already_imported_and_archives_again(world):
    upload = world.upload("incoming/a.csv", "Ann, ann@example.com\n")
    world.importer.import_upload(upload)
    world.uploads.put("incoming/a.csv", "Ann, ann@example.com\n")  # the archive step had not happened
    result = world.importer.import_upload(upload)
    assert result == ImportResult(job_id=upload.job_id, tally=ParseTally(), already_imported=True,
                                  archived_key="processed/a.csv")
    assert world.uploads.archived[-1] == ("incoming/a.csv", False)


@pytest.mark.parametrize(("size", "fails"), [(100, False), (101, True)])
def test_a_file_fails_only_when_it_is_larger_than_the_limit(world, size, fails):
    world.importer.max_file_bytes = 100
    world.uploads.put("incoming/a.csv", "Ann, ann@example.com\n")
    upload = Upload(bucket="b", key="incoming/a.csv", etag="e", size=size)
    result = world.importer.import_upload(upload)
    assert bool(result.failure_reason) is fails
    if fails:
        assert world.jobs.get(upload.job_id).read_as == ""  # nothing was read
        assert result == ImportResult(
            job_id=upload.job_id, tally=ParseTally(), segment=0, archived_key="failed/a.csv",
            failure_reason="the file has 101 bytes, more than the 100 allowed (MaxFileBytes): nothing was read or "
                           "sent; split it, or raise MaxFileBytes")


def test_without_a_size_limit_any_size_is_read(world):
    world.uploads.put("incoming/a.csv", "Ann, ann@example.com\n")
    result = world.importer.import_upload(Upload(bucket="b", key="incoming/a.csv", etag="e", size=10**12))
    assert result.tally.enqueued == 1 and not result.failure_reason


def test_a_continuation_for_a_job_that_does_not_exist_says_so(world):
    assert world.importer.continue_import("no-such-job", 3) == ImportResult(
        job_id="no-such-job", tally=ParseTally(), segment=3, skipped="no such job")


def test_a_continuation_after_the_last_segment_says_the_job_is_parsed_and_archives_it(world):
    upload = world.upload("incoming/a.csv", "Ann, ann@example.com\n")
    world.importer.import_upload(upload)
    assert world.importer.continue_import(upload.job_id, 1) == ImportResult(
        job_id=upload.job_id, tally=ParseTally(), segment=1, skipped="the job is parsed",
        archived_key="processed/a.csv")
    assert world.uploads.archived[-1] == ("incoming/a.csv", False)


def test_a_continuation_after_a_failed_job_archives_it_as_failed(world):
    upload = world.upload("incoming/a.csv", b"\x89PNG\r\n\x1a\n\x00")
    world.importer.import_upload(upload)
    world.importer.continue_import(upload.job_id, 1)
    assert world.uploads.archived[-1] == ("incoming/a.csv", True)


def file_of(rows: int) -> str:
    return "".join(f"N{i}, c{i}@example.com\n" for i in range(rows))


def test_segments_answer_where_they_stopped_and_repeats_say_what_was_skipped(world):
    # Given a file read in segments (every invocation is told to stop at its first check)
    from common.domain.parsing import ROWS_BETWEEN_DEADLINE_CHECKS

    upload = world.upload("incoming/a.csv", file_of(ROWS_BETWEEN_DEADLINE_CHECKS * 2 + 5))
    first = world.importer.import_upload(upload, should_stop=lambda: True)
    assert (first.job_id, first.segment, first.continued, first.tally.rows) == (
        upload.job_id, 0, True, ROWS_BETWEEN_DEADLINE_CHECKS)
    # When segment 1 runs, then segment 0's request is repeated
    second = world.importer.continue_import(upload.job_id, 1, should_stop=lambda: True)
    assert (second.segment, second.continued, second.tally.rows) == (1, True, ROWS_BETWEEN_DEADLINE_CHECKS * 2)
    world.continuations.requested.clear()
    repeat = world.importer.continue_import(upload.job_id, 0)
    # Then the repeat reads nothing and says why
    assert repeat == ImportResult(job_id=upload.job_id, tally=ParseTally(), segment=0,
                                  skipped="segment 0 was already read; the job is at segment 2")
    # And a request for the segment the job is at, but not yet run, is not a repeat: nothing is asked again
    assert world.continuations.requested == []
    assert world.importer.continue_import(upload.job_id, 1) == ImportResult(
        job_id=upload.job_id, tally=ParseTally(), segment=1,
        skipped="segment 1 was already read; the job is at segment 2")
    last = world.importer.continue_import(upload.job_id, 2)
    assert (last.segment, last.continued, last.failure_reason, last.archived_key) == (2, False, "", "processed/a.csv")


def test_a_file_gone_between_segments_fails_with_the_rejects_of_the_segment_that_found_out(world):
    from common.domain.parsing import ROWS_BETWEEN_DEADLINE_CHECKS

    upload = world.upload("incoming/a.csv", "bad row\n" + file_of(ROWS_BETWEEN_DEADLINE_CHECKS + 5))
    world.importer.import_upload(upload, should_stop=lambda: True)
    world.uploads.objects.clear()
    result = world.importer.continue_import(upload.job_id, 1)
    assert result.failure_reason == "the file could not be read to its end: incoming/a.csv no longer exists"
    assert (result.segment, result.rejects_key) == (1, "rejects/a.csv")
    assert result.tally.invalid == 1


def test_every_invalid_row_is_reported_to_the_handler_as_it_is_found(world):
    seen = []
    world.importer.on_invalid = seen.append
    world.importer.import_upload(world.upload("incoming/a.csv", "Ann, ann@example.com\nbroken\n"))
    assert [(row.row, row.reason) for row in seen] == [(2, "too few columns (1, expected at least 2)")]


def test_the_line_limit_reaches_the_reader(world):
    world.importer.max_line_bytes = 64
    world.importer.import_upload(world.upload("incoming/a.csv", "A" * 100 + ", a@example.com\nBob, b@example.com\n"))
    job = world.jobs.get(Upload(bucket="b", key="incoming/a.csv", etag="e").job_id)
    assert (job.invalid, job.enqueued) == (1, 1)


def test_how_a_file_was_read_names_its_encoding_and_why():
    assert read_as(EncodingDecision("windows-1252", "not UTF-8"), None) == "Windows-1252 (not UTF-8)"
    assert read_as(EncodingDecision("koi8-r", "koi8-r"), None) == "koi8-r"  # not one we name: as Python calls it
    assert read_as(None, None) == ""


def test_an_importer_without_limits_reads_every_row():
    world = World(MemoryJobs())
    world.importer = Importer(world.jobs, world.queue, world.uploads, world.continuations)
    result = world.importer.import_upload(world.upload("incoming/a.csv", file_of(3)))
    assert (result.tally.rows, result.tally.enqueued, result.failure_reason) == (3, 3, "")


def test_a_checkpoint_written_before_encodings_were_recorded_goes_on_in_utf8(world):
    # Given a job whose first segment was read before checkpoints recorded the encoding (UTF-8 was the only
    # one then), and whose rest is not UTF-8
    from common.domain.jobs import Checkpoint

    head = b"Ann, ann@example.com\n"
    upload = world.upload("incoming/a.csv", head + "Zoë, zoe@example.com\n".encode("windows-1252"))
    state = world.jobs.begin(upload, content_etag=str(hash(world.uploads.objects["incoming/a.csv"])))
    world.jobs.save_checkpoint(upload.job_id, Checkpoint(segment=1, offset=len(head), line=1, encoding="",
                                                         tally=ParseTally(rows=1, enqueued=1)))
    assert state is not None
    # When the next segment runs, Then it reads UTF-8, as the first did: the row that is not is rejected, saying so
    result = world.importer.continue_import(upload.job_id, 1)
    assert (result.failure_reason, result.tally.invalid) == ("", 1)
    assert result.tally.invalid_reasons == {
        "not UTF-8 text (byte 0xEB at position 3); the rest of the file is UTF-8": 1}
    assert world.jobs.get(upload.job_id).read_as.startswith(
        "UTF-8 (as every file was read before encodings were told)")


@pytest.mark.parametrize(("key", "says"), [
    ("incoming/v1.2/contacts.tar.gz", "'gz' files are not read"),
    ("incoming/v1.2/contacts", "files without a .csv, .txt or .tsv ending are not read"),
])
def test_an_object_that_is_not_read_fails_its_job_saying_exactly_why(world, key, says):
    result = world.importer.import_upload(world.upload(key, b"Ann, ann@example.com\n"))
    assert result.failure_reason == (f"{says}: only .csv, .txt and .tsv files are (a spreadsheet: save it as CSV "
                                     "UTF-8 and upload that)")
    assert (result.tally, world.jobs.get(result.job_id).read_as) == (ParseTally(), "")


def test_a_file_held_for_its_columns_answers_with_why_and_is_no_failure(world):
    from common.domain.columns import Unsure

    result = world.importer.import_upload(world.upload("incoming/held.csv", "ann@example.com,Ann\n"))
    job = world.jobs.get(result.job_id)
    assert isinstance(result.unsure, Unsure) and result.unsure == job.needs_mapping
    assert (result.failure_reason, job.failure_reason, result.tally) == ("", "", ParseTally())
    assert (job.read_as, result.archived_key) == ("UTF-8 (ASCII so far)", "failed/held.csv")


def test_addresses_not_emailed_from_a_cell_of_several_are_noted_in_the_job(world):
    from common.domain.parsing import SEVERAL_ADDRESSES_NOTE

    result = world.importer.import_upload(world.upload("incoming/g.csv", "Name,Email\nAnn,a@example.com ::: "
                                                                         "b@example.com ::: c@example.com\n"))
    assert world.jobs.get(result.job_id).notes == {SEVERAL_ADDRESSES_NOTE: 2}
    assert result.tally.notes == {SEVERAL_ADDRESSES_NOTE: 2}


def test_how_a_file_was_read_without_a_reason_is_its_encoding_alone():
    assert read_as(EncodingDecision("utf-8", ""), None) == "UTF-8"


def test_later_segments_keep_what_the_first_learned_of_the_encoding(world):
    # Given a UTF-8 file with accented names in its first segment and a Windows-1252 byte in a later one
    rows = "".join(f"Zoë {i}, z{i}@example.com\n" for i in range(4_000)).encode()
    data = rows + "Jos\xe9, jose@example.com\n".encode("latin-1") + b"Bob, bob@example.com\n"
    assert len(rows) > 64 * 1024  # past what the first segment tells the encoding from
    world.importer.import_upload(world.upload("incoming/u.csv", data), should_stop=lambda: True)
    results = world.run_continuations(should_stop=lambda: True)
    # Then the bad line is rejected where it is (not read as Windows-1252), and the job says UTF-8
    job = world.jobs.get(results[-1].job_id)
    assert (job.rows, job.invalid, job.enqueued) == (4_002, 1, 4_001)
    assert job.invalid_reasons == {"not UTF-8 text (byte 0xE9 at position 4); the rest of the file is UTF-8": 1}
    assert job.read_as.startswith("UTF-8 (its bytes are UTF-8)")


def test_a_later_segment_that_turns_out_single_byte_says_at_which_line_of_the_file(world):
    rows = "".join(f"N{i}, n{i}@example.com\n" for i in range(4_000)).encode()
    data = rows + "José, jose@example.com\n".encode("cp1252")
    assert len(rows) > 64 * 1024
    world.importer.import_upload(world.upload("incoming/s.csv", data), should_stop=lambda: True)
    results = world.run_continuations(should_stop=lambda: True)
    job = world.jobs.get(results[-1].job_id)
    assert job.read_as.startswith("Windows-1252 (ASCII up to line 4001, then not UTF-8")
    assert [d.name for b in world.queue.batches for d in b.deliveries][-1] == "José"
