"""Sending dead letters back, without breaking at-most-once.

- `blocked-exhausted`: the contact gets one more attempt. Its ledger item goes back from
  EXHAUSTED to BLOCKED (conditionally, so a letter redriven twice reopens once) and a retry for
  the next attempt is enqueued, carrying the same claim token.
- `max-receives-exceeded`: the contact batch goes back to the contacts queue as it was; the
  ledger decides, contact by contact, what is still to be done.
- `bounced` (permanent), `unknown-outcome` (a person must first check with the provider) and
  `malformed-message` are never redriven.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from common.domain.messages import ContactBatch, DelayedRetry, Delivery
from common.domain.vocabulary import DeadLetterReason
from common.ports import ContactsQueuePort, ReopeningLedger

REDRIVABLE = ("blocked-exhausted", "max-receives-exceeded")


@dataclass(frozen=True)
class RedriveResult:
    redriven: bool
    why: str


def redrive_letter(body: str, ledger: ReopeningLedger, queue: ContactsQueuePort) -> RedriveResult:
    letter = json.loads(body)
    reason = letter.get("reason")
    if reason is None and "contacts" in letter:  # a batch moved here by the queue's redrive policy
        queue.send([ContactBatch.decode(body)])
        return RedriveResult(True, "batch sent back to the contacts queue")
    if reason != DeadLetterReason.BLOCKED_EXHAUSTED.value:
        return RedriveResult(False, f"{reason} letters are not redriven")
    entry = ledger.entry_for_pseudonym(letter.get("contact", ""))  # letters name contacts by pseudonym only
    if entry is None:
        return RedriveResult(False, "no ledger entry for this letter's contact")
    delivery = Delivery(email=entry.email, name=entry.name, row=int(letter["row"]), attempt=int(letter["attempt"]) + 1)
    batch = ContactBatch(job_id=letter["job_id"], source_key=letter["source_key"], deliveries=(delivery,))
    if not ledger.reopen_exhausted(entry.email, batch.token(delivery), int(letter["attempt"]), letter["job_id"]):
        return RedriveResult(False, "already redriven (the contact is no longer EXHAUSTED)")
    queue.send_retries([DelayedRetry(batch=batch, delay_seconds=0)])
    return RedriveResult(True, f"attempt {delivery.attempt} enqueued")
