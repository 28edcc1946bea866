"""parse_csv: an object lands in incoming/ -> its rows are judged and its contacts enqueued.

Its second event source is the continuations queue: a file too big for one invocation is
imported in segments, each invocation stopping before its deadline and asking for the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from common import wiring
from common.config import ParseSettings
from common.domain.contacts import InvalidRow
from common.domain.jobs import Upload
from common.domain.messages import ContinuationRequest
from common.domain.parsing import ImportResult, ObjectGone

# A segment stops reading when this share of the invocation's time is left (at least a second, at
# most a minute): enough to enqueue the last batches, write the checkpoint or the rejects file, and
# archive the object.
RESERVE_SHARE = 0.2
MIN_RESERVE_MS = 1_000
MAX_RESERVE_MS = 60_000

logger = Logger()
tracer = Tracer()
metrics = Metrics()
settings = ParseSettings.from_env()


def log_invalid_row(row: InvalidRow) -> None:
    logger.warning("invalid row", extra={"row": row.row, "reason": row.reason})


importer = wiring.importer(settings, on_invalid=log_invalid_row)


def deadline_near(context: LambdaContext) -> Callable[[], bool]:
    reserve_ms = min(MAX_RESERVE_MS, max(MIN_RESERVE_MS, context.get_remaining_time_in_millis() * RESERVE_SHARE))
    return lambda: context.get_remaining_time_in_millis() < reserve_ms


def report(result: ImportResult) -> dict[str, Any]:
    tally = result.tally
    if result.already_imported:
        logger.info("object already imported; skipped")
        metrics.add_metric(name="ObjectsAlreadyImported", unit=MetricUnit.Count, value=1)
    elif result.skipped:
        logger.info("nothing to read", extra={"segment": result.segment, "reason": result.skipped})
    else:
        logger.info("segment parsed; continues" if result.continued else "file parsed", extra={
            "segment": result.segment, "rows": tally.rows, "invalid": tally.invalid, "duplicate": tally.duplicate,
            "enqueued": tally.enqueued, "failure_reason": result.failure_reason or None,
            "rejects_key": result.rejects_key or None, "archived_key": result.archived_key or None})
        if not result.continued:
            metrics.add_metric(name="RowsParsed", unit=MetricUnit.Count, value=tally.rows)
            metrics.add_metric(name="RowsInvalid", unit=MetricUnit.Count, value=tally.invalid)
            metrics.add_metric(name="ContactsEnqueued", unit=MetricUnit.Count, value=tally.enqueued)
        else:
            metrics.add_metric(name="ParseContinuations", unit=MetricUnit.Count, value=1)
    return {"job_id": result.job_id, "segment": result.segment, "already_imported": result.already_imported,
            "skipped": result.skipped, "continued": result.continued, "rows": tally.rows,
            "invalid": tally.invalid, "duplicate": tally.duplicate, "enqueued": tally.enqueued,
            "failure_reason": result.failure_reason, "rejects_key": result.rejects_key,
            "archived_key": result.archived_key}


def import_uploads(event: S3Event, context: LambdaContext) -> list[dict[str, Any]]:
    imported = []
    for record in event.records:
        s3_object = record.s3.get_object
        upload = Upload(bucket=record.s3.bucket.name, key=unquote_plus(s3_object.key), etag=s3_object.etag,
                        size=s3_object.size or 0, version_id=s3_object.version_id or "")
        logger.set_correlation_id(upload.job_id)
        try:
            imported.append(report(importer.import_upload(upload, deadline_near(context))))
        except ObjectGone as gone:  # e.g. a late copy of an event whose object was already archived
            logger.warning("nothing to import", extra={"reason": str(gone)})
            metrics.add_metric(name="ObjectsGone", unit=MetricUnit.Count, value=1)
            imported.append({"job_id": upload.job_id, "skipped": str(gone)})
    return imported


def continue_imports(event: SQSEvent, context: LambdaContext) -> list[dict[str, Any]]:
    # BatchSize 1 in the template: a failure retries just this segment, from its checkpoint.
    continued = []
    for record in event.records:
        request = ContinuationRequest.decode(record.body)
        logger.set_correlation_id(request.job_id)
        continued.append(report(importer.continue_import(request.job_id, request.segment, deadline_near(context))))
    return continued


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:sqs":
        return {"jobs": continue_imports(SQSEvent(event), context)}
    return {"jobs": import_uploads(S3Event(event), context)}
