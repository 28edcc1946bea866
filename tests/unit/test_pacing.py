"""MaxSendRate: sends of every invocation share one lattice of start times, spread evenly."""

from __future__ import annotations

import threading

from common.domain.pacing import SendPacer, peak_per_second


class MemorySlots:
    def __init__(self) -> None:
        self.next_slot = 0
        self.lock = threading.Lock()

    def reserve(self, count: int, earliest: int) -> range:
        with self.lock:
            start = max(earliest, self.next_slot)
            self.next_slot = start + count
            return range(start, start + count)


def test_three_invocations_sharing_the_slots_never_start_more_than_the_rate_in_any_second():
    # Given three invocations, each with its own pacer, sharing one slot source, and a clock that
    # jumps to each granted start (as a sender sleeping until then would)
    slots, now = MemorySlots(), [1_000.0]
    pacers = [SendPacer(20, slots, clock=lambda: now[0]) for _ in range(3)]
    starts = []
    # When they take 300 send slots between them, in turn
    for i in range(300):
        start = pacers[i % 3].next_start()
        now[0] = max(now[0], start)
        starts.append(start)
    # Then every start is distinct, at most 20 fall in any one-second window, and they are evenly spaced
    assert len(set(starts)) == 300
    assert peak_per_second(starts) <= 20
    assert max(b - a for a, b in zip(sorted(starts), sorted(starts)[1:], strict=False)) < 1.0


def test_a_slot_already_past_is_skipped_not_used_late():
    slots, now = MemorySlots(), [1_000.0]
    pacer = SendPacer(11, slots, clock=lambda: now[0])  # 10 slots a second
    first = pacer.next_start()
    now[0] = first + 0.35  # the sender was held up for 3.5 slots
    second = pacer.next_start()
    assert second >= now[0] - 0.05


def test_a_send_may_start_up_to_half_a_slot_after_its_slot_and_no_later():
    pacer = SendPacer(max_rate=11, slots=None)  # 10 slots a second: 0.1 s wide
    assert pacer.on_time(start=5.0, now=5.0) and pacer.on_time(start=5.0, now=5.05)
    assert not pacer.on_time(start=5.0, now=5.051)
    assert pacer.on_time(start=5.0, now=4.0)  # early: it waits
