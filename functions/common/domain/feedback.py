"""SES feedback after the send: hard bounces and complaints move the contact in the ledger.

SES publishes events through the configuration set's event destination (SNS, then SQS). A
permanent bounce turns SENT into BOUNCED (the job's sent -1, bounced +1) and dead-letters the
contact with reason `bounced`; a complaint turns SENT into COMPLAINED (complained +1) and
dead-letters it with reason `complained`. A transient (soft) bounce changes nothing: SES itself
retried it. Feedback is matched on the provider message id the ledger recorded, so an event about
another email to the same address never moves this one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from common.domain.contacts import InvalidEmail, normalise_email
from common.domain.messages import DeadLetter
from common.domain.pseudonyms import redact_addresses
from common.domain.vocabulary import (
    DEAD_LETTER_FOR_STATE,
    FEEDBACK_STATE,
    FeedbackKind,
    FeedbackMove,
)
from common.ports import DeadLetters, FeedbackLedger


@dataclass(frozen=True)
class Feedback:
    kind: FeedbackKind
    email: str  # normalised, as the ledger keys it
    provider_message_id: str
    permanent: bool
    detail: str


@dataclass(frozen=True)
class FeedbackResult:
    feedback: Feedback
    move: FeedbackMove | None  # None: nothing to record (a soft bounce)
    job_id: str = ""
    row: int = 0


class MalformedFeedback(ValueError):
    pass


def read_ses_event(body: str) -> list[Feedback]:
    """An SQS body: an SES event (event publishing: `eventType`; notifications: `notificationType`),
    raw or inside an SNS envelope. Other event types (Send, Delivery, Open...) give no feedback."""
    try:
        data = json.loads(body)
        if data.get("Type") == "Notification" and "Message" in data:
            data = json.loads(data["Message"])
        kind = data.get("eventType") or data.get("notificationType")
        message_id = data["mail"]["messageId"]
        if kind == FeedbackKind.BOUNCE:
            bounce = data["bounce"]
            permanent = bounce.get("bounceType") == "Permanent"
            reason = f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
            return [_feedback(FeedbackKind.BOUNCE, r["emailAddress"], message_id, permanent, redact_addresses(
                              f"{reason}: {r.get('diagnosticCode') or r.get('status') or ''}".strip(": ")))
                    for r in bounce["bouncedRecipients"]]
        if kind == FeedbackKind.COMPLAINT:
            complaint = data["complaint"]
            detail = f"complaint: {complaint.get('complaintFeedbackType') or 'unspecified'}"
            return [_feedback(FeedbackKind.COMPLAINT, r["emailAddress"], message_id, True, detail)
                    for r in complaint["complainedRecipients"]]
        return []
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise MalformedFeedback(f"not an SES event: {error!r}") from None


def _feedback(kind: FeedbackKind, address: str, message_id: str, permanent: bool, detail: str) -> Feedback:
    try:
        email = normalise_email(address)
    except InvalidEmail:
        email = address.strip().lower()  # not one of ours: the ledger will not know it
    return Feedback(kind=kind, email=email, provider_message_id=message_id, permanent=permanent, detail=detail)


def apply_feedback(feedbacks: Sequence[Feedback], ledger: FeedbackLedger,
                   dead_letters: DeadLetters) -> list[FeedbackResult]:
    results: list[FeedbackResult] = []
    letters: list[DeadLetter] = []
    for feedback in feedbacks:
        if not feedback.permanent:
            results.append(FeedbackResult(feedback, move=None))
            continue
        state = FEEDBACK_STATE[feedback.kind]
        move, entry = ledger.record_feedback(feedback.email, feedback.provider_message_id, state, feedback.detail)
        results.append(FeedbackResult(feedback, move, job_id=entry.job_id if entry else "",
                                      row=entry.row if entry else 0))
        if entry is not None and move in (FeedbackMove.MOVED, FeedbackMove.ALREADY_RECORDED):
            # Written again on a repeated event: a crash may have come between the move and the letter.
            letters.append(DeadLetter(reason=DEAD_LETTER_FOR_STATE[state], email=feedback.email, name=entry.name,
                                      job_id=entry.job_id, source_key=entry.source_key, row=entry.row,
                                      attempt=entry.attempt, provider_response=feedback.detail))
    if letters:
        dead_letters.put(letters)
    return results
