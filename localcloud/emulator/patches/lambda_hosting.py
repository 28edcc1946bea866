"""The functions of a stack on the emulator run in our local runtime, not in moto's Lambda.

moto's Lambda runs code in Docker: an SQS event source mapping makes moto invoke the function on
every message sent (consuming it even when that invocation fails), and an S3 notification to a
function makes moto invoke it likewise. Here the mappings stay on record (`aws lambda
list-event-source-mappings` shows them, the runtime reads them) but moto's SQS does not act on
them; the runtime polls the queue as Lambda's pollers do. An S3 event for a function goes to the
function's async invocation queue, which the runtime reads like Lambda's internal one.
"""

from __future__ import annotations

import json
from typing import Any

ASYNC_QUEUE_PREFIX = "localcloud-async-"
ASYNC_QUEUE_ATTRIBUTES = {"VisibilityTimeout": "43200"}


def async_queue_name(function_name: str) -> str:
    return (ASYNC_QUEUE_PREFIX + function_name)[:80]


class _NotActedOn(dict):
    """What moto's SQS reads to invoke functions itself: always empty, writes are dropped."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def _no_moto_pollers(queue: Any) -> dict:
    return _NotActedOn()


def _enqueue_async_invocation(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    from moto.sqs.exceptions import QueueDoesNotExist
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[account_id][region_name]
    name = async_queue_name(fn_arn.split(":")[6])
    try:
        backend.get_queue(name)
    except QueueDoesNotExist:
        backend.create_queue(name, None, **ASYNC_QUEUE_ATTRIBUTES)  # type: ignore[arg-type]
    backend.send_message(name, json.dumps(event_body))


def apply() -> None:
    from moto.s3 import notifications
    from moto.sqs.models import Queue

    Queue.lambda_event_source_mappings = property(_no_moto_pollers, lambda queue, value: None)  # type: ignore[assignment]
    notifications._invoke_awslambda = _enqueue_async_invocation
