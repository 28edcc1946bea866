"""What an email provider is asked and answers: requests, results, outcomes and its errors (the port is
common.ports.EmailProvider; Amazon SES and the simulated provider are in common.adapters)."""

from __future__ import annotations

from dataclasses import dataclass

from common.domain.vocabulary import Outcome


@dataclass(frozen=True, slots=True)
class EmailRequest:
    to: str
    name: str
    attempt: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str
    detail: str = ""


class TransientProviderError(RuntimeError):
    """Throttled or unreachable: try the record again later.

    `maybe_sent` is False when the provider said it did not take the email (throttling), and
    True when the answer was lost (a timeout after the request went out): then the retry must
    ask the provider before sending again, or give the contact up as UNKNOWN.
    """

    def __init__(self, message: str, maybe_sent: bool = False):
        super().__init__(message)
        self.maybe_sent = maybe_sent


class ProviderConfigurationError(TransientProviderError):
    """The provider refused the sender's own setup (identity not verified, no permission, missing
    configuration set): nothing was sent, and nothing will be until someone fixes the account.
    The contact is released unsent and its message comes back, so no row is lost meanwhile."""

    def __init__(self, message: str):
        super().__init__(f"provider configuration error: {message}", maybe_sent=False)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One send attempt as the simulated provider received it."""

    to: str
    attempt: int
    outcome: Outcome
    provider_message_id: str
    idempotency_key: str
    subject: str
    body: str
    received_at: str
