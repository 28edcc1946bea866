"""Group commit: what concurrent callers hand over at about the same time is written as one group.

The first caller with nothing being written becomes the writer: it waits up to `gather_seconds` for
others (less once `most` items are pending), writes the group for everyone, and goes on while more
is pending. Every caller returns only once its own items are written, with the result of its
group's write, or raises that write's error: nothing is reported done before it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from common.domain.messages import DelayedRetry, merge_retries
from common.ports import RetryQueue


class GroupCommit[Item, Result]:
    def __init__(self, write: Callable[[list[Item]], Result], gather_seconds: float, most: int | None = None):
        """`most`: the largest group (a caller's items are never split); None: no limit."""
        self._write = write
        self._gather_seconds = gather_seconds
        self._most = most
        self._pending: list[tuple[Sequence[Item], Future[Result]]] = []
        self._pending_items = 0
        self._arrived = threading.Condition()
        self._writing = False

    def submit(self, items: Sequence[Item]) -> Result:
        done: Future[Result] = Future()
        with self._arrived:
            self._pending.append((items, done))
            self._pending_items += len(items)
            lead = not self._writing
            self._writing = True
            self._arrived.notify()
        if lead:
            self._write_pending()
        return done.result()

    def _full(self) -> bool:
        return self._most is not None and self._pending_items >= self._most

    def _write_pending(self) -> None:
        while True:
            with self._arrived:
                self._arrived.wait_for(self._full, timeout=self._gather_seconds)
                group = self._take_group()
                if not group:
                    self._writing = False
                    return
            try:
                result = self._write([item for items, _ in group for item in items])
            except Exception as error:  # noqa: BLE001 - every caller of the group learns it was not written
                for _, done in group:
                    done.set_exception(error)
            else:
                for _, done in group:
                    done.set_result(result)

    def _take_group(self) -> list[tuple[Sequence[Item], Future[Result]]]:
        """The oldest callers, as many as fit in `most` (at least one)."""
        taken, size = 0, 0
        for items, _ in self._pending:
            if taken and self._most is not None and size + len(items) > self._most:
                break
            taken, size = taken + 1, size + len(items)
        group, self._pending = self._pending[:taken], self._pending[taken:]
        self._pending_items -= size
        return group


class GatheredRetries:
    """A retry queue whose concurrent callers (the records of one invocation, settling their waves)
    share messages: their retries are merged (merge_retries) and sent together. A blocked contact's
    retry leaves up to `gather_seconds` later, in a fuller message: fewer, larger messages make the
    retry invocations cheaper per contact and carry more contacts each."""

    def __init__(self, queue: RetryQueue, gather_seconds: float):
        self._queue = queue
        self._commit: GroupCommit[DelayedRetry, int] = GroupCommit(
            lambda retries: queue.send_retries(merge_retries(retries)), gather_seconds)

    def send_retries(self, retries: Sequence[DelayedRetry]) -> int:
        """The number of messages the caller's group went out in."""
        return self._commit.submit(retries)
