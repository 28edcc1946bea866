"""Transient AWS errors injected into the functions' requests, to prove nothing is lost or doubled.

With a rate above zero, that share of the requests the functions make (S3, SQS, DynamoDB, Logs)
is answered locally with HTTP 503 instead of being sent: the error botocore's standard retry mode
retries with backoff. The application code has no retry loops of its own for these; this checks
that it does not need any.
"""

from __future__ import annotations

import random
from typing import Any

from botocore.awsrequest import AWSResponse


class _EmptyBody:
    def stream(self, **_: Any) -> Any:
        yield b""


class FaultInjector:
    def __init__(self, rate: float, seed: int | None = None):
        self.rate = rate
        self._random = random.Random(seed)  # noqa: S311 - fault timing, not secrets  # nosec B311
        self.injected: dict[str, int] = {}

    def install(self, session: Any) -> None:
        if self.rate > 0:
            session.events.register("before-send", self._maybe_fail)

    def _maybe_fail(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        if self._random.random() >= self.rate:
            return None
        operation = ".".join(event_name.split(".")[1:3])
        self.injected[operation] = self.injected.get(operation, 0) + 1
        return AWSResponse(request.url, 503, {}, _EmptyBody())

    def take(self) -> dict[str, int]:
        injected, self.injected = self.injected, {}
        return injected
