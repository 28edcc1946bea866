"""The emulator's faults (localcloud/emulator/faults.py): the plan people write, which operation a real botocore
request is, and each kind of fault as the real client meets it at the emulator's door."""

from __future__ import annotations

import contextlib
import io
import os
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from localcloud.config import LOCAL_CREDENTIALS
from localcloud.emulator.faults import FaultKind, FaultPlan, FaultPlanError, FaultRule, operation_of
from localcloud.emulator.process import Emulator, free_port, injected_faults, set_faults, start_emulator
from tests.conftest import E2E_ENDPOINT

# -- the plan ------------------------------------------------------------------------------------------


def test_a_plan_reads_as_written_and_prints_back_the_same():
    plan = FaultPlan.parse("sesv2.SendEmail=lost-answer:0.05, dynamodb.*=slow-answer:0.1:delay=20:times=3,"
                           "*=refuse:0.01,seed=7,from=anyone")
    assert plan.rules == (FaultRule("sesv2.SendEmail", FaultKind.LOST_ANSWER, 0.05),
                          FaultRule("dynamodb.*", FaultKind.SLOW_ANSWER, 0.1, delay=20.0, times=3),
                          FaultRule("*", FaultKind.REFUSE, 0.01))
    assert (plan.seed, plan.from_anyone) == (7, True)
    assert FaultPlan.parse(str(plan)) == plan
    assert FaultPlan.parse("") == FaultPlan()


@pytest.mark.parametrize(("spec", "says"), [
    ("sesv2.SendEmail", "expected TARGET=KIND:RATE"),
    ("sesv2.SendEmail=vanish:0.1", "the kind is one of"),
    ("sesv2.SendEmail=lost-answer", "a rate is needed"),
    ("sesv2.SendEmail=lost-answer:half", "is not a number"),
    ("sesv2.SendEmail=lost-answer:1.5", "between 0 and 1"),
    ("sesv2.SendEmail=slow-answer:0.1", "needs a delay"),
    ("sesv2.SendEmail=lost-answer:0.1:after=2", "unknown option 'after'"),
    ("SES SendEmail=lost-answer:0.1", "service.Operation"),
    ("from=nobody", "from=functions"),
])
def test_a_plan_that_cannot_be_read_says_why(spec, says):
    with pytest.raises(FaultPlanError, match=says):
        FaultPlan.parse(spec)


# -- which operation a request is ------------------------------------------------------------------------


