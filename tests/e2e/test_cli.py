"""`python -m localcloud` as a user runs it: `run --json` on two files, then outbox, dlq, status, logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from localcloud.samples import write_sample
from tests.e2e.conftest import FAST, start_emulator

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def localcloud(tmp_path):
    emulator = start_emulator(tmp_path)
    env = {**os.environ, "LOCALCLOUD_STATE_DIR": str(tmp_path / "state"),
           "LOCALCLOUD_PARAMETER_OVERRIDES": " ".join(f"{k}={v}" for k, v in FAST.items())}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "localcloud", "--endpoint", emulator.endpoint, *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    yield run
    emulator.stop()


def test_run_json_settles_two_files_sharing_contacts_with_one_email_per_address(localcloud, tmp_path):
    first = write_sample(tmp_path / "a.csv", 150, start=0, invalid_every=50)
    second = write_sample(tmp_path / "b.csv", 100, start=100)

    result = localcloud("run", "--json", str(first), str(second))

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [job["key"] for job in summary["jobs"]] == ["incoming/a.csv", "incoming/b.csv"]
    for job in summary["jobs"]:
        assert job["status"] == "SUCCEEDED"
        assert job["rows"] == sum(job[c] for c in ("invalid", "duplicate", "sent", "bounced", "exhausted", "unknown"))
        assert {"retried", "enqueued"} <= set(job)
    outbox = json.loads(localcloud("outbox", "--json").stdout)
    delivered = Counter(e["to"] for e in outbox if e["outcome"] == "delivered")
    assert max(delivered.values()) == 1
    assert len(delivered) == summary["totals"]["sent"]
    letters = json.loads(localcloud("dlq", "--json").stdout)
    assert Counter(d["reason"] for d in letters)["bounced"] == summary["totals"]["bounced"]
    status = json.loads(localcloud("status", "--json").stdout)
    assert {j["job_id"] for j in status["jobs"]} == {j["job_id"] for j in summary["jobs"]}
    logs = localcloud("logs", "SendEmailFunction", "--filter", '"outcome":"sent"').stdout.splitlines()
    assert len(logs) == summary["totals"]["sent"]
    # Logs of one job, by level; metrics summed from the EMF lines
    first_job = summary["jobs"][0]
    job_lines = localcloud("logs", "SendEmailFunction", "--job", first_job["job_id"]).stdout.splitlines()
    assert job_lines and all(first_job["job_id"] in line for line in job_lines)
    assert localcloud("logs", "SendEmailFunction", "--job", first_job["job_id"], "--level", "error").stdout == ""
    metrics = json.loads(localcloud("metrics", "--json").stdout)
    assert metrics["ContactsSent"]["sum"] == summary["totals"]["sent"]
    assert metrics["RowsParsed"]["sum"] == summary["totals"]["rows"]
    one = json.loads(localcloud("status", "incoming/b.csv", "--json").stdout)["jobs"]
    assert [j["key"] for j in one] == ["incoming/b.csv"]
    watched = localcloud("status", "--watch")  # returns at once: every job is settled
    assert watched.returncode == 0 and "SUCCEEDED" in watched.stdout
    # A file uploaded while no runtime runs is PENDING until one picks it up
    third = write_sample(tmp_path / "c.csv", 10, start=500)
    assert "no `localcloud up` is running" in localcloud("upload", str(third)).stdout
    pending = json.loads(localcloud("status", "c.csv", "--json").stdout)["jobs"]
    assert [(j["key"], j["status"]) for j in pending] == [("incoming/c.csv", "PENDING")]


def test_run_refuses_a_missing_file_clearly(localcloud):
    result = localcloud("run", "no-such-file.csv")
    assert result.returncode == 2
    assert "no such file: no-such-file.csv" in result.stderr
