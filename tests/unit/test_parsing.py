"""Importing a file: every row counted once, contacts enqueued in batches, bad files failed clearly."""

import io

import boto3
import pytest

from common.jobs import DynamoJobs, JobStatus, Upload
from common.parsing import import_upload
from tests.unit.conftest import MemoryArchive


class CollectingQueue:
    def __init__(self):
        self.batches = []

    def send(self, batches):
        self.batches.extend(batches)
        return len(self.batches)


@pytest.fixture
def jobs(aws) -> DynamoJobs:
    return DynamoJobs(aws.outputs["JobsTableName"], client=boto3.client("dynamodb"))


def test_every_row_is_counted_once_and_contacts_are_enqueued_in_order(jobs):
    text = "".join(f"N{i}, c{i % 150}@example.com\n" for i in range(250)) + "bad row\n"
    queue, archive = CollectingQueue(), MemoryArchive()
    result = import_upload(Upload(bucket="b", key="incoming/a.csv", etag="e"), io.StringIO(text), jobs, queue,
                           archive)
    tally = result.tally
    assert (tally.rows, tally.invalid, tally.duplicate, tally.enqueued) == (251, 1, 100, 150)
    assert [len(b.deliveries) for b in queue.batches] == [100, 50]
    job = jobs.get(result.job_id)
    assert (job.status, job.rows, job.invalid, job.duplicate) == (JobStatus.SENDING, 251, 1, 100)
    assert job.invalid_reasons == {"too few columns (1, expected at least 2)": 1}
    assert [r.row for r in archive.rejects["rejects/a.csv"]] == [251]
    assert (job.rejects_key, result.archived_key) == ("rejects/a.csv", "processed/a.csv")


def test_a_file_that_is_not_utf8_fails_its_job_with_a_clear_reason(jobs):
    latin1 = "José Núñez, jose@example.com\n".encode("latin-1")
    lines = io.TextIOWrapper(io.BytesIO(latin1), encoding="utf-8-sig", newline="")
    archive = MemoryArchive()
    result = import_upload(Upload(bucket="b", key="incoming/latin1.csv", etag="e"), lines, jobs, CollectingQueue(),
                           archive)
    assert archive.archived == [("incoming/latin1.csv", True)]
    job = jobs.get(result.job_id)
    assert (job.status, job.rows) == (JobStatus.FAILED, 0)
    assert "not UTF-8" in job.failure_reason
