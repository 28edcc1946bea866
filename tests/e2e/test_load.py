"""Load: 20 files uploaded at once, sharing contacts; every job settles with every row accounted for."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from localcloud.samples import contact_line

pytestmark = pytest.mark.e2e


def test_twenty_files_at_once_sharing_contacts(cloud, tmp_path):
    # Given 20 files of 120 rows drawn from a pool of 800 contacts (so most contacts are in several files)
    rng = random.Random(20)
    paths = []
    for number in range(20):
        path = tmp_path / f"load-{number:02d}.csv"
        path.write_text("".join(contact_line(90_000 + rng.randrange(800)) + "\n" for _ in range(120)))
        paths.append(path)
    # When they are all uploaded at once
    uploaded = cloud.upload(paths)
    jobs = cloud.wait(uploaded, timeout=300)
    # Then each job settles with the accounting identity, and no address got two emails
    for job in jobs:
        assert job.status.value == "SUCCEEDED"
        assert job.rows == 120 == job.invalid + job.duplicate + job.sent + job.bounced + job.exhausted + job.unknown
    job_ids = {u.job_id for u in uploaded}
    attempts = [e for e in cloud.outbox() if e.idempotency_key.rsplit("#", 2)[0] in job_ids]
    delivered = Counter(e.to for e in attempts if e.outcome.value == "delivered")
    assert max(delivered.values()) == 1
    distinct = {line.split(",")[1].strip() for p in paths for line in p.read_text().splitlines()}
    assert len(delivered) == sum(j.sent for j in jobs)
    assert sum(j.sent + j.bounced + j.exhausted + j.unknown for j in jobs) == len(distinct)
