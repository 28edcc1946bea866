"""A file too big for one parse invocation: read in segments through the continuations queue,
each row counted once, the job settles, nobody emailed twice."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest

from bench.chaos import settle_patience
from localcloud.cloud import LocalCloud
from localcloud.config import CloudSettings
from tests.e2e.conftest import FAST, start_emulator

pytestmark = [pytest.mark.e2e,
              pytest.mark.embedded_cloud("a stack of its own on an emulator of its own, with a 2-second parse timeout")]
ROWS = 400_000
DISTINCT = 1_500
INVALID_EVERY = 10_007
SETTLE_CAP_SECONDS = 2400  # bounds a busy machine's run; stillness is bounded by patience()


@pytest.fixture
def short_parse_cloud(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path / "state"))
    emulator = start_emulator(tmp_path)
    # Lambda's timeout for parse_csv cut to 2 s (its minimum): each invocation reads what it can, then hands over.
    cloud = LocalCloud(CloudSettings.load(endpoint=emulator.endpoint,
                                          overrides={**FAST, "ParseTimeoutSeconds": "2"})).start()
    yield cloud
    cloud.close()
    emulator.stop()


def patience(cloud: LocalCloud) -> float:
    """How long nothing may move while the pipeline still works: a segment that timed out is handed out again
    after the continuations queue's visibility timeout; the sends' own stillness as chaos counts it."""
    continuations = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.deployed.output("ParseContinuationsQueueUrl"), AttributeNames=["VisibilityTimeout"])
    return max(int(continuations["Attributes"]["VisibilityTimeout"]) + 30, settle_patience(cloud))


@pytest.mark.timeout(SETTLE_CAP_SECONDS + 120)
def test_a_file_longer_than_one_invocation_is_read_in_segments_without_losing_or_repeating_a_row(
        short_parse_cloud, tmp_path):
    cloud = short_parse_cloud
    # Given a 400,000-row file (1,500 people, each many times; a bad row every 10,007)
    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        for i in range(1, ROWS + 1):
            handle.write("Bad Row,not-an-email\n" if i % INVALID_EVERY == 0
                         else f"Person {i},p{i % DISTINCT}@example.com\n")
    # When it is uploaded to a parse function whose invocations last 2 s (waited for as long as it moves, and for
    # the stack's own timeouts of stillness: on a busy machine a 2-s segment can run out of time before it hands
    # over, and its continuation comes back after the queue's visibility timeout, as on Lambda)
    [job] = cloud.wait(cloud.upload([path]), timeout=SETTLE_CAP_SECONDS, patience=patience(cloud))
    # Then several invocations read it, one after the other
    parses = cloud.runtime.pools["ParseCsvFunction"].invocations
    # (a segment that ran out of time on a busy machine is no error: its continuation came back, as on Lambda)
    assert len([p for p in parses if p.ok]) >= 2 and all(p.ok or p.timed_out for p in parses), parses
    # And every row is accounted for once, and the job succeeded
    assert (job.status.value, job.rows, job.invalid) == ("SUCCEEDED", ROWS, ROWS // INVALID_EVERY)
    assert job.rows == job.invalid + job.duplicate + job.sent + job.bounced + job.exhausted + job.unknown
    assert job.sent + job.bounced + job.exhausted + job.unknown == DISTINCT
    # And nobody was emailed twice
    delivered = Counter(e.to for e in cloud.outbox() if e.outcome.value == "delivered")
    assert max(delivered.values()) == 1 and len(delivered) == job.sent
    # And the rejects file holds every bad row once, whichever segment read it
    body = cloud.client("s3").get_object(Bucket=cloud.bucket, Key=job.rejects_key)["Body"].read().decode()
    rejected = [int(record[0]) for record in list(csv.reader(io.StringIO(body)))[1:]]
    assert rejected == list(range(INVALID_EVERY, ROWS + 1, INVALID_EVERY))
    assert not cloud.client("s3").list_objects_v2(Bucket=cloud.bucket, Prefix="rejects/.parts/").get("Contents")
    print(f"parse invocations: {len(parses)}, {sum(p.timed_out for p in parses)} timed out")
