"""Files as real products export them (tests/data/exports, written from each product's documented format), each
read exactly as it will be sent: the greeting every address gets, or the file held unsent and why.

A misread is permanent (each address gets one email, ever): a greeting here is the email's own first line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.domain.jobs import JobStatus, Upload
from common.domain.welcome import render_welcome
from tests.fakes import MemoryJobs
from tests.unit.test_parsing import World

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
EXPECTED = json.loads((EXPORTS / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_real_export_is_read_as_its_people_expect_or_held_saying_why(name):
    expected = EXPECTED[name]
    world = World(MemoryJobs())
    # When the file is uploaded as it was exported
    result = world.importer.import_upload(world.upload(f"incoming/{name}", (EXPORTS / name).read_bytes()))
    job = world.jobs.get(result.job_id)
    greetings = {d.email: render_welcome(d.name).text for b in world.queue.batches for d in b.deliveries}
    # Then every address gets the greeting its row means, and no other; or nothing is sent, and the job says why
    assert job.status.value == expected["status"], (job.failure_reason, job.needs_mapping, job.read_as)
    assert greetings == expected["greetings"]
    assert job.invalid == expected.get("invalid", 0), world.uploads.rejects
    assert sum(job.notes.values()) == expected.get("notes", 0)
    assert expected.get("read_as", "") in job.read_as
    if job.status is JobStatus.NEEDS_MAPPING:
        assert job.needs_mapping is not None and expected["reason"] in job.needs_mapping.reason
        assert job.needs_mapping.columns and job.needs_mapping.first_rows  # what a person needs to decide
        assert world.uploads.archived == [(f"incoming/{name}", True)]


def test_every_export_in_the_corpus_is_checked():
    files = {path.name for path in EXPORTS.iterdir() if path.name != "expected.json"}
    assert files == set(EXPECTED)


def test_a_held_file_uploaded_again_with_its_columns_said_is_sent_as_said():
    # Given a file without a header whose second column may or may not be names: held, nothing sent
    world = World(MemoryJobs())
    data = (EXPORTS / "email-name-no-header.csv").read_bytes()
    held = world.importer.import_upload(world.upload("incoming/people.csv", data))
    job = world.jobs.get(held.job_id)
    assert (job.status, world.queue.batches) == (JobStatus.NEEDS_MAPPING, [])
    assert job.needs_mapping.columns == ("column 1", "column 2")
    assert job.needs_mapping.first_rows[0] == ("ann@example.com", "Ann Lee")
    # When the same file is uploaded again, saying which column is which (x-amz-meta-email-column, -name-columns)
    world.uploads.put("incoming/people.csv", data, metadata={"email-column": "1", "name-columns": "2"})
    again = world.importer.import_upload(Upload(bucket="b", key="incoming/people.csv", etag="e"))
    # Then the same job is read again, as said, and greets each by name
    job = world.jobs.get(again.job_id)
    assert again.job_id == held.job_id and job.status is JobStatus.SENDING
    assert [(d.email, d.name) for b in world.queue.batches for d in b.deliveries] == [
        ("ann@example.com", "Ann Lee"), ("bob@example.com", "Bob Smith")]
    assert job.read_as.endswith("as said on the upload (email-column=1, name-columns=2): no header; email from "
                                "column 1, name from column 2")


@pytest.mark.parametrize(("metadata", "names"), [
    ({"Email-Column": "2", "Name-Columns": "none"}, ["", ""]),
    ({"email-column": "2"}, ["", ""]),  # no name column said, none labelled: the fallback
])
def test_a_mapping_picks_one_of_two_address_columns(metadata, names):
    world = World(MemoryJobs())
    world.uploads.put("incoming/two.csv", (EXPORTS / "two-address-columns.csv").read_bytes(), metadata=metadata)
    world.importer.import_upload(Upload(bucket="b", key="incoming/two.csv", etag="e"))
    assert [(d.email, d.name) for b in world.queue.batches for d in b.deliveries] == [
        ("ann.work@example.com", names[0]), ("bob.work@example.com", names[1])]


@pytest.mark.parametrize(("metadata", "says"), [
    ({"email-column": "Mail"}, "names a column 'Mail', which its header does not have"),
    ({"email-column": "9"}, "names column 9, and the file has 4"),
    ({"email-column": "Email", "name-columns": "Nickname"}, "names a column 'Nickname', which its header does not"),
])
def test_a_mapping_that_names_a_column_the_file_lacks_holds_the_file_saying_so(metadata, says):
    world = World(MemoryJobs())
    world.uploads.put("incoming/h.csv", "Name,Email,Phone,City\nAnn,ann@example.com,555,Austin\n", metadata=metadata)
    result = world.importer.import_upload(Upload(bucket="b", key="incoming/h.csv", etag="e"))
    job = world.jobs.get(result.job_id)
    assert job.status is JobStatus.NEEDS_MAPPING and says in job.needs_mapping.reason
    assert job.needs_mapping.columns == ("Name", "Email", "Phone", "City") and world.queue.batches == []


@pytest.mark.parametrize("key", ["incoming/Contacts.Csv", "incoming/CONTACTS.CSV", "incoming/export.txt",
                                 "incoming/export.tsv"])
def test_csv_txt_and_tsv_files_are_read_whatever_the_case_of_their_ending(key):
    world = World(MemoryJobs())
    result = world.importer.import_upload(world.upload(key, "Name\tEmail\nAnn\tann@example.com\n"))
    assert world.jobs.get(result.job_id).status is JobStatus.SENDING


@pytest.mark.parametrize(("key", "says"), [
    ("incoming/contacts.xlsx", "'xlsx' files are not read: only .csv, .txt and .tsv files are"),
    ("incoming/contacts", "files without a .csv, .txt or .tsv ending are not read"),
])
def test_any_other_object_dropped_into_incoming_is_a_failed_job_that_says_why(key, says):
    world = World(MemoryJobs())
    result = world.importer.import_upload(world.upload(key, b"PK\x03\x04 a spreadsheet"))
    job = world.jobs.get(result.job_id)
    assert (job.status, job.rows) == (JobStatus.FAILED, 0) and job.failure_reason.startswith(says)
    assert world.uploads.archived == [(key, True)]


def test_fifty_thousand_rows_with_one_stray_quote_lose_that_row_only():
    # Given 50,002 rows in the seed's format, one of them starting with a quote that never closes (it swallowed
    # 3,251 rows into one field over the csv module's limit before)
    rows = [f"Person {i}, p{i}@example.com, 555-{i:05d}, {i} Main St, Austin, TX, 73301\n" for i in range(50_002)]
    rows[20_000] = '"Carl, Jr, carl@example.com, 555-20000, 1 Main St, Austin, TX, 73301\n'
    world = World(MemoryJobs())
    result = world.importer.import_upload(world.upload("incoming/big.csv", "".join(rows)))
    # Then that record is one invalid row, at its own line, and the other 50,001 are read
    job = world.jobs.get(result.job_id)
    assert (job.rows, job.invalid, job.enqueued) == (50_002, 1, 50_001)
    (broken,) = world.uploads.rejects["rejects/big.csv"]
    assert broken.row == 20_001 and broken.raw.startswith('"Carl, Jr')
