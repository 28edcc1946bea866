"""The bad-input corpus (tests/data/bad): each file yields a job whose invalid rows carry a reason
and land in the rejects file, or a FAILED job with a clear reason. Never a crash, never a lost row."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import boto3
import pytest

from tests.adapters.test_handlers import LambdaContext, load_handler

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad"

# file -> (rows, invalid, duplicate, enqueued, failed)
EXPECTED = {
    "empty.csv": (0, 0, 0, 0, False),
    "header_only.csv": (0, 0, 0, 0, False),
    "no_trailing_newline.csv": (2, 0, 0, 2, False),
    "crlf.csv": (2, 0, 0, 2, False),
    "cr_only.csv": (3, 0, 0, 3, False),  # classic Mac line endings
    "utf8_bom.csv": (1, 0, 0, 1, False),
    "latin1.csv": (1, 0, 0, 1, False),  # read as Windows-1252 (the real-files issue)
    "utf16.csv": (1, 0, 0, 1, False),  # UTF-16 with a BOM
    "picture.png.csv": (0, 0, 0, 0, True),
    "nul_bytes.csv": (2, 1, 0, 1, False),
    "unbalanced_quotes.csv": (3, 1, 0, 2, False),  # a stray quote costs its own row, not the next one
    "columns.csv": (3, 2, 0, 1, False),
    "emails.csv": (7, 4, 0, 3, False),
    "names.csv": (4, 1, 0, 3, False),
}


def s3_event(bucket: str, key: str, size: int) -> dict:
    from urllib.parse import quote_plus

    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
                         "s3": {"bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                                "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": "etag"}}}]}


def import_file(aws, monkeypatch, key: str, body: bytes) -> dict:
    bucket = aws.outputs["UploadsBucketName"]
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    app = load_handler(aws, monkeypatch, "ParseCsvFunction", "parse_csv.app")
    (job,) = app.lambda_handler(s3_event(bucket, key, len(body)), LambdaContext())["jobs"]
    return job


def test_the_corpus_is_complete():
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_bad_file_is_accounted_for_row_by_row_or_failed_with_a_reason(aws, monkeypatch, name):
    rows, invalid, duplicate, enqueued, failed = EXPECTED[name]
    job = import_file(aws, monkeypatch, f"incoming/{name}", (CORPUS / name).read_bytes())
    assert (job["rows"], job["invalid"], job["duplicate"], job["enqueued"]) == (rows, invalid, duplicate, enqueued)
    assert job["rows"] == job["invalid"] + job["duplicate"] + job["enqueued"]
    if failed:
        assert job["failure_reason"].startswith("the file is not text")
    else:
        assert job["failure_reason"] == ""
    if invalid:
        body = boto3.client("s3").get_object(Bucket=aws.outputs["UploadsBucketName"], Key=job["rejects_key"])
        records = list(csv.reader(io.StringIO(body["Body"].read().decode(), newline="")))
        assert len(records) == 1 + invalid and all(record[1] for record in records[1:])


def test_a_ten_megabyte_line_is_one_invalid_row_not_a_crash(aws, monkeypatch):
    body = ("A, " + "a" * 10_000_000 + "@example.com\nBob, bob@example.com\n").encode()
    job = import_file(aws, monkeypatch, "incoming/huge-line.csv", body)
    assert (job["rows"], job["invalid"], job["enqueued"]) == (2, 1, 1)


def test_a_key_with_spaces_and_unicode_arrives_url_encoded_and_is_read(aws, monkeypatch):
    job = import_file(aws, monkeypatch, "incoming/Kontakte März 2026 (final).csv", b"Ann, ann@example.com\n")
    assert job["enqueued"] == 1 and job["job_id"].endswith("incoming/Kontakte März 2026 (final).csv@etag")


def test_names_are_sanitised_in_the_message_and_escaped_in_html(aws, monkeypatch):
    from common.domain.welcome import render_welcome

    import_file(aws, monkeypatch, "incoming/names.csv", (CORPUS / "names.csv").read_bytes())
    messages = boto3.client("sqs").receive_message(QueueUrl=aws.outputs["ContactsQueueUrl"])["Messages"]
    names = [c["name"] for c in json.loads(messages[0]["Body"])["contacts"]]
    assert names[0] == "Ann Lee"
    assert render_welcome(names[1]).html.count("&lt;b&gt;Bob&lt;/b&gt;") == 1
    rejects = boto3.client("s3").get_object(Bucket=aws.outputs["UploadsBucketName"], Key="rejects/names.csv")
    assert "name longer than 200 characters" in rejects["Body"].read().decode()


def test_rejects_open_in_excel_with_names_intact_and_keep_a_broken_record_as_written(aws, monkeypatch):
    # Given a Windows-1252 file with a bad address and a record broken by a stray quote, rows after it
    text = "Zoë Café, not-an-address\n" + '"Carl, Jr, carl@example.com\n' + "".join(
        f"Person {i}, p{i}@example.com\n" for i in range(5))
    job = import_file(aws, monkeypatch, "incoming/europe.csv", text.encode("cp1252"))
    # Then both are rejects, each at its first line; every row after the stray quote is read
    assert (job["rows"], job["invalid"], job["enqueued"]) == (7, 2, 5)
    body = boto3.client("s3").get_object(Bucket=aws.outputs["UploadsBucketName"], Key=job["rejects_key"])
    data = body["Body"].read()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM: Excel then reads it as UTF-8
    records = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert records[0][:2] == ["line", "reason"]
    assert records[1][:3] == ["1", "invalid email: An email address must have an @-sign.", "Zoë Café"]
    assert records[2][0] == "2" and records[2][2] == '"Carl, Jr, carl@example.com'
