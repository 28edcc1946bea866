"""S3 adapter: an uploaded object as a stream of text lines (never read whole into memory), its
rejects file, and where it goes once imported."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import ClientError

from common.adapters.aws import client as aws_client
from common.domain.contacts import InvalidRow
from common.domain.jobs import Upload
from common.domain.parsing import ObjectGone, OpenedObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


INCOMING_PREFIX = "incoming/"


REJECTS_PREFIX = "rejects/"


ARCHIVE_PREFIXES = {False: "processed/", True: "failed/"}


SPOOL_BYTES = 1024 * 1024  # rejects stay in memory up to this, then spill to /tmp


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _relative(key: str) -> str:
    return key[len(INCOMING_PREFIX):] if key.startswith(INCOMING_PREFIX) else key


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (`=cmd|...`) is written as text."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


class S3Rejects:
    """rejects/<file>: `line,reason` (the record's first line in the file) then the row's own fields, or, for a
    record that could not be split into fields, its text as it was: for a person to fix and upload again.
    UTF-8 with a byte order mark, so that Excel opens it with every name intact. A file imported in segments
    writes one part per segment; the last one joins them."""

    HEADER = ("line", "reason", "fields (or the record as written)...")

    def __init__(self, client: S3Client, bucket: str, key: str, segment: int = 0):
        self._client, self._bucket, self.key, self._segment = client, bucket, key, segment
        self._spool: Any = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")  # noqa: SIM115
        self._text = io.TextIOWrapper(self._spool, encoding="utf-8", newline="")
        self._writer = csv.writer(self._text)
        self.count = 0

    def add(self, row: InvalidRow) -> None:
        cells = row.fields if row.fields or not row.raw else (row.raw.rstrip("\r\n"),)
        self._writer.writerow([row.row, row.reason, *(spreadsheet_safe(f) for f in cells)])
        self.count += 1

    def close_part(self) -> str:
        """This segment's rows, without the header, under rejects/.parts/."""
        key = f"{REJECTS_PREFIX}.parts/{_relative(self.key)}.{self._segment:05d}"
        return self._upload(key) if self.count else self._discard()

    def close(self, earlier_parts: tuple[str, ...] = ()) -> str:
        if not self.count and not earlier_parts:
            return self._discard()
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b") as joined:
            header = io.StringIO()
            csv.writer(header).writerow(self.HEADER)
            joined.write(b"\xef\xbb\xbf" + header.getvalue().encode())  # the BOM: Excel then reads UTF-8
            for part in earlier_parts:
                shutil.copyfileobj(self._client.get_object(Bucket=self._bucket, Key=part)["Body"], joined)
            shutil.copyfileobj(self._rows(), joined)
            joined.seek(0)
            self._put(joined, self.key)  # type: ignore[arg-type]
        self._text.close()
        for part in earlier_parts:
            self._client.delete_object(Bucket=self._bucket, Key=part)
        return self.key

    def _rows(self) -> BinaryIO:
        """The rows added so far, from the start."""
        self._text.flush()
        self._spool.seek(0)
        return self._spool  # type: ignore[no-any-return]

    def _put(self, body: BinaryIO, key: str) -> None:
        self._client.upload_fileobj(body, self._bucket, key, ExtraArgs={"ContentType": "text/csv; charset=utf-8"})

    def _upload(self, key: str) -> str:
        try:
            self._put(self._rows(), key)
            return key
        finally:
            self._text.close()

    def _discard(self) -> str:
        self._text.close()
        return ""


class S3Uploads:
    def __init__(self, processed_objects: str = "move", client: S3Client | None = None):
        self._client = client or aws_client("s3")
        self._processed_objects = processed_objects

    def open(self, upload: Upload, offset: int = 0, if_match: str = "") -> OpenedObject:
        """The object's bytes from `offset`, streamed; a deleted object, or one that no longer has
        the ETag `if_match` (replaced by a new upload), raises ObjectGone."""
        request: dict[str, Any] = {"Bucket": upload.bucket, "Key": upload.key}
        if if_match:
            request["IfMatch"] = if_match
        if upload.version_id:
            request["VersionId"] = upload.version_id
        if offset:
            request["Range"] = f"bytes={offset}-"
        try:
            response = self._client.get_object(**request)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in ("NoSuchKey", "NoSuchVersion"):
                raise ObjectGone(f"{upload.key} no longer exists (already imported and archived, or deleted)") \
                    from None
            if code == "PreconditionFailed":
                raise ObjectGone(f"{upload.key} was replaced by another upload") from None
            if code == "InvalidRange":  # the checkpoint is at the very end of the file
                return OpenedObject(stream=io.BytesIO(b""), etag=if_match)
            raise
        return OpenedObject(stream=io.BufferedReader(response["Body"], buffer_size=256 * 1024),  # type: ignore[type-var]
                            etag=response["ETag"].strip('"'), metadata=dict(response.get("Metadata", {})))

    def rejects_for(self, upload: Upload, segment: int = 0) -> S3Rejects:
        return S3Rejects(self._client, upload.bucket, REJECTS_PREFIX + _relative(upload.key), segment)

    def archive(self, upload: Upload, failed: bool) -> str:
        """PROCESSED_OBJECTS=move (to processed/ or failed/), delete, or keep."""
        if self._processed_objects == "keep":
            return upload.key
        try:
            if self._processed_objects == "move":
                target = ARCHIVE_PREFIXES[failed] + _relative(upload.key)
                source: Any = {"Bucket": upload.bucket, "Key": upload.key}
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
