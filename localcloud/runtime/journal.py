"""What a killed runtime leaves behind, written down so that the next one can clean up after it.

Lambda's service never dies; a local runtime can (SIGKILL, a crash, a closed terminal). What it held
then outlives it: execution environments still running an invocation, and messages it had received,
invisible for their whole visibility timeout (12 hours on an async invocation queue, 16 minutes on
the continuations queue). The journal is an append-only file of both. The next runtime for the same
endpoint reads it before it polls anything: it kills the processes that are still the same ones (pid
and start time) and makes the messages visible again. Contacts stay safe meanwhile: a contact whose
sender died is leased, and only its lease's end lets a redelivery take it over (docs/ledger.md).

Each record is one JSON line written with one `write(2)` on an O_APPEND descriptor: a process killed
at any moment leaves whole lines behind (a torn last line is skipped all the same).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from localcloud.processes import process_alive, stat_fields

_log = logging.getLogger("localcloud.runtime")

COMPACT_AFTER_LINES = 20_000  # then the file is rewritten with what is still held


def journal_path(state_dir: Path, endpoint: str) -> Path:
    """One journal per endpoint: runtimes of two endpoints sharing a state directory do not meet."""
    netloc = urlsplit(endpoint).netloc or endpoint
    return state_dir / f"runtime-journal-{netloc.replace(':', '_').replace('/', '_')}.jsonl"


def process_start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot): with the pid, it names one process for good."""
    try:
        return int(stat_fields(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


def same_process(pid: int, started: int | None) -> bool:
    return process_alive(pid) and started is not None and process_start_ticks(pid) == started


@dataclass(frozen=True)
class Recovery:
    previous_runtime: int
    processes_killed: dict[str, int]  # kind -> count
    messages_returned: int

    def __str__(self) -> str:
        killed = ", ".join(f"{count} {kind}" for kind, count in sorted(self.processes_killed.items())) or "none"
        return (f"runtime {self.previous_runtime} died: killed the processes it left running ({killed}) and "
                f"made the {self.messages_returned} messages it had received visible again")


class RuntimeJournal:
    """The live runtime's side: record what it starts and takes, forget what ends and is released."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._processes: dict[int, tuple[int | None, str]] = {}  # pid -> (start ticks, kind)
        self._messages: dict[str, str] = {}  # receipt handle -> queue url
        self._lines = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open_fresh([self._header()])

    # -- what the runtime reports ----------------------------------------------------------
    def process_started(self, pid: int, kind: str) -> None:
        with self._lock:
            if pid in self._processes:
                return
            started = process_start_ticks(pid)
            self._processes[pid] = (started, kind)
            self._append({"process": pid, "started": started, "kind": kind})

    def process_ended(self, pid: int) -> None:
        with self._lock:
            if self._processes.pop(pid, None) is not None:
                self._append({"ended": pid})

    def messages_taken(self, queue_url: str, receipt_handles: list[str]) -> None:
        with self._lock:
            self._messages.update(dict.fromkeys(receipt_handles, queue_url))
            self._append({"queue": queue_url, "taken": receipt_handles})

    def messages_released(self, receipt_handles: list[str]) -> None:
        with self._lock:
            for handle in receipt_handles:
                self._messages.pop(handle, None)
            self._append({"released": receipt_handles})

    def close(self) -> None:
        """A runtime that stops cleanly leaves nothing to recover."""
        with self._lock:
            os.close(self._fd)
            self.path.unlink(missing_ok=True)

    # -- the file ------------------------------------------------------------------------
    @staticmethod
    def _header() -> dict[str, Any]:
        return {"runtime": os.getpid(), "started": process_start_ticks(os.getpid())}

    def _append(self, record: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())
        self._lines += 1
        if self._lines >= COMPACT_AFTER_LINES:
            self._compact()

    def _compact(self) -> None:
        records = [self._header()]
        records += [{"process": pid, "started": started, "kind": kind}
                    for pid, (started, kind) in self._processes.items()]
        records += [{"queue": url, "taken": handles} for url, handles in _by_queue(self._messages).items()]
        os.close(self._fd)
        self._fd = self._open_fresh(records)

    def _open_fresh(self, records: list[dict[str, Any]]) -> int:
        """Replace the file at once (write aside, rename), then append to it."""
        staging = self.path.with_suffix(".new")
        staging.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
        os.replace(staging, self.path)
        self._lines = len(records)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND)


@dataclass
class _Left:
    """What the previous runtime's journal says it still held."""

    runtime: int = 0
    runtime_started: int | None = None
    processes: dict[int, tuple[int | None, str]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)  # receipt handle -> queue url


def _read(path: Path) -> _Left:
    left = _Left()
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line
        if "runtime" in record:
            left.runtime, left.runtime_started = record["runtime"], record.get("started")
        elif "process" in record:
            left.processes[record["process"]] = (record.get("started"), record.get("kind", "?"))
        elif "ended" in record:
            left.processes.pop(record["ended"], None)
        elif "taken" in record:
            left.messages.update(dict.fromkeys(record["taken"], record["queue"]))
        elif "released" in record:
            for handle in record["released"]:
                left.messages.pop(handle, None)
    return left


def _by_queue(messages: dict[str, str]) -> dict[str, list[str]]:
    """receipt handle -> queue url, as queue url -> its receipt handles"""
    grouped: dict[str, list[str]] = {}
    for handle, url in messages.items():
        grouped.setdefault(url, []).append(handle)
    return grouped


class RuntimeStillRunning(RuntimeError):
    pass


def recover(path: Path, sqs: Any) -> Recovery | None:
    """Clean up after the runtime whose journal this is, if it died; None when there is nothing to do."""
    if not path.exists():
        return None
    left = _read(path)
    if left.runtime and left.runtime != os.getpid() and same_process(left.runtime, left.runtime_started):
        raise RuntimeStillRunning(f"the runtime {left.runtime} still runs the functions for this endpoint "
                                  f"(its journal: {path})")
    killed: dict[str, int] = {}
    for pid, (started, kind) in left.processes.items():
        if same_process(pid, started):  # not a later process that happens to have the pid
            os.kill(pid, signal.SIGKILL)
            killed[kind] = killed.get(kind, 0) + 1
    returned = sum(_make_visible(sqs, url, handles) for url, handles in _by_queue(left.messages).items())
    path.unlink(missing_ok=True)
    if not killed and not returned:
        return None
    recovery = Recovery(previous_runtime=left.runtime, processes_killed=killed, messages_returned=returned)
    _log.warning("%s", recovery)
    return recovery


def _make_visible(sqs: Any, queue_url: str, receipt_handles: list[str]) -> int:
    """How many were made visible; a handle already deleted or handed out again is no longer ours."""
    returned = 0
    for start in range(0, len(receipt_handles), 10):
        entries = [{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                   for i, handle in enumerate(receipt_handles[start:start + 10])]
        try:
            response = sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        except ClientError as error:  # the queue itself is gone (a stack deleted since)
            _log.warning("could not return messages to %s: %s", queue_url, error)
            continue
        returned += len(response.get("Successful", []))
    return returned
