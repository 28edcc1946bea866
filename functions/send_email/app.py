"""send_email: contact batches from the queue -> at most one welcome email per address.

The records of one batch are processed concurrently (AsyncBatchProcessor), so their provider
calls share the SENDS_IN_FLIGHT threads instead of waiting record after record.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.config import SendSettings
from common.domain.sending import DEADLINE_MARGIN_SECONDS, LEASE_MARGIN_SECONDS, RecordNeedsRetry, deliver_message
from common.domain.vocabulary import Verdict
from common.wiring import message_returns, pseudonyms, retry_policy, send_ports

MAX_RECORDS_PER_BATCH = 10

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# A batch whose every record must come back (all out of time, say) is reported, not raised: it is
# not a function error, and Lambda treats both the same way.
processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
settings = SendSettings.from_env()
pseudonym = pseudonyms(settings.pseudonym_key_secret).of
ports = send_ports(settings, pseudonym)
policy = retry_policy(settings)
return_after = message_returns(settings)
records_executor = ThreadPoolExecutor(max_workers=MAX_RECORDS_PER_BATCH, thread_name_prefix="record")


def metric_name(verdict: Verdict) -> str:
    """retry_scheduled -> ContactsRetryScheduled"""
    return "Contacts" + verdict.value.title().replace("_", "")


async def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    now = time.time()
    remaining = lambda_context.get_remaining_time_in_millis() / 1000
    try:
        report = await asyncio.get_running_loop().run_in_executor(records_executor, lambda: deliver_message(
            record.body, record.message_id, ports, policy, now=now, lease_until=now + remaining + LEASE_MARGIN_SECONDS,
            send_deadline=now + remaining - DEADLINE_MARGIN_SECONDS))
    except Exception:
        # The batch processor reports the record as failed without a word; say why, then let it.
        logger.exception("message failed; SQS will deliver it again", extra={"message_id": record.message_id})
        raise
    for result in report.results:
        log = logger.error if result.verdict is Verdict.MISCONFIGURED else logger.info
        log("contact " + result.verdict.value, extra={
            "correlation_id": result.job_id, "job_id": result.job_id, "file": result.source_key, "row": result.row,
            "contact": pseudonym(result.email), "attempt": result.attempt, "outcome": result.verdict.value,
            "detail": result.detail or None, "retry_in_seconds": result.retry_in_seconds})
    for verdict, count in report.tally.items():
        metrics.add_metric(name=metric_name(verdict), unit=MetricUnit.Count, value=count)
    # Crash recovery at work: a message delivered again, contacts whose sender died taken over.
    if int(record.attributes.approximate_receive_count or 1) > 1:
        metrics.add_metric(name="MessagesRedelivered", unit=MetricUnit.Count, value=1)
    if report.taken_over:
        metrics.add_metric(name="LeaseTakeovers", unit=MetricUnit.Count, value=report.taken_over)
    if report.send_seconds:
        metrics.add_metric(name="SendLatencyMax", unit=MetricUnit.Milliseconds, value=max(report.send_seconds) * 1000)
        metrics.add_metric(name="SendLatencyAverage", unit=MetricUnit.Milliseconds,
                           value=sum(report.send_seconds) / len(report.send_seconds) * 1000)
    if report.must_retry:
        if (wait := report.comes_back_in(time.time())) is not None:
            return_after(record.event_source_arn, record.receipt_handle, wait)
        raise RecordNeedsRetry(f"{report.tally} in message {record.message_id}: SQS will deliver it again")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return async_process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                          context=context)
