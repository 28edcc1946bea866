"""The runtime's journal: a runtime started after one that was killed cleans up what that one held."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from localcloud.runtime import journal as journal_module
from localcloud.runtime.journal import RuntimeJournal, RuntimeStillRunning, journal_path, process_start_ticks, recover


@pytest.fixture
def sqs():
    with mock_aws():
        client = boto3.client("sqs")
        yield client, client.create_queue(QueueName="contacts", Attributes={"VisibilityTimeout": "360"})["QueueUrl"]


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


def take(client, url: str, count: int) -> list[str]:
    for n in range(count):
        client.send_message(QueueUrl=url, MessageBody=f"m{n}")
    messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == count
    return [m["ReceiptHandle"] for m in messages]


def visible(client, url: str) -> int:
    return int(client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])


def exited(process: subprocess.Popen, within: float = 5) -> bool:
    try:
        process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_the_next_runtime_kills_what_a_dead_one_left_running_and_hands_its_messages_back(sqs, sleeper, tmp_path):
    client, url = sqs
    path = journal_path(tmp_path, "http://127.0.0.1:4566")
    # Given a runtime that started an environment and took three messages, then released one
    journal = RuntimeJournal(path)
    journal.process_started(sleeper.pid, "env:SendEmail")
    handles = take(client, url, 3)
    journal.messages_taken(url, handles)
    journal.messages_released(handles[:1])
    client.delete_message(QueueUrl=url, ReceiptHandle=handles[0])
    assert visible(client, url) == 0
    # When it dies without closing its journal, and the next runtime recovers
    recovery = recover(path, client)
    # Then its environment is killed, the two messages it still held are visible at once, and the journal is gone
    assert recovery is not None
    assert recovery.processes_killed == {"env:SendEmail": 1} and recovery.messages_returned == 2
    assert exited(sleeper)
    assert visible(client, url) == 2
    assert not path.exists()
    assert "killed the processes it left running (1 env:SendEmail)" in str(recovery)


def test_a_process_that_ended_or_a_pid_used_again_by_another_process_is_not_killed(sqs, sleeper, tmp_path):
    client, _ = sqs
    path = tmp_path / "journal.jsonl"
    journal = RuntimeJournal(path)
    # Given the journal's pid now names another process (a different start time) ...
    journal.process_started(sleeper.pid, "env:ParseCsv")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    records[-1]["started"] = process_start_ticks(sleeper.pid) - 1
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    # ... When the next runtime recovers
    assert recover(path, client) is None
    # Then that process lives on
    assert not exited(sleeper, within=0.5)


def test_a_runtime_that_stops_cleanly_leaves_nothing_to_recover(sqs, sleeper, tmp_path):
    client, url = sqs
    path = tmp_path / "journal.jsonl"
    journal = RuntimeJournal(path)
    journal.process_started(sleeper.pid, "env:SendEmail")
    journal.process_ended(sleeper.pid)
    journal.messages_taken(url, take(client, url, 1))
    journal.close()
    assert recover(path, client) is None
    assert not exited(sleeper, within=0.5)


def test_a_torn_last_line_and_a_compacted_journal_still_say_what_was_held(sqs, tmp_path, monkeypatch):
    client, url = sqs
    path = tmp_path / "journal.jsonl"
    monkeypatch.setattr(journal_module, "COMPACT_AFTER_LINES", 5)
    journal = RuntimeJournal(path)
    handles = take(client, url, 4)
    for handle in handles:  # enough lines to compact, more than once
        journal.messages_taken(url, [handle])
        journal.messages_released([handle])
    journal.messages_taken(url, handles[2:])
    assert len(path.read_text().splitlines()) < 5
    with path.open("a") as torn:
        torn.write('{"released": ["')
    recovery = recover(path, client)
    assert recovery is not None and recovery.messages_returned == 2


def test_a_journal_whose_runtime_still_runs_is_not_touched(sqs, sleeper, tmp_path):
    client, _ = sqs
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps({"runtime": sleeper.pid, "started": process_start_ticks(sleeper.pid)}) + "\n")
    with pytest.raises(RuntimeStillRunning):
        recover(path, client)
    assert path.exists()
