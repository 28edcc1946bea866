"""parse_csv: an object lands in incoming/ -> its rows are judged and its contacts enqueued."""

from __future__ import annotations

from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.config import ParseSettings
from common.contacts import InvalidRow
from common.jobs import DynamoJobs, Upload
from common.parsing import import_upload
from common.queue import ContactsQueue
from common.uploads import ObjectGone, S3Uploads

logger = Logger()
tracer = Tracer()
metrics = Metrics()
settings = ParseSettings.from_env()
jobs = DynamoJobs(settings.jobs_table)
contacts_queue = ContactsQueue(settings.contacts_queue_url)
uploads = S3Uploads(settings.processed_objects)


def log_invalid_row(row: InvalidRow) -> None:
    logger.warning("invalid row", extra={"row": row.row, "reason": row.reason})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict:
    imported = []
    for record in event.records:
        s3_object = record.s3.get_object
        upload = Upload(bucket=record.s3.bucket.name, key=unquote_plus(s3_object.key), etag=s3_object.etag,
                        size=s3_object.size or 0, version_id=s3_object.version_id or "")
        logger.set_correlation_id(upload.job_id)
        try:
            lines = uploads.lines(upload)
        except ObjectGone as gone:  # e.g. a late copy of an event whose object was already archived
            logger.warning("nothing to import", extra={"reason": str(gone)})
            metrics.add_metric(name="ObjectsGone", unit=MetricUnit.Count, value=1)
            imported.append({"job_id": upload.job_id, "skipped": str(gone)})
            continue
        result = import_upload(upload, lines, jobs, contacts_queue, uploads, on_invalid=log_invalid_row)
        tally = result.tally
        if result.already_imported:
            logger.info("object already imported; skipped")
            metrics.add_metric(name="ObjectsAlreadyImported", unit=MetricUnit.Count, value=1)
        else:
            logger.info("file parsed", extra={"rows": tally.rows, "invalid": tally.invalid,
                                               "duplicate": tally.duplicate, "enqueued": tally.enqueued,
                                               "failure_reason": result.failure_reason or None,
                                               "rejects_key": result.rejects_key or None,
                                               "archived_key": result.archived_key or None})
            metrics.add_metric(name="RowsParsed", unit=MetricUnit.Count, value=tally.rows)
            metrics.add_metric(name="RowsInvalid", unit=MetricUnit.Count, value=tally.invalid)
            metrics.add_metric(name="ContactsEnqueued", unit=MetricUnit.Count, value=tally.enqueued)
        imported.append({"job_id": result.job_id, "already_imported": result.already_imported,
                         "rows": tally.rows, "invalid": tally.invalid, "duplicate": tally.duplicate,
                         "enqueued": tally.enqueued, "failure_reason": result.failure_reason,
                         "rejects_key": result.rejects_key, "archived_key": result.archived_key})
    return {"jobs": imported}
