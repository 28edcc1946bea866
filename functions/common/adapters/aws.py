"""boto3 clients with botocore's own retry mode, made once per process."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Standard mode retries throttling and transient errors with backoff; adapters add no loops of their own.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=64)


@cache
def client(service: str) -> Any:
    # boto3's default session: the local runtime's request counter and fault injector hook into it.
    return boto3.client(service, config=RETRY_CONFIG)  # type: ignore[call-overload]
