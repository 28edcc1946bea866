"""The real botocore SES client against a local HTTP endpoint that misbehaves after reading the request: how many
requests reach the endpoint for one send, and what the send path makes of it. A fake client that raises could
not show either: botocore's retry handler only runs when a real request goes out."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config

from common.adapters.aws import RETRIES, client_config
from common.adapters.ses import SesProvider
from common.domain.provider import EmailRequest, TransientProviderError
from common.domain.vocabulary import Outcome, Verdict
from tests.unit.pipeline import Pipeline
from tests.unit.test_sending import assert_accounted, rows

READ_TIMEOUT = 1.0  # the real configuration, with a shorter wait for the answer
ANN = EmailRequest(to="ann@example.com", name="Ann", attempt=1, idempotency_key="job#2#1")


class MisbehavingSes(BaseHTTPRequestHandler):
    """Reads each SendEmail, counts it, then answers as `server.behaviour` says."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server: Endpoint = self.server  # type: ignore[assignment]
        server.requests += 1
        behaviour = server.behaviour
        if behaviour == "answer after the read timeout":
            time.sleep(READ_TIMEOUT + 1)
            self._answer(200, {"MessageId": f"late-{server.requests}"})
        elif behaviour == "close after reading":
            self.close_connection = True
            self.connection.shutdown(2)
        elif behaviour == "500":
            self._answer(500, {"message": "internal failure"}, "InternalFailure")
        elif behaviour == "503 throttling":
            self._answer(503, {"message": "Maximum sending rate exceeded."}, "ThrottlingException")
        else:
            self._answer(200, {"MessageId": f"accepted-{server.requests}"})

    def _answer(self, status: int, body: dict, error_type: str = "") -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


class Endpoint(ThreadingHTTPServer):
    daemon_threads = True
    behaviour = "accept"
    requests = 0


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint(("127.0.0.1", 0), MisbehavingSes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def ses_at(server: Endpoint) -> SesProvider:
    config = client_config("sesv2").merge(Config(read_timeout=READ_TIMEOUT))
    client = boto3.client("sesv2", endpoint_url=f"http://127.0.0.1:{server.server_port}", config=config,
                          region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    return SesProvider("welcome@example.com", "", client=client)


def test_the_ses_client_may_make_one_request_per_call_and_says_why():
    assert client_config("sesv2").retries == {"mode": "standard", "total_max_attempts": 1}
    assert "second email" in RETRIES["sesv2"].why


@pytest.mark.parametrize("behaviour", ["answer after the read timeout", "close after reading", "500"])
def test_an_answer_lost_after_the_request_went_out_is_one_request_and_maybe_sent(endpoint, behaviour):
    # Given an SES endpoint that reads the SendEmail (so it may have acted), then misbehaves
    endpoint.behaviour = behaviour
    # When the real client sends one email
    with pytest.raises(TransientProviderError) as lost:
        ses_at(endpoint).send(ANN)
    # Then exactly one request reached it, and the send is "maybe sent": never to be resent
    assert endpoint.requests == 1
    assert lost.value.maybe_sent is True


def test_a_throttling_answer_is_one_request_and_certainly_not_sent(endpoint):
    endpoint.behaviour = "503 throttling"
    with pytest.raises(TransientProviderError) as refused:
        ses_at(endpoint).send(ANN)
    assert endpoint.requests == 1
    assert refused.value.maybe_sent is False  # the blocked path: a delayed retry


def test_an_accepted_send_is_one_request_with_the_message_id(endpoint):
    result = ses_at(endpoint).send(ANN)
    assert endpoint.requests == 1
    assert (result.outcome, result.provider_message_id) == (Outcome.DELIVERED, "accepted-1")


@pytest.mark.parametrize("behaviour", ["answer after the read timeout", "close after reading", "500"])
def test_a_contact_whose_ses_answer_was_lost_is_unknown_at_once_and_emailed_once(endpoint, behaviour):
    # Given the send path with SES as its provider, and an SES that loses its answer to Ann's send
    endpoint.behaviour = behaviour
    pipeline = Pipeline(real_provider=ses_at(endpoint))
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    # When her message is delivered, and delivered again (SQS is at-least-once)
    report = pipeline.deliver(pipeline.inbox.popleft())
    pipeline.drain(redeliver_each=True)
    # Then one request ever reached SES, and she is UNKNOWN: dead-lettered, not retried
    assert endpoint.requests == 1
    assert report.tally == {Verdict.UNKNOWN: 1} and not report.must_retry
    assert pipeline.job().unknown == 1 and not pipeline.queue.retries
    assert_accounted(pipeline)
