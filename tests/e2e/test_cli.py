"""`python -m localcloud` as a user runs it: `run --json` on two files, then outbox, dlq, status, logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from localcloud.emulator.process import free_port
from localcloud.samples import write_sample
from tests.e2e.conftest import FAST, start_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.embedded_cloud("drives `localcloud` against emulators of its own")]
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


def _localcloud(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "localcloud", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, input=stdin)


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_read_only_commands_with_nothing_answering_start_nothing(tmp_path):
    # Given nothing on a port named by AWS_ENDPOINT_URL, the one switch every tool honours
    port = free_port()
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "LOCALCLOUD_STATE_DIR": str(tmp_path)}
    for command in (["status"], ["logs", "SendEmailFunction"], ["dlq"], ["outbox"], ["metrics"],
                    ["contact", "bob@example.com"], ["events", str(tmp_path / "events")]):
        # When a read-only command runs
        result = _localcloud(env, *command)
        # Then it says so in one line, exits 1, and leaves the port closed
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert result.stderr.strip() == f"localcloud: nothing answers at http://127.0.0.1:{port}; start it with: " \
                                        "localcloud up"
        assert not _answers(port)


def test_the_cli_follows_aws_endpoint_url_and_speaks_to_the_stack_it_finds(tmp_path):
    # Given `localcloud up` started with AWS_ENDPOINT_URL alone, on a port of its own
    port = free_port()
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "LOCALCLOUD_STATE_DIR": str(tmp_path / "s"),
           "LOCALCLOUD_PARAMETER_OVERRIDES": " ".join(f"{k}={v}" for k, v in FAST.items())}
    # --parameter-overrides after the command, as sam takes it
    up = subprocess.Popen([sys.executable, "-m", "localcloud", "up", "--parameter-overrides", "SimulatedBounceRate=0"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in up.stdout:
            if "Functions are running" in line:
                break
        assert _answers(port), "up did not serve on the port AWS_ENDPOINT_URL names"
        contacts = tmp_path / "contacts.csv"
        contacts.write_text("Bob Stone, Bob.Stone@Example.com\nAnn Lee, ann@example.com\n")
        assert _localcloud(env, "upload", str(contacts)).returncode == 0
        # When status, logs and contact read it with the same variable
        assert _localcloud(env, "status", "--watch").returncode == 0  # until the job is settled
        status = json.loads(_localcloud(env, "status", "--json").stdout)
        assert [(j["key"], j["status"]) for j in status["jobs"]] == [("incoming/contacts.csv", "SUCCEEDED")]
        assert "START RequestId" in _localcloud(env, "logs", "ParseCsvFunction").stdout
        bob = _localcloud(env, "contact", "bob.stone@example.com", "--json")
        # Then "did Bob get his email?" has its answer: the ledger item, file and row
        assert bob.returncode == 0, bob.stderr
        item = json.loads(bob.stdout)
        assert (item["file"], item["row"]) == ("incoming/contacts.csv", 1)
        # (the simulated provider's outcome is a function of seed, address and attempt: Bob's first is delivered)
        assert (item["state"], item["attempt"]) == ("SENT", 1) and item["provider_message_id"].startswith("sim-")
        # And the logs name Bob by the pseudonym `contact` prints, never by his address
        sends = _localcloud(env, "logs", "SendEmailFunction", "--filter", item["pseudonym"]).stdout
        logged = [json.loads(line[line.index("{"):]) for line in sends.splitlines() if "{" in line]
        assert [(line["message"], line["row"]) for line in logged] == [("contact sent", 1)]
        assert "bob.stone@example.com" not in sends.lower()
        assert _localcloud(env, "contact", "nobody@example.com").returncode == 1
        # And a file the function would not read is refused with its reason, before anything is uploaded
        other = tmp_path / "contacts.xlsx"
        other.write_bytes(b"PK\x03\x04")
        refused = _localcloud(env, "upload", str(other))
        assert refused.returncode == 2
        assert "contacts.xlsx would not be read: 'xlsx' files are not read" in refused.stderr
        # And invoke reads its event from standard input, and names a missing event file in one line
        events = _localcloud(env, "events", str(tmp_path / "events"))
        assert events.returncode == 0, events.stderr
        event = (tmp_path / "events" / "sqs_contacts.json").read_text()
        piped = _localcloud(env, "invoke", "SendEmailFunction", "-e", "-", stdin=event)
        assert piped.returncode == 0, piped.stderr
        assert json.loads(piped.stdout) == {"batchItemFailures": []}
        missing = _localcloud(env, "invoke", "SendEmailFunction", "-e", "missing.json")
        assert missing.returncode == 2
        assert missing.stderr.strip().splitlines() == [
            "localcloud: cannot read the event file missing.json: No such file or directory"]
    finally:
        up.terminate()
        up.wait(timeout=30)
        _localcloud(env, "stop")
    assert not _answers(port)


def test_a_plain_moto_server_is_named_and_refused(tmp_path):
    # Given a plain moto server (what many run as "local AWS") on a port
    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _answers(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "LOCALCLOUD_STATE_DIR": str(tmp_path)}
        # When the local cloud is asked to deploy there
        result = _localcloud(env, "deploy")
        # Then it refuses, saying what answers and why it cannot run the pipeline correctly
        assert result.returncode == 2
        assert "a plain moto server cannot run this pipeline correctly" in result.stderr.replace("\n", " ")
    finally:
        moto.terminate()
        moto.wait(timeout=10)


def test_read_only_commands_do_not_load_the_lambda_runtime(tmp_path):
    # Given nothing answering, so each read-only command returns at once
    script = ("import sys; from localcloud.cli import main\n"
              "for command in (['status'], ['logs', 'SendEmailFunction'], ['dlq'], ['contact', 'a@example.com']):\n"
              "    assert main(['--endpoint', 'http://127.0.0.1:9', *command]) == 1\n"
              "print(sorted(m for m in sys.modules if m.startswith('localcloud.runtime')))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "LOCALCLOUD_STATE_DIR": str(tmp_path)})
    # Then none of them imported the runtime (its worker processes, its zygote)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
