"""S3 adapter: an uploaded object as a stream of text lines, never read whole into memory."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

from common.aws import client as aws_client
from common.jobs import Upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Uploads:
    def __init__(self, client: S3Client | None = None):
        self._client = client or aws_client("s3")

    def lines(self, upload: Upload) -> Iterator[str]:
        """Decoded as UTF-8 (a BOM is dropped); `newline=""` leaves CR/LF handling to the csv module."""
        request = {"Bucket": upload.bucket, "Key": upload.key}
        if upload.version_id:
            request["VersionId"] = upload.version_id
        body = self._client.get_object(**request)["Body"]
        with io.TextIOWrapper(io.BufferedReader(body, buffer_size=256 * 1024), encoding="utf-8-sig",
                              newline="") as text:
            yield from text
