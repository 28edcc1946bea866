"""Builds each handler's ports from validated settings: the one place adapters are chosen."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from common.adapters.dynamo_jobs import DynamoJobs
from common.adapters.dynamo_ledger import DynamoLedger
from common.adapters.dynamo_outbox import DynamoOutbox
from common.adapters.dynamo_send_slots import DynamoSendSlots
from common.adapters.s3 import S3Uploads
from common.adapters.secrets import read_secret
from common.adapters.ses import SesProvider
from common.adapters.simulated import SimulatedProvider
from common.adapters.sqs import ContactsQueue, DeadLetterQueue, ParseContinuations
from common.config import ConfigError, FeedbackSettings, ParseSettings, SendSettings
from common.domain.contacts import InvalidRow
from common.domain.gathering import GatheredRetries
from common.domain.pacing import SendPacer
from common.domain.parsing import Importer
from common.domain.pseudonyms import Pseudonyms, WeakPseudonymKey
from common.domain.sending import RetryPolicy, SendPorts
from common.domain.waves import in_waves
from common.ports import DeadLetters, EmailProvider, FeedbackLedger

# Sends that finish within this long of the first settle together; the rest when all are done (waves.py).
FIRST_WAVE_SECONDS = 0.5
# Retries that the records of an invocation settle within this long of each other share messages (gathering.py).
RETRY_GATHER_SECONDS = 0.25


def email_provider(settings: SendSettings) -> EmailProvider:
    if settings.provider == "simulated" and settings.simulated is not None:
        return SimulatedProvider(settings.simulated, DynamoOutbox(settings.simulated.outbox_table))
    if settings.provider == "ses":
        return SesProvider(settings.sender_address, settings.ses_configuration_set)
    raise ConfigError(f"EMAIL_PROVIDER={settings.provider!r} is not available in this version")


def send_ports(settings: SendSettings, pseudonym: Callable[[str], str]) -> SendPorts:
    """`pseudonym`: how ledger items and dead letters name a contact (pseudonyms(...).of)."""
    executor = ThreadPoolExecutor(max_workers=settings.sends_in_flight, thread_name_prefix="send")
    return SendPorts(ledger=DynamoLedger(settings.contacts_table, settings.jobs_table, pseudonym=pseudonym),
                     provider=email_provider(settings),
                     retries=GatheredRetries(ContactsQueue(settings.retry_queue_url), RETRY_GATHER_SECONDS),
                     dead_letters=DeadLetterQueue(settings.dead_letter_queue_url, pseudonym),
                     send_in_waves=in_waves(executor, FIRST_WAVE_SECONDS),
                     pacer=SendPacer(settings.max_send_rate, DynamoSendSlots(settings.send_rate_table))
                     if settings.max_send_rate else None)


def message_returns(settings: SendSettings) -> Callable[[str, str, float], None]:
    """Makes a message of either queue send_email reads visible again after `seconds`:
    (the record's event source ARN, its receipt handle, seconds)."""
    queues = {url.rsplit("/", 1)[-1]: ContactsQueue(url) for url in (settings.contacts_queue_url,
                                                                       settings.retry_queue_url)}

    def return_after(event_source_arn: str, receipt_handle: str, seconds: float) -> None:
        name = event_source_arn.rsplit(":", 1)[-1]
        if name not in queues:
            raise ValueError(f"a record from queue {name!r}, which is neither CONTACTS_QUEUE_URL nor RETRY_QUEUE_URL")
        queues[name].return_after(receipt_handle, seconds)
    return return_after


def retry_policy(settings: SendSettings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.max_attempts, base_delay_seconds=settings.retry_base_delay_seconds,
                       max_delay_seconds=settings.retry_max_delay_seconds)


def importer(settings: ParseSettings, on_invalid: Callable[[InvalidRow], None]) -> Importer:
    return Importer(jobs=DynamoJobs(settings.jobs_table), queue=ContactsQueue(settings.contacts_queue_url),
                    uploads=S3Uploads(settings.processed_objects),
                    continuations=ParseContinuations(settings.continuations_queue_url), on_invalid=on_invalid,
                    max_line_bytes=settings.max_line_bytes, max_file_bytes=settings.max_file_bytes,
                    max_rows=settings.max_rows_per_file)


@dataclass(frozen=True)
class FeedbackPorts:
    ledger: FeedbackLedger
    dead_letters: DeadLetters


def feedback_ports(settings: FeedbackSettings, pseudonym: Callable[[str], str]) -> FeedbackPorts:
    return FeedbackPorts(ledger=DynamoLedger(settings.contacts_table, settings.jobs_table),
                         dead_letters=DeadLetterQueue(settings.dead_letter_queue_url, pseudonym))


def pseudonyms(secret_id: str) -> Pseudonyms:
    """The deployment's pseudonyms for log lines, from its generated secret (read once per cold start)."""
    try:
        return Pseudonyms(read_secret(secret_id))
    except WeakPseudonymKey as error:
        raise ConfigError(f"PSEUDONYM_KEY_SECRET={secret_id}: {error}") from error
