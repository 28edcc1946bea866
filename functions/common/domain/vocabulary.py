"""The words of the pipeline, in one place, and how each maps to the others.

| what happened to a contact | ledger `State` | `JobCounter` | `Verdict` (logs, metrics) | `DeadLetterReason` |
|---|---|---|---|---|
| provider `Outcome.DELIVERED` | SENT | sent | sent | |
| provider `Outcome.BOUNCED` | BOUNCED | bounced | bounced | bounced |
| `Outcome.BLOCKED` (or throttled), attempts left | BLOCKED | retried | retry_scheduled | |
| `Outcome.BLOCKED`, last attempt | EXHAUSTED | exhausted | exhausted | blocked-exhausted |
| outcome unknown (the sender died mid-send) | UNKNOWN | unknown | unknown | unknown-outcome |
| already claimed by another row or file | (unchanged) | duplicate | duplicate | |
| `FeedbackKind.BOUNCE` after SENT (SES event) | BOUNCED | bounced (sent - 1) | | bounced |
| `FeedbackKind.COMPLAINT` after SENT | COMPLAINED | complained | | complained |

A message that cannot be read is dead-lettered whole as `malformed-message`. `SETTLEMENTS` and the
maps below are the table in code; docs/ledger.md shows the same.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """A contact's item in the ledger."""

    CLAIMED = "CLAIMED"
    SENT = "SENT"
    BLOCKED = "BLOCKED"
    BOUNCED = "BOUNCED"
    EXHAUSTED = "EXHAUSTED"
    UNKNOWN = "UNKNOWN"
    COMPLAINED = "COMPLAINED"  # sent, then marked as spam by the recipient


class JobCounter(StrEnum):
    """Per-job counters the send side earns; `retried` counts retries scheduled, not rows."""

    SENT = "sent"
    BOUNCED = "bounced"
    RETRIED = "retried"
    EXHAUSTED = "exhausted"
    UNKNOWN = "unknown"
    DUPLICATE = "duplicate"
    COMPLAINED = "complained"  # of the sent, how many complained (not a separate outcome)


class FeedbackMove(StrEnum):
    """What a bounce or complaint event did to the ledger."""

    MOVED = "moved"
    ALREADY_RECORDED = "already_recorded"
    NOT_OURS = "not_ours"  # no such contact, or feedback on another message than the one we sent
    NOT_SENT = "not_sent"  # e.g. a bounce after a complaint: the first word stands


class Outcome(StrEnum):
    """What the provider answered for a send it took."""

    DELIVERED = "delivered"
    BOUNCED = "bounced"
    BLOCKED = "blocked"


class Verdict(StrEnum):
    """What this delivery of a message did with one contact (logged and counted as metrics)."""

    SENT = "sent"
    BOUNCED = "bounced"
    RETRY_SCHEDULED = "retry_scheduled"
    EXHAUSTED = "exhausted"
    UNKNOWN = "unknown"
    DUPLICATE = "duplicate"
    ALREADY_DONE = "already_done"  # settled by an earlier delivery of this message
    STALE = "stale"  # another message carries this attempt
    RETRY_LATER = "retry_later"  # transient failure or a live lease: the message comes back
    MISCONFIGURED = "misconfigured"  # the provider refused our setup: the message comes back, loudly
    OUT_OF_TIME = "out_of_time"  # no time (or send slot) left in this invocation: the message comes back soon


class DeadLetterReason(StrEnum):
    """Why a contact (or a message) is in the dead-letter queue."""

    BOUNCED = "bounced"
    COMPLAINED = "complained"
    BLOCKED_EXHAUSTED = "blocked-exhausted"
    UNKNOWN_OUTCOME = "unknown-outcome"
    MALFORMED_MESSAGE = "malformed-message"


class FeedbackKind(StrEnum):
    """The SES events the pipeline acts on (eventType)."""

    BOUNCE = "Bounce"
    COMPLAINT = "Complaint"


# A settle verdict -> the ledger state it moves the contact to, the job counter it earns, its dead letter.
SETTLEMENTS: dict[Verdict, tuple[State, JobCounter, DeadLetterReason | None]] = {
    Verdict.SENT: (State.SENT, JobCounter.SENT, None),
    Verdict.BOUNCED: (State.BOUNCED, JobCounter.BOUNCED, DeadLetterReason.BOUNCED),
    Verdict.RETRY_SCHEDULED: (State.BLOCKED, JobCounter.RETRIED, None),
    Verdict.EXHAUSTED: (State.EXHAUSTED, JobCounter.EXHAUSTED, DeadLetterReason.BLOCKED_EXHAUSTED),
    Verdict.UNKNOWN: (State.UNKNOWN, JobCounter.UNKNOWN, DeadLetterReason.UNKNOWN_OUTCOME),
}

# The dead letter a settled (or feedback) state leaves behind.
DEAD_LETTER_FOR_STATE: dict[State, DeadLetterReason] = {
    State.BOUNCED: DeadLetterReason.BOUNCED, State.EXHAUSTED: DeadLetterReason.BLOCKED_EXHAUSTED,
    State.UNKNOWN: DeadLetterReason.UNKNOWN_OUTCOME, State.COMPLAINED: DeadLetterReason.COMPLAINED}

# The state a permanent SES event moves a SENT contact to.
FEEDBACK_STATE: dict[FeedbackKind, State] = {FeedbackKind.BOUNCE: State.BOUNCED,
                                            FeedbackKind.COMPLAINT: State.COMPLAINED}
