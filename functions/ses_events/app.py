"""ses_events: SES bounce and complaint events (configuration set -> SNS -> SQS) -> the ledger.

A hard bounce or a complaint that SES reports after accepting an email moves the contact from
SENT to BOUNCED or COMPLAINED, updates its job's counters and dead-letters it for inspection.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from common import wiring
from common.config import FeedbackSettings
from common.domain.feedback import MalformedFeedback, apply_feedback, read_ses_event

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
settings = FeedbackSettings.from_env()
pseudonym = wiring.pseudonyms(settings.pseudonym_key_secret).of
ports = wiring.feedback_ports(settings, pseudonym)


def record_handler(record: SQSRecord) -> None:
    try:
        feedbacks = read_ses_event(record.body)
    except MalformedFeedback as error:  # not ours to retry: keep a trace and let it go
        logger.error("unreadable SES event", extra={"reason": str(error), "message_id": record.message_id})
        metrics.add_metric(name="FeedbackUnreadable", unit=MetricUnit.Count, value=1)
        return
    for result in apply_feedback(feedbacks, ports.ledger, ports.dead_letters):
        feedback = result.feedback
        outcome = result.move.value if result.move else "soft_bounce_ignored"
        logger.info(f"{feedback.kind.value.lower()} {outcome}", extra={
            "correlation_id": result.job_id or None, "job_id": result.job_id or None, "row": result.row or None,
            "contact": pseudonym(feedback.email), "provider_message_id": feedback.provider_message_id,
            "detail": feedback.detail})
        metrics.add_metric(name=f"Feedback{feedback.kind.value}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
