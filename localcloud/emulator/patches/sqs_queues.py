"""Fixes two behaviours of moto 5.2.5's SQS queues.

- Concurrent DeleteMessage calls bring deleted messages back and can lose a message sent meanwhile
  (docs/moto-bugs.md, case 2): `Queue.delete_message` rebuilds the message list without the queue's
  lock; here it takes it. Test: test_messages_deleted_and_sent_at_the_same_time_are_neither_lost_nor_brought_back.
- A long poll sits out its whole wait when the only message is a delayed one that matures meanwhile
  (SQS returns it as it matures): every retry of a blocked contact waited ~1 s more. Test:
  test_a_long_poll_returns_when_a_delayed_message_becomes_receivable.
"""

from __future__ import annotations

import functools
import time
from typing import Any


def _wait_for_messages(self: Any, timeout: int) -> None:
    """SQS long polling: return as soon as a message is receivable. moto waits for a notification
    that a delayed message's maturing never sends, so a long poll over a retry sat out its timeout."""
    deadline = time.monotonic() + timeout
    with self._messages_lock:
        while not self.messages and (left := deadline - time.monotonic()) > 0:
            self._messages_lock.wait(min(left, 0.05))


def _under_queue_lock(original: Any) -> Any:
    """moto's `Queue.delete_message` rebuilds the message list without the queue's lock: a message
    added meanwhile (a retry) was lost, and of two messages deleted at once one came back after its
    visibility timeout (seen as 25 messages redelivered 360 s late in a 100k run)."""
    @functools.wraps(original)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._messages_lock:
            return original(self, *args, **kwargs)
    return locked


def apply() -> None:
    from moto.sqs.models import Queue

    Queue.wait_for_messages = _wait_for_messages  # type: ignore[method-assign]
    Queue.delete_message = _under_queue_lock(Queue.delete_message)  # type: ignore[method-assign]
