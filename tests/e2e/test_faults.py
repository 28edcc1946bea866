"""Refusals on a share of every request the functions make, and a provider that throttles a share of its sends:
nothing lost, nothing sent twice. (Answers lost *after* the service acted: test_lost_answers.py.)"""

from __future__ import annotations

from collections import Counter

import pytest

from localcloud.cloud import LocalCloud
from localcloud.config import CloudSettings
from localcloud.emulator.process import injected_faults, set_faults
from localcloud.samples import write_sample
from tests.e2e.conftest import FAST, start_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.embedded_cloud("the emulator's faults, on an emulator of its own")]
REFUSALS = "s3.*=refuse:0.2,sqs.*=refuse:0.2,dynamodb.*=refuse:0.2,seed=3"
THROTTLE_RATE = 0.2


@pytest.fixture
def faulty_cloud(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALCLOUD_STATE_DIR", str(tmp_path / "state"))
    emulator = start_emulator(tmp_path)
    overrides = {**FAST, "SimulatedThrottleRate": str(THROTTLE_RATE)}
    cloud = LocalCloud(CloudSettings.load(endpoint=emulator.endpoint, overrides=overrides)).start()
    set_faults(emulator.endpoint, REFUSALS)
    yield cloud
    cloud.close()
    emulator.stop()


def test_one_request_in_five_refused_and_one_send_in_five_throttled_lose_nothing_and_send_nothing_twice(
        faulty_cloud, tmp_path):
    cloud = faulty_cloud
    files = [write_sample(tmp_path / "f1.csv", 300, start=0, invalid_every=50),
             write_sample(tmp_path / "f2.csv", 200, start=150)]
    jobs = cloud.wait(cloud.upload(files), timeout=240)
    for job in jobs:
        assert job.status.value == "SUCCEEDED"
        assert job.rows == job.invalid + job.duplicate + job.sent + job.bounced + job.exhausted + job.unknown
    delivered = Counter(e.to for e in cloud.outbox() if e.outcome.value == "delivered")
    assert max(delivered.values()) == 1 and len(delivered) == sum(j.sent for j in jobs)
    injected = Counter(fault["target"].split(".")[0] for fault in injected_faults(cloud.settings.endpoint)["injected"])
    # the refusals really happened, on every service the functions use
    assert set(injected) >= {"s3", "sqs", "dynamodb"} and sum(injected.values()) >= 10
    # the provider refused sends as throttled, and they came back as delayed retries
    throttled = [e for e in cloud.log_events("SendEmailFunction") if '"detail":"throttled:' in e["message"]]
    assert len(throttled) >= 20
    print(f"requests refused: {dict(injected)}; throttled sends: {len(throttled)}; rows: {sum(j.rows for j in jobs)}")
