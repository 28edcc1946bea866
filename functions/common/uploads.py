"""S3 adapter: an uploaded object as a stream of text lines (never read whole into memory), its
rejects file, and where it goes once imported."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from common.aws import client as aws_client
from common.contacts import InvalidRow
from common.jobs import Upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

INCOMING_PREFIX = "incoming/"
REJECTS_PREFIX = "rejects/"
ARCHIVE_PREFIXES = {False: "processed/", True: "failed/"}
SPOOL_BYTES = 1024 * 1024  # rejects stay in memory up to this, then spill to /tmp
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ObjectGone(LookupError):
    """The object an event named is not there any more: there is nothing to import."""


def _relative(key: str) -> str:
    return key[len(INCOMING_PREFIX):] if key.startswith(INCOMING_PREFIX) else key


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (`=cmd|...`) is written as text."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


class S3Rejects:
    """rejects/<file>: `row,reason` then the row's own fields, for a user to fix and upload again."""

    def __init__(self, client: S3Client, bucket: str, key: str):
        self._client, self._bucket, self.key = client, bucket, key
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")  # noqa: SIM115
        self._text = io.TextIOWrapper(self._spool, encoding="utf-8", newline="")
        self._writer = csv.writer(self._text)
        self._writer.writerow(["row", "reason", "fields..."])
        self.count = 0

    def add(self, row: InvalidRow) -> None:
        self._writer.writerow([row.row, row.reason, *(spreadsheet_safe(f) for f in row.fields)])
        self.count += 1

    def close(self) -> str:
        try:
            if not self.count:
                return ""
            self._text.flush()
            self._spool.seek(0)
            self._client.upload_fileobj(self._spool, self._bucket, self.key,
                                        ExtraArgs={"ContentType": "text/csv; charset=utf-8"})
            return self.key
        finally:
            self._text.close()


class S3Uploads:
    def __init__(self, processed_objects: str = "move", client: S3Client | None = None):
        self._client = client or aws_client("s3")
        self._processed_objects = processed_objects

    def lines(self, upload: Upload) -> Iterator[str]:
        """Opens the object now (raising ObjectGone if it no longer exists) and streams its lines,
        decoded as UTF-8 (a BOM is dropped; `newline=""` leaves CR/LF handling to the csv module)."""
        request = {"Bucket": upload.bucket, "Key": upload.key}
        if upload.version_id:
            request["VersionId"] = upload.version_id
        try:
            body = self._client.get_object(**request)["Body"]
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion"):
                raise ObjectGone(f"{upload.key} no longer exists (already imported and archived, or deleted)") \
                    from None
            raise
        return self._decoded(body)

    @staticmethod
    def _decoded(body) -> Iterator[str]:
        with io.TextIOWrapper(io.BufferedReader(body, buffer_size=256 * 1024), encoding="utf-8-sig",
                              newline="") as text:
            yield from text

    def rejects_for(self, upload: Upload) -> S3Rejects:
        return S3Rejects(self._client, upload.bucket, REJECTS_PREFIX + _relative(upload.key))

    def archive(self, upload: Upload, failed: bool) -> str:
        """PROCESSED_OBJECTS=move (to processed/ or failed/), delete, or keep."""
        if self._processed_objects == "keep":
            return upload.key
        try:
            if self._processed_objects == "move":
                target = ARCHIVE_PREFIXES[failed] + _relative(upload.key)
                source = {"Bucket": upload.bucket, "Key": upload.key}
                if upload.version_id:
                    source["VersionId"] = upload.version_id
                self._client.copy(source, upload.bucket, target)
            else:
                target = ""
            self._client.delete_object(Bucket=upload.bucket, Key=upload.key)
            return target
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return ""  # archived by an earlier run
            raise
