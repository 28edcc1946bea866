"""Builds the send side's ports from validated settings: the one place adapters are chosen."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from common.config import ConfigError, SendSettings
from common.ledger import DynamoLedger
from common.pacing import DynamoSendSlots, SendPacer
from common.provider import DynamoOutbox, EmailProvider, SimulatedProvider
from common.queue import ContactsQueue, DeadLetterQueue
from common.sending import RetryPolicy, SendPorts
from common.ses import SesProvider
from common.waves import in_waves

# Sends that finish within this long of the first settle together; the rest when all are done (waves.py).
FIRST_WAVE_SECONDS = 0.5


def email_provider(settings: SendSettings) -> EmailProvider:
    if settings.provider == "simulated" and settings.simulated is not None:
        return SimulatedProvider(settings.simulated, DynamoOutbox(settings.simulated.outbox_table))
    if settings.provider == "ses":
        return SesProvider(settings.sender_address, settings.ses_configuration_set)
    raise ConfigError(f"EMAIL_PROVIDER={settings.provider!r} is not available in this version")


def send_ports(settings: SendSettings) -> SendPorts:
    executor = ThreadPoolExecutor(max_workers=settings.sends_in_flight, thread_name_prefix="send")
    return SendPorts(ledger=DynamoLedger(settings.contacts_table, settings.jobs_table),
                     provider=email_provider(settings),
                     retries=ContactsQueue(settings.contacts_queue_url),
                     dead_letters=DeadLetterQueue(settings.dead_letter_queue_url),
                     send_in_waves=in_waves(executor, FIRST_WAVE_SECONDS),
                     pacer=SendPacer(settings.max_send_rate, DynamoSendSlots(settings.send_rate_table))
                     if settings.max_send_rate else None)


def retry_policy(settings: SendSettings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.max_attempts, base_delay_seconds=settings.retry_base_delay_seconds,
                       max_delay_seconds=settings.retry_max_delay_seconds)
