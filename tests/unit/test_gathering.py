"""Group commit: concurrent callers' items are written together, and each caller learns how its write went."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from common.domain.gathering import GatheredRetries, GroupCommit
from common.domain.messages import ContactBatch, DelayedRetry, Delivery
from tests.unit.conftest import MemoryQueue


def submit_together(commit: GroupCommit, item_lists: list[list[int]]) -> list:
    """Every list submitted by its own thread, all at the same moment; their results or errors, in order."""
    start = threading.Barrier(len(item_lists))

    def submit(items: list[int]):
        start.wait()
        try:
            return commit.submit(items)
        except Exception as error:  # the test looks at what each caller got
            return error

    with ThreadPoolExecutor(max_workers=len(item_lists)) as pool:
        return list(pool.map(submit, item_lists))


def test_callers_arriving_together_are_written_as_one_group_and_get_its_result():
    # Given a writer that records each group, gathering for 0.5 s
    groups: list[list[int]] = []
    commit = GroupCommit(lambda items: groups.append(sorted(items)) or len(groups), gather_seconds=0.5)
    # When five callers submit at the same moment
    results = submit_together(commit, [[n] for n in range(5)])
    # Then one write holds all their items, and each caller got that write's result
    assert groups == [[0, 1, 2, 3, 4]]
    assert results == [1] * 5


def test_a_caller_returns_only_once_its_items_are_written():
    # Given a slow writer
    written_at: list[float] = []

    def write(items: list[int]) -> None:
        time.sleep(0.2)
        written_at.append(time.monotonic())

    commit = GroupCommit(write, gather_seconds=0.05)
    # When an item is submitted
    commit.submit([1])
    # Then the write had ended before submit returned
    assert len(written_at) == 1


def test_a_caller_alone_is_written_after_the_gathering_time_not_later():
    commit = GroupCommit(len, gather_seconds=0.1)
    started = time.monotonic()
    assert commit.submit([1, 2]) == 2
    assert 0.09 <= time.monotonic() - started < 1.0


def test_every_caller_of_a_failed_write_gets_its_error_and_the_next_write_goes_ahead():
    # Given a writer that fails once
    calls: list[list[int]] = []

    def write(items: list[int]) -> int:
        calls.append(items)
        if len(calls) == 1:
            raise ConnectionError("queue unreachable")
        return len(items)

    commit = GroupCommit(write, gather_seconds=0.5)
    # When three callers' group fails
    results = submit_together(commit, [[1], [2], [3]])
    # Then each of them learns it, none is told it was written
    assert len(calls) == 1 and all(isinstance(r, ConnectionError) for r in results)
    # And a later caller is written
    assert commit.submit([4]) == 1


def test_a_group_holds_at_most_most_items_and_never_splits_a_caller():
    # Given a writer that lets nothing through until every caller is waiting, and groups of at most 3
    groups: list[list[int]] = []
    everyone_waits = threading.Event()

    def write(items: list[int]) -> None:
        everyone_waits.wait(5)
        groups.append(items)

    commit = GroupCommit(write, gather_seconds=0.3, most=3)
    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = [pool.submit(commit.submit, items) for items in ([1], [2], [3, 4], [5], [6])]
        time.sleep(0.5)
        everyone_waits.set()
        for future in futures:
            future.result(timeout=5)
    # Then every item was written once, no group is over 3, and [3, 4] stayed together
    assert sorted(item for group in groups for item in group) == [1, 2, 3, 4, 5, 6]
    assert all(len(group) <= 3 for group in groups)
    assert any(group[i:i + 2] == [3, 4] for group in groups for i in range(len(group)))


def test_retries_of_concurrent_records_go_out_in_shared_messages():
    # Given the retry queue gathered, and two records settling blocked contacts of one job at the same moment
    queue = MemoryQueue()
    gathered = GatheredRetries(queue, gather_seconds=0.5)

    def record_retries(first_row: int) -> list[DelayedRetry]:
        return [DelayedRetry(ContactBatch("job", "incoming/a.csv", tuple(
            Delivery(f"c{row}@example.com", "Ann", row, attempt=2) for row in (first_row, first_row + 1))), 1)]

    start = threading.Barrier(2)

    def settle(first_row: int) -> int:
        start.wait()
        return gathered.send_retries(record_retries(first_row))

    with ThreadPoolExecutor(max_workers=2) as pool:
        sent = list(pool.map(settle, [1, 10]))
    # Then one message carries both records' contacts, and each record learns its retries were sent
    assert [sorted(d.row for d in r.batch.deliveries) for r in queue.retries] == [[1, 2, 10, 11]]
    assert sent == [1, 1]
