"""boto3 clients, made once per process, and every client's retry setting in one place.

A retry is a second request. botocore's standard mode repeats a request whose answer was slow, cut
off, a 5xx or a throttle, and the first request may well have acted. So each service below says how
many requests one call may make in all (`total_max_attempts`, not `max_attempts`, which counts the
retries after the first), and why repeating its requests cannot hurt (docs/ledger.md, "Repeated
requests"). A service missing here has no client: adding one means saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.config import Config


@dataclass(frozen=True)
class Retries:
    total_attempts: int  # requests per call, the first included
    why: str


RETRIES: dict[str, Retries] = {
    "dynamodb": Retries(9, "reads; conditional writes that recognise their own earlier commit (ALL_OLD); "
                           "transactions carry a ClientRequestToken, so a repeat within 10 minutes applies nothing"),
    "sqs": Retries(9, "a repeated SendMessageBatch adds copies of messages, and the ledger claims each contact "
                      "once; a repeated visibility change sets the same value"),
    "s3": Retries(9, "reads; a repeated put writes the same bytes under the same key; copy and delete repeat "
                     "harmlessly"),
    "secretsmanager": Retries(9, "a read"),
    "sesv2": Retries(1, "a repeated SendEmail is a second email: one request per send, and an answer lost after "
                        "it went out makes the contact UNKNOWN"),
}

# Short enough that a stuck request is retried (or given up) well inside a 60-s invocation; SES answers
# in well under a second, so 15 s without an answer means the answer is lost.
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15


def client_config(service: str) -> Config:
    retries = RETRIES[service]
    return Config(retries={"mode": "standard", "total_max_attempts": retries.total_attempts},
                  connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS, max_pool_connections=64)


@cache
def client(service: str) -> Any:
    # boto3's default session: the local runtime's request counter hooks into it.
    return boto3.client(service, config=client_config(service))  # type: ignore[call-overload]
