"""Chaos, end to end (bench/chaos.py, `make chaos`): execution environments, the runtime's template process
and the runtime itself SIGKILLed at random moments while files keep arriving; nothing lost, nothing sent twice."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.embedded_cloud("kills the local runtime's own processes")]


# The driver waits while the pipeline makes progress, and gives up after the stack's own timeouts of stillness
# (bench/chaos.py: settle_patience, about 7.5 minutes with localcloud.toml): this bounds a busy machine's run.
SETTLE_CAP_SECONDS = 1200


@pytest.mark.timeout(SETTLE_CAP_SECONDS + 300)
def test_processes_killed_at_random_and_answers_lost_lose_nothing_and_send_nothing_twice(tmp_path):
    # Given 3,000 rows in four files, uploaded one after another over 15 s of random SIGKILLs (longer, up to 45 s,
    # until every kind was killed its minimum), the runtime itself killed and started again halfway, and the
    # emulator losing answers after acting on a share of the functions' requests all along
    run = subprocess.run([sys.executable, "-m", "bench.chaos", "--rows", "3000", "--files", "4", "--seconds", "15",
                          "--seed", "1", "--settle-timeout", str(SETTLE_CAP_SECONDS), "--workdir", str(tmp_path),
                          "--json"], capture_output=True, text=True, timeout=SETTLE_CAP_SECONDS + 240)
    assert run.stdout.strip(), run.stderr[-3000:]
    report = json.loads(run.stdout)
    # Then every kind of process was killed (the runtime once), and answers were lost on each service ...
    kills = report["kills"]
    assert kills["runtime"] == 1 and kills["env:SendEmail"] >= 3 and kills["env:ParseCsv"] >= 1
    assert kills.get("env-template", 0) >= 1
    assert {target.split(".")[0] for target in report["answers_lost"]} >= {"dynamodb", "sqs", "s3"}
    assert report["token_replays"] > 0
    # ... crash recovery really ran (redeliveries, lease takeovers, a restarted runtime cleaning up) ...
    assert report["redeliveries"] > 0 and report["lease_takeovers"] > 0
    assert report["recoveries"] and "made the" in report["recoveries"][0]
    # ... the pipeline settled within what the stack's timeouts allow (else: still pending, not lost) ...
    assert report["not_settled"] == [], f"not settled yet (nothing is called lost before it is quiet): {report}"
    # ... and still: no address got two emails, no valid address was lost, every job SUCCEEDED and adds up,
    # and no outcome is UNKNOWN (the simulated provider answers every look-up of a cut-off send)
    assert report["sent_twice"] == [] and report["lost"] == []
    assert report["jobs_wrong"] == [] and report["unknown"] == 0
    assert run.returncode == 0
    print(run.stderr[-2000:])
