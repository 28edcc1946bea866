"""The deterministic simulated provider, modelled on the seed's mock client; it records every attempt in an
outbox, so a lost answer can be looked up.

Outcomes: delivered (accepted), bounced (permanent), blocked (temporary, retry later).
A `TransientProviderError` is none of these: throttled (certainly not taken; retried like a block)
or an answer lost in transport (maybe taken; looked up before anything is sent again).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from common.config import SimulatedProviderSettings
from common.domain.provider import EmailRequest, OutboxEntry, SendResult, TransientProviderError
from common.domain.vocabulary import Outcome
from common.domain.welcome import render_welcome
from common.ports import Outbox


def _unit_interval(*parts: object) -> float:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


class SimulatedProvider:
    """Outcome and latency are functions of (seed, email, attempt), so every run is reproducible.

    Tags in the local part force outcomes: `+bounce` always bounces, `+blockedforever`
    is always blocked, `+blocked` is blocked on attempts 1 and 2 and then delivered,
    `+throttled` is refused (TransientProviderError) on attempt 1. A share `throttle_rate`
    of the other sends is refused the same way, before anything is recorded.
    """

    can_look_up = True

    def __init__(self, settings: SimulatedProviderSettings, outbox: Outbox,
                 sleep: Callable[[float], None] = time.sleep):
        self._settings = settings
        self._outbox = outbox
        self._sleep = sleep

    def outcome_for(self, email: str, attempt: int) -> Outcome:
        local_part = email.rsplit("@", 1)[0]
        if "+bounce" in local_part:
            return Outcome.BOUNCED
        if "+blockedforever" in local_part:
            return Outcome.BLOCKED
        if "+blocked" in local_part:
            return Outcome.BLOCKED if attempt <= 2 else Outcome.DELIVERED
        draw = _unit_interval(self._settings.seed, email, attempt, "outcome")
        if draw < self._settings.bounce_rate:
            return Outcome.BOUNCED
        if draw < self._settings.bounce_rate + self._settings.block_rate:
            return Outcome.BLOCKED
        return Outcome.DELIVERED

    def latency_for(self, email: str, attempt: int) -> float:
        s = self._settings
        if _unit_interval(s.seed, email, attempt, "slow") >= s.slow_rate:
            return 0.0
        return s.slow_min_seconds + (s.slow_max_seconds - s.slow_min_seconds) * _unit_interval(
            s.seed, email, attempt, "latency")

    def throttles(self, email: str, attempt: int) -> bool:
        if "+throttled" in email.rsplit("@", 1)[0]:
            return attempt == 1
        return _unit_interval(self._settings.seed, email, attempt, "throttle") < self._settings.throttle_rate

    def send(self, request: EmailRequest) -> SendResult:
        if self.throttles(request.to, request.attempt):
            raise TransientProviderError("429 too many requests: maximum sending rate exceeded")
        received_at = datetime.now(UTC).isoformat(timespec="milliseconds")  # when the request arrived
        self._sleep(self.latency_for(request.to, request.attempt))
        outcome = self.outcome_for(request.to, request.attempt)
        email = render_welcome(request.name)
        result = SendResult(outcome=outcome, provider_message_id=f"sim-{uuid.uuid4()}",
                            detail={Outcome.DELIVERED: "250 accepted",
                                    Outcome.BOUNCED: "550 5.1.1 mailbox unavailable",
                                    Outcome.BLOCKED: "421 4.7.0 temporarily blocked, try again later"}[outcome])
        self._outbox.record(OutboxEntry(
            to=request.to, attempt=request.attempt, outcome=outcome, provider_message_id=result.provider_message_id,
            idempotency_key=request.idempotency_key, subject=email.subject, body=email.text,
            received_at=received_at))
        return result

    def look_up(self, idempotency_key: str) -> SendResult | None:
        entries = self._outbox.find(idempotency_key)
        if not entries:
            return None
        first = min(entries, key=lambda e: e.received_at)
        return SendResult(outcome=first.outcome, provider_message_id=first.provider_message_id,
                          detail="reconciled from the provider's record")
