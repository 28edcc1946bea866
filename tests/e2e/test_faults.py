"""Transient AWS errors on a share of every request the functions make: nothing lost, nothing sent twice."""

from __future__ import annotations

from collections import Counter

import pytest

from localcloud.cloud import LocalCloud
from localcloud.samples import write_sample
from localcloud.settings import CloudSettings
from tests.e2e.conftest import FAST, start_emulator

pytestmark = pytest.mark.e2e
FAULT_RATE = 0.2


@pytest.fixture
def faulty_cloud(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LOCALCLOUD_FAULT_RATE", str(FAULT_RATE))
    emulator = start_emulator(tmp_path)
    cloud = LocalCloud(CloudSettings.load(endpoint=emulator.endpoint, overrides=FAST)).start()
    yield cloud
    cloud.close()
    emulator.stop()


def test_one_request_in_five_failing_transiently_loses_nothing_and_sends_nothing_twice(faulty_cloud, tmp_path):
    cloud = faulty_cloud
    files = [write_sample(tmp_path / "f1.csv", 300, start=0, invalid_every=50),
             write_sample(tmp_path / "f2.csv", 200, start=150)]
    jobs = cloud.wait(cloud.upload(files), timeout=240)
    for job in jobs:
        assert job.status.value == "SUCCEEDED"
        assert job.rows == job.invalid + job.duplicate + job.sent + job.bounced + job.exhausted + job.unknown
    delivered = Counter(e.to for e in cloud.outbox() if e.outcome.value == "delivered")
    assert max(delivered.values()) == 1 and len(delivered) == sum(j.sent for j in jobs)
    injected = sum((pool.faults_injected for pool in cloud.runtime.pools.values()), Counter())
    # the faults really happened, on every service the functions use
    assert {name.split(".")[0] for name in injected} >= {"s3", "sqs", "dynamodb"}
    assert sum(injected.values()) >= 10
    print(f"faults injected: {sum(injected.values())} {dict(injected)}; rows: {sum(j.rows for j in jobs)}")
