"""The contact ledger: one item per normalised email, moved through a small state machine.

    (none) --claim--> CLAIMED --outcome--> SENT | BOUNCED | BLOCKED | EXHAUSTED | UNKNOWN
    BLOCKED --retry claim (same token, next attempt)--> CLAIMED
    SENT --provider feedback (hard bounce, complaint), for its provider message id--> BOUNCED | COMPLAINED

Every move is a conditional write naming the claim it expects (token, attempt, carrier), so
only the holder of a claim can move it. Job counters are added in the same transaction as
the move that earns them, so a count can be neither lost nor doubled by a crash.

A write whose answer was lost is sent again (by the SDK, with the same request token). Where the
repeat still finds its condition failed, the item it finds tells whether the first request had
committed: `made_by` (this very claim) and `already_applied` (this very move) are then a success,
never a lost claim or a stale move.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.domain.vocabulary import FeedbackMove, JobCounter, State


@dataclass(frozen=True, slots=True)
class Claim:
    email: str
    token: str
    attempt: int
    carrier: str  # the SQS message id carrying this attempt
    lease_until: float
    job_id: str
    row: int
    name: str
    source_key: str
    # Set to take over our own claim whose lease ran out before this time (its holder died).
    take_over_lease_before: float | None = None
    # This delivery of the message, unique to it (two deliveries of one message share the carrier):
    # how a repeated request recognises the claim it made itself.
    holder: str = ""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    email: str
    state: State
    token: str
    attempt: int
    carrier: str
    lease_until: float
    job_id: str = ""
    row: int = 0
    source_key: str = ""
    provider_message_id: str = ""
    detail: str = ""
    unsent: bool = False  # released after the provider refused the email: safe to send on resume
    next_attempt_at: float = 0.0  # BLOCKED: when the delayed retry becomes visible
    name: str = ""
    holder: str = ""  # the delivery that made (or took over) the current claim


@dataclass(frozen=True, slots=True)
class Move:
    """Move a claim we hold to a new state (or, with state CLAIMED, release it: end its lease)."""

    claim: Claim
    state: State
    counter: JobCounter | None
    provider_message_id: str = ""
    detail: str = ""
    unsent: bool = False  # with a release: the provider certainly did not take the email
    next_attempt_at: float = 0.0  # with BLOCKED: when the retry is due


@dataclass(frozen=True, slots=True)
class DuplicateMark:
    """Count a row as a duplicate exactly once, however often its message is delivered."""

    job_id: str
    row: int
    carrier: str
    counter: JobCounter = JobCounter.DUPLICATE


Transition = Move | DuplicateMark


def feedback_refusal(entry: LedgerEntry, provider_message_id: str, state: State) -> FeedbackMove | None:
    """Why a bounce or complaint for `provider_message_id` does not move this entry; None when it does.

    Only the email the ledger recorded as sent under that message id is moved, only from SENT, and a
    repeated event changes nothing (the first word stands: a bounce after a complaint is NOT_SENT)."""
    if not provider_message_id or entry.provider_message_id != provider_message_id:
        return FeedbackMove.NOT_OURS
    if entry.state is state:
        return FeedbackMove.ALREADY_RECORDED
    if entry.state is not State.SENT:
        return FeedbackMove.NOT_SENT
    return None


def holds(entry: LedgerEntry | None, claim: Claim) -> bool:
    """The claim is held: its item is CLAIMED under its token, attempt and carrier (what every move expects)."""
    return (entry is not None and entry.state is State.CLAIMED and entry.token == claim.token
            and entry.attempt == claim.attempt and entry.carrier == claim.carrier)


def made_by(entry: LedgerEntry | None, claim: Claim) -> bool:
    """The item is what this very delivery's claim wrote: a repeated claim whose first answer was lost."""
    return holds(entry, claim) and entry is not None and bool(claim.holder) and entry.holder == claim.holder


def already_applied(entry: LedgerEntry | None, move: Move) -> bool:
    """The item is where this very delivery's move leads: a repeated settle whose first answer was lost (its
    counter was earned by that first request)."""
    claim = move.claim
    return (entry is not None and move.state is not State.CLAIMED and entry.state is move.state
            and entry.token == claim.token and entry.attempt == claim.attempt and entry.carrier == claim.carrier
            and bool(claim.holder) and entry.holder == claim.holder
            and (not move.provider_message_id or entry.provider_message_id == move.provider_message_id))