def _environ_of(service: str, call: str, **params: Any) -> dict[str, Any]:
    """The WSGI environ the emulator would get for this botocore call, built from the request botocore sends."""
    captured = []

    class Empty:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield b""

    def capture(request: Any, **_: Any) -> AWSResponse:
        captured.append(request)
        return AWSResponse(request.url, 500, {}, Empty())

    client = boto3.client(service, endpoint_url="http://127.0.0.1:4566", region_name="us-east-1",
                          config=Config(retries={"total_max_attempts": 1}), **LOCAL_CREDENTIALS)
    client.meta.events.register("before-send", capture)
    with contextlib.suppress(ClientError):  # the stand-in answer is an error; the request is what counts
        getattr(client, call)(**params)
    (request,) = captured
    url = urllib.parse.urlsplit(request.url)
    body = request.body.read() if hasattr(request.body, "read") else request.body or b""
    body = body.encode() if isinstance(body, str) else body
    environ = {"REQUEST_METHOD": request.method, "PATH_INFO": urllib.parse.unquote(url.path),
               "QUERY_STRING": url.query, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    for name, value in request.headers.items():
        text = value.decode() if isinstance(value, bytes) else value
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE",) else f"HTTP_{key}"] = text
    return environ


SES_MESSAGE = {"FromEmailAddress": "a@example.com", "Destination": {"ToAddresses": ["b@example.com"]},
               "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}}}


@pytest.mark.parametrize(("service", "call", "params", "expected"), [
    ("sesv2", "send_email", SES_MESSAGE, ("sesv2", "SendEmail")),
    ("dynamodb", "transact_write_items", {"TransactItems": [{"ConditionCheck": {
        "TableName": "t", "Key": {"k": {"S": "a"}}, "ConditionExpression": "attribute_exists(k)"}}]},
     ("dynamodb", "TransactWriteItems")),
    ("sqs", "send_message_batch", {"QueueUrl": "http://127.0.0.1:4566/000000000000/q",
                                   "Entries": [{"Id": "1", "MessageBody": "x"}]}, ("sqs", "SendMessageBatch")),
    ("s3", "get_object", {"Bucket": "uploads", "Key": "incoming/a b.csv"}, ("s3", "GetObject")),
    ("s3", "put_object", {"Bucket": "uploads", "Key": "rejects/a.csv", "Body": b"x"}, ("s3", "PutObject")),
    ("s3", "copy_object", {"Bucket": "uploads", "Key": "processed/a.csv",
                           "CopySource": {"Bucket": "uploads", "Key": "incoming/a.csv"}}, ("s3", "CopyObject")),
    ("s3", "delete_object", {"Bucket": "uploads", "Key": "incoming/a.csv"}, ("s3", "DeleteObject")),
    ("s3", "list_objects_v2", {"Bucket": "uploads"}, ("s3", "ListObjectsV2")),
    ("cloudformation", "describe_stacks", {"StackName": "s"}, ("cloudformation", "DescribeStacks")),
])
def test_each_operation_is_named_as_botocore_names_it(service, call, params, expected):
    environ = _environ_of(service, call, **params)
    body = environ["wsgi.input"].getvalue()
    assert operation_of(environ) == expected
    assert environ["wsgi.input"].read() == body  # a form body read for its Action is still there for the service


def test_a_request_that_is_not_signed_is_no_aws_operation():
    assert operation_of({"REQUEST_METHOD": "GET", "PATH_INFO": "/_localcloud/health"}) is None


# -- each fault, met by the real client ------------------------------------------------------------------

pytestmark_emulator = pytest.mark.skipif(bool(E2E_ENDPOINT), reason="sets the embedded emulator's faults")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[Emulator]:
    emulator = start_emulator(f"http://127.0.0.1:{free_port()}", tmp_path_factory.mktemp("faults") / "emulator.log",
                              detached=False)
    yield emulator
    emulator.stop()


@pytest.fixture
def table(emulator) -> Iterator[Any]:
    client = boto3.client("dynamodb", endpoint_url=emulator.endpoint, region_name="us-east-1",
                          config=Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=2),
                          **LOCAL_CREDENTIALS)
    name = f"t{time.monotonic_ns()}"
    client.create_table(TableName=name, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    yield client, name
    set_faults(emulator.endpoint, "")


def _put(client: Any, table: str, key: str) -> None:
    client.put_item(TableName=table, Item={"k": {"S": key}})


def _stored(client: Any, table: str, key: str) -> bool:
    return "Item" in client.get_item(TableName=table, Key={"k": {"S": key}})


@pytestmark_emulator
@pytest.mark.parametrize(("kind", "error"), [
    ("lost-answer:1", ConnectionClosedError), ("error-after:1", ClientError), ("slow-answer:1:delay=3", Exception)])
def test_a_fault_after_acting_leaves_the_write_done_and_the_client_without_its_answer(emulator, table, kind, error):
    client, name = table
    set_faults(emulator.endpoint, f"dynamodb.PutItem={kind}:times=1,from=anyone")
    started = time.monotonic()
    with pytest.raises(error):
        _put(client, name, "acted")
    assert _stored(client, name, "acted")  # the service acted before the answer went missing
    (fault,) = injected_faults(emulator.endpoint)["injected"]
    assert (fault["target"], fault["status"]) == ("dynamodb.PutItem", 200)
    if kind.startswith("slow"):
        assert time.monotonic() - started >= 2  # the client's read timeout, not an instant failure


@pytestmark_emulator
def test_a_refusal_happens_before_acting(emulator, table):
    client, name = table
    set_faults(emulator.endpoint, "dynamodb.PutItem=refuse:1:times=1,from=anyone")
    with pytest.raises(ClientError) as refused:
        _put(client, name, "refused")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert not _stored(client, name, "refused")
    _put(client, name, "refused")  # times=1: the next one goes through
    assert _stored(client, name, "refused")


@pytestmark_emulator
def test_by_default_only_the_functions_requests_meet_faults(emulator, table):
    client, name = table
    set_faults(emulator.endpoint, "dynamodb.*=refuse:1")
    _put(client, name, "from a tool")  # this client is no Lambda function: untouched
    os.environ["AWS_EXECUTION_ENV"] = "AWS_Lambda_python3.13"  # botocore says so in its user agent
    try:
        in_lambda = boto3.session.Session().client(  # a session reads its user agent's environment when made
            "dynamodb", endpoint_url=emulator.endpoint, region_name="us-east-1",
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}), **LOCAL_CREDENTIALS)
        with pytest.raises(ClientError):
            _put(in_lambda, name, "from a function")
    finally:
        del os.environ["AWS_EXECUTION_ENV"]
    assert [f["target"] for f in injected_faults(emulator.endpoint)["injected"]] == ["dynamodb.PutItem"]
