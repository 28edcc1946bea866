"""Send pacing: at most MaxSendRate emails per second across every concurrent invocation, spread
evenly rather than in bursts.

Time is cut into slots of 1/q seconds, q = MaxSendRate - 1 (one slot of headroom for a send that
starts a little after its slot). A shared counter in DynamoDB hands out slot numbers, a few at a
time, and never the same slot twice: so no two sends anywhere start in the same slot, and no
one-second window holds more than MaxSendRate starts. A slot missed by more than half its width
is skipped, not used late: when it is handed out, and again when its sender wakes up for it (on a
busy machine a thread may wake late, and late starts would bunch into the next second's slots).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from common.ports import SlotSource


def peak_per_second(times: list[float]) -> int:
    """The most of `times` (seconds) that fall within any one second (a sliding window)."""
    times = sorted(times)
    peak, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


class SendPacer:
    def __init__(self, max_rate: float, slots: SlotSource, clock: Callable[[], float] = time.time):
        self.slots_per_second = max(max_rate - 1, max_rate / 2)
        self._slots = slots
        self._clock = clock
        # About a quarter of a second of sends per reservation: few requests, little capacity wasted.
        self._chunk = max(1, min(50, math.ceil(self.slots_per_second / 4)))
        self._mine: deque[int] = deque()
        self._lock = threading.Lock()
        self.reservations = 0

    def on_time(self, start: float, now: float) -> bool:
        """Whether a send may still start now in the slot that starts at `start`."""
        return now - start <= 0.5 / self.slots_per_second

    def next_start(self) -> float:
        """The time this caller's next send may start (wait until then)."""
        width = 1 / self.slots_per_second
        with self._lock:
            while True:
                now = self._clock()
                if not self._mine:
                    earliest = math.ceil(now * self.slots_per_second)
                    self._mine.extend(self._slots.reserve(self._chunk, earliest))
                    self.reservations += 1
                slot = self._mine.popleft()
                start = slot * width
                if start >= now - width / 2:
                    return start
